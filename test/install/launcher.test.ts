import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeConfig } from '../support/cli.js';
import { request } from '../support/http.js';

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * scripts/run.mjs (npm start and the bench/scenario scripts) rebuilds dist/ only when a source is newer than the
 * last clean build. Checked on a two-file project in a temp dir with the real scripts and the real tsc, so the
 * test edits files without touching the working tree.
 */
describe('scripts/run.mjs: build only when a source changed', () => {
  let dir: string;
  // No @types/node nor DOM typings: a tsc run on this project costs about half a second of CPU instead of several.
  const cli = (v: number, extra = ''): string =>
    `declare const process: { argv: string[] };\ndeclare const console: { log(s: string): void };\n${extra}console.log(JSON.stringify({ v: ${v}, args: process.argv.slice(2) }));\n`;
  const run = (...args: string[]) => {
    const r = spawnSync(process.execPath, ['scripts/run.mjs', 'dist/core/cli.js', ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    const building = /^building \((.*)\)…$/m.exec(r.stderr)?.[1] ?? null;
    return { code: r.status, out: r.stdout.trim() === '' ? null : (JSON.parse(r.stdout) as { v: number; args: string[] }), building, stderr: r.stderr };
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gw-launcher-'));
    mkdirSync(join(dir, 'core'));
    mkdirSync(join(dir, 'scripts'));
    for (const f of ['build.mjs', 'run.mjs']) copyFileSync(join(ROOT, 'scripts', f), join(dir, 'scripts', f));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'launcher-fixture', type: 'module', private: true }));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          outDir: 'dist',
          rootDir: '.',
          types: [],
          lib: ['ES2022'],
          skipLibCheck: true,
        },
        include: ['core/**/*.ts', 'scripts/**/*.ts'],
      }),
    );
    writeFileSync(join(dir, 'scripts/emit-schema.ts'), 'export {};\n');
    writeFileSync(join(dir, 'core/cli.ts'), cli(1));
  });
  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('builds a missing dist/, then runs the module with the flags it was given', () => {
    const r = run('--port', '0');
    expect(r.building).toBe('dist/core/cli.js is missing');
    expect(r.out).toEqual({ v: 1, args: ['--port', '0'] });
  }, 120_000);

  it('an unchanged tree starts without building', () => {
    const r = run('--help');
    expect(r.building).toBeNull();
    expect(r.out).toEqual({ v: 1, args: ['--help'] });
  });

  it('an edited source is rebuilt before it runs', () => {
    writeFileSync(join(dir, 'core/cli.ts'), cli(2));
    const r = run();
    expect(r.building).toBe('core/cli.ts changed');
    expect(r.out).toEqual({ v: 2, args: [] });
    expect(run().building).toBeNull();
  }, 120_000);

  it('a new source file triggers a build even when no existing file changed', () => {
    writeFileSync(join(dir, 'core/extra.ts'), 'export const extra = 1;\n');
    expect(run().building).toBe('the set of source files changed');
    expect(run().building).toBeNull();
  }, 120_000);

  it('a deleted output is re-emitted (the incremental build info does not hide it)', () => {
    rmSync(join(dir, 'dist/core/cli.js'));
    const r = run();
    expect(r.building).toBe('dist/core/cli.js is missing');
    expect(r.out).toEqual({ v: 2, args: [] });
  }, 120_000);

  it("a type error stops the start with tsc's message and leaves the tree stale", () => {
    writeFileSync(join(dir, 'core/cli.ts'), cli(3, 'const n: number = "not a number";\n'));
    const r = run();
    expect(r.code).toBe(1);
    expect(r.out).toBeNull();
    expect(r.stderr).toContain('error TS2322');
    writeFileSync(join(dir, 'core/cli.ts'), cli(4));
    const fixed = run();
    expect(fixed.building).toBe('core/cli.ts changed');
    expect(fixed.out).toEqual({ v: 4, args: [] });
  }, 120_000);
});

/** Waits for the gateway's JSON log lines that carry the listening ports (no polling). */
function listening(proc: ChildProcess): Promise<{ port: number; adminPort: number; out: () => string }> {
  return new Promise((res, rej) => {
    let out = '';
    let port = 0;
    let adminPort = 0;
    const onData = (c: Buffer): void => {
      out += c.toString();
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const j = JSON.parse(line) as { msg?: string; port?: number; adminPort?: number };
          if (j.msg === 'gateway listening' && j.port) port = j.port;
          if (j.msg === 'admin listening' && j.adminPort) adminPort = j.adminPort;
        } catch {
          /* a line still being written */
        }
      }
      if (port !== 0 && adminPort !== 0) res({ port, adminPort, out: () => out });
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => rej(new Error(`gateway exited ${code} before listening:\n${out}`)));
  });
}

describe('npm start through the launcher with workers: 2', () => {
  let proc: ChildProcess;
  let exited: Promise<number | null>;
  let ports: Awaited<ReturnType<typeof listening>>;

  beforeAll(async () => {
    const config = writeConfig({ logging: { level: 'info' }, routes: [{ path: '/hello', methods: ['GET'], response: { body: 'hi' } }] });
    proc = spawn(process.execPath, ['scripts/run.mjs', 'dist/core/cli.js', '--config', config, '--port', '0', '--admin-port', '0', '--workers', '2'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    exited = new Promise((r) => proc.once('exit', (code) => r(code)));
    ports = await listening(proc);
  }, 60_000);
  afterAll(async () => {
    if (proc !== undefined && proc.exitCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  });

  it('the workers run dist/core/cli.js itself (cluster.fork re-executes argv[1]) and serve', async () => {
    const r = await request(`http://127.0.0.1:${ports.port}/hello`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('hi');
    // The launcher process is the cluster primary; its children are the two workers.
    const children = readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    expect(children).toHaveLength(2);
    for (const pid of children) {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      expect(argv[1]).toBe(join(ROOT, 'dist/core/cli.js'));
      expect(argv).toContain('--workers');
    }
  });

  it('SIGTERM reaches the gateway directly: it drains and exits 0', async () => {
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(ports.out()).toContain('"msg":"stopped"');
  }, 30_000);
});
