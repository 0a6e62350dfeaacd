import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../support/http.js';
import { npm, npmCiProduction, startInstalled } from './support.js';

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * The README's production install: the files `npm pack` ships (package.json "files": dist/core, dist/variants…)
 * plus package-lock.json, then `npm ci --omit=dev`. The gateway must run from that alone: no TypeScript, no
 * sources, no dev dependency. --prefer-offline reuses the npm cache the development install filled.
 */
describe('production install: npm ci --omit=dev on the packed files', () => {
  let dir: string;
  let proc: ChildProcess | undefined;
  let packed: string[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-prod-'));
    // The file list npm would pack, copied as is (no tarball: tar is not among the promised prerequisites).
    const { stdout } = await npm(['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT);
    const [{ files }] = JSON.parse(stdout) as [{ files: Array<{ path: string }> }]; // one package, one entry
    packed = files.map((f) => f.path);
    for (const { path } of [...files, { path: 'package-lock.json' }]) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      copyFileSync(join(ROOT, path), join(dir, path));
    }
    await npmCiProduction(dir);
  }, 240_000);

  afterAll(() => {
    if (proc !== undefined && proc.exitCode === null) proc.kill('SIGKILL');
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('ships the runtime only: dist/core, dist/variants, the launcher and docs/; no sources, tests or dev tools', () => {
    expect(existsSync(join(dir, 'dist/core/cli.js'))).toBe(true);
    expect(readdirSync(join(dir, 'dist')).sort()).toEqual(['core', 'variants']);
    expect(readdirSync(join(dir, 'scripts')).sort()).toEqual(['build.mjs', 'run.mjs']);
    // the README links into docs/: the installed package has them
    for (const page of ['docs/README.md', 'docs/configuration.md', 'docs/troubleshooting.md']) expect(existsSync(join(dir, page)), page).toBe(true);
    for (const absent of ['core', 'test', 'node_modules/typescript', 'node_modules/vitest']) expect(existsSync(join(dir, absent)), absent).toBe(false);
    // the fuzz harnesses are tools (scripts/fuzz/), not part of an engine
    expect(packed.filter((p) => p.includes('fuzz'))).toEqual([]);
  });

  it('the bin entry runs as a command (npx ts-gateway --help), and npm start runs dist/ as built', async () => {
    const { stdout } = await npm(['exec', '--no', '--', 'ts-gateway', '--help'], dir);
    expect(stdout).toContain('ts-gateway: high-performance API gateway');
    // no compiler and no sources here: the launcher must not try to build
    const start = await npm(['start', '--', '--help'], dir);
    expect(start.stdout).toContain('ts-gateway: high-performance API gateway');
    expect(start.stderr).not.toContain('building');
  }, 90_000);

  it('starts on the embedded default config, answers, serves the dashboard, and stops on SIGTERM', async () => {
    const gw = await startInstalled([process.execPath, 'dist/core/cli.js', '--port', '0', '--admin-port', '0', '--workers', '0'], dir);
    proc = gw.proc;
    const r = await request(`http://127.0.0.1:${gw.port}/hello`);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ message: 'Hello from ts-gateway' });
    // The dashboard's files are in dist/ (copied by the build) and Chart.js is a runtime dependency.
    const admin = `http://127.0.0.1:${gw.adminPort}`;
    const page = await request(`${admin}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.body).toContain('<script src="dashboard/app.js"');
    for (const [path, marker] of [
      ['/dashboard/app.js', 'EventSource'],
      ['/dashboard/style.css', '.kpi'],
      ['/dashboard/chart.js', 'Chart.js v4'],
    ] as const) {
      const f = await request(`${admin}${path}`);
      expect(f.status, path).toBe(200);
      expect(f.body, path).toContain(marker);
    }
    gw.proc.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
  }, 60_000);
});
