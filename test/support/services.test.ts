import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inCi, onPath } from './services.js';

const ROOT = resolve(import.meta.dirname, '../..');

/** Runs the fixture file in a child vitest (its own config, no build step) and returns its exit code and output. */
function runFixture(env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((res) => {
    const child = spawn(
      process.execPath,
      [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/support/fixtures/vitest.fixture.config.ts', '--reporter', 'verbose'],
      { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => res({ code, out }));
  });
}

describe('needTool', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('finds an executable on PATH like `command -v`, and nothing in a PATH that lacks it', () => {
    const bin = mkdtempSync(join(tmpdir(), 'gw-path-'));
    dirs.push(bin);
    symlinkSync(process.execPath, join(bin, basename(process.execPath)));
    expect(onPath(basename(process.execPath), `/nonexistent:${bin}`)).toBe(join(bin, basename(process.execPath)));
    expect(onPath('redis-server', bin)).toBeNull();
  });

  it('reads CI the way CI services set it', () => {
    expect(inCi({ CI: 'true' })).toBe(true);
    expect(inCi({ CI: '1' })).toBe(true);
    expect(inCi({})).toBe(false);
    expect(inCi({ CI: '' })).toBe(false);
    expect(inCi({ CI: 'false' })).toBe(false);
  });

  const base: NodeJS.ProcessEnv = { ...process.env, NEEDS_TOOL: 'gw-fixture-missing-tool', NO_COLOR: '1' };
  delete base.CI;
  delete base.FORCE_COLOR;
  delete base.VITEST;
  delete base.VITEST_POOL_ID;
  delete base.VITEST_WORKER_ID;

  it('outside CI a missing tool is reported skipped, with the install command, and the run passes', async () => {
    const { code, out } = await runFixture(base);
    expect(out).toMatch(/gw-fixture-missing-tool is installed.*\[skipped: gw-fixture-missing-tool not installed \(apt-get install gw-fixture-package\)\]/);
    expect(out).toMatch(/1 passed \| 2 skipped/);
    expect(code).toBe(0);
  }, 60_000);

  it('under CI=true a missing tool fails the run with the same reason', async () => {
    const { code, out } = await runFixture({ ...base, CI: 'true' });
    expect(out).toContain('gw-fixture-missing-tool not installed (apt-get install gw-fixture-package): CI=true requires every service');
    expect(out).toMatch(/1 failed \| 1 passed \| 1 skipped/);
    expect(code).toBe(1);
  }, 60_000);
});
