import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { writeConfig } from '../support/cli.js';
import { writePlugins } from '../support/plugins.js';

function check(config: unknown): { status: number | null; problems: string[]; stdout: string } {
  const r = spawnSync(process.execPath, ['dist/core/cli.js', '--check', '--config', writeConfig(config)], { encoding: 'utf8', timeout: 30_000 });
  const problems = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('  '))
    .map((l) => l.trim());
  return { status: r.status, problems, stdout: r.stdout };
}

describe('--check reports every layer in one pass', () => {
  it('lists one mistake of each kind (schema, reference, file, plugin name, plugin options), each with its JSON path', () => {
    const r = check({
      server: { port: 'eighty' }, // schema
      upstreams: { api: { targets: ['http://127.0.0.1:9'] } },
      routes: [
        { path: 'no-slash', response: {} }, // schema, in an array: the entries after it keep their indices
        { path: '/a', upstream: 'apii' }, // reference
        { path: '/b', upstream: 'api', plugins: [{ name: 'rate-limt' }] }, // plugin name
        { path: '/c', upstream: 'api', plugins: [{ name: 'rate-limit', options: { limit: 0, windowMs: 1000 } }] }, // plugin options
      ],
      pluginDirs: ['./no-such-dir'], // file
    });
    expect(r.status).toBe(1);
    expect(r.problems).toEqual([
      '/server/port: must be integer',
      '/routes/0/path: must start with "/"',
      expect.stringMatching(/^\/pluginDirs\/0: cannot read .*no-such-dir \(ENOENT\)$/),
      '/routes/1/upstream: unknown upstream "apii"',
      expect.stringMatching(/^\/routes\/2\/plugins\/0\/name: unknown plugin "rate-limt" \(available: .*rate-limit/),
      '/routes/3/plugins/0/options/limit: must be >= 1',
    ]);
  });

  it('a route the schema refuses does not hide the plugin mistakes of the routes after it, nor its upstream', () => {
    const r = check({
      upstreams: { api: { targets: 'not-a-list' } },
      routes: [
        { path: '/x', upstream: 'api', methods: 'GET' },
        { path: '/y', response: {}, plugins: [{ name: 'cors', options: { origins: 5 } }] },
      ],
    });
    expect(r.status).toBe(1);
    // the upstream's own error is reported; the route naming it is not a second mistake
    expect(r.problems).toContain('/upstreams/api/targets: must be array');
    expect(r.problems).toContain('/routes/0/methods: must be array');
    expect(r.problems.some((p) => p.includes('unknown upstream'))).toBe(false);
    expect(r.problems.some((p) => p.startsWith('/routes/1/plugins/0/options'))).toBe(true);
  });

  it('a plugin module that fails to load is reported beside the schema errors', () => {
    const dir = writePlugins({ broken: 'export default { name: "broken" };' });
    const r = check({ server: { workers: -1 }, pluginDirs: [dir], routes: [{ path: '/a', response: {} }] });
    expect(r.status).toBe(1);
    expect(r.problems).toContain('/server/workers: must be >= 0');
    expect(r.problems.some((p) => p.includes('broken.mjs') && p.includes('"version"'))).toBe(true);
  });

  it('a valid file still passes, with the dry run of every plugin', () => {
    const r = check({ routes: [{ path: '/a', response: {}, plugins: [{ name: 'request-id' }] }] });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('is valid');
  });
});
