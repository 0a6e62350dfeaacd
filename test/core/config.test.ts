import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigWatcher, loadConfigFile } from '../../core/config/loader.js';
import { validateConfig } from '../../core/config/validator.js';
import { DEFAULT_ACCESS_LOG_FIELDS } from '../../core/observe/access-log-fields.js';
import { writeConfig } from '../support/cli.js';
import { hasOpenssl, TestCa } from '../tls/certs.js';

const CLI = resolve('dist/core/cli.js');
// A guard against a hung CLI, not a speed check: one `--check` took about 10 s at load average 17 (node start and
// the whole gateway's modules loaded on a busy machine), two thirds of the 15 s these runs had before.
const CLI_RUN_MS = 60_000;

const ok = { routes: [{ path: '/ping', methods: ['GET'], response: { status: 200, body: 'pong' } }] };

function errorsOf(raw: unknown): string[] {
  const r = validateConfig(raw);
  if (r.ok) throw new Error('expected invalid config');
  return r.errors;
}

describe('config validation', () => {
  it('fills every default', () => {
    const r = validateConfig(ok);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.server.host).toBe('127.0.0.1');
    expect(r.value.server.port).toBe(8080);
    expect(r.value.server.workers).toBeGreaterThan(0);
    expect(r.value.admin).toEqual({ enabled: true, host: '127.0.0.1', port: 9901 });
    expect(r.value.variants.router).toBe('hybrid');
    expect(r.value.variants.server).toBe('own');
    expect(r.value.routes[0]!.plugins).toEqual([]);
    expect(r.value.logging.accessLog).toEqual({ enabled: true, format: 'json', fields: DEFAULT_ACCESS_LOG_FIELDS, sampleSuccess: 1, file: '' });
  });

  it('accepts every server engine with every cleartext listener kind (HTTP/2 runs on node:http2 for both)', () => {
    for (const server of ['node-http', 'own']) {
      for (const http2 of [true, false, 'h2c']) {
        const r = validateConfig({ ...ok, variants: { server }, server: { http2 } });
        expect(r.ok ? [] : r.errors, `${server} with http2 ${String(http2)}`).toEqual([]);
      }
    }
  });

  it('does not mutate the input', () => {
    const input = structuredClone(ok);
    validateConfig(input);
    expect(input).toEqual(ok);
  });

  it.each([
    [{ routes: [{ path: 'ping', response: { body: 'x' } }] }, '/routes/0/path: must start with "/"'],
    [{ routes: [{ methods: ['GET'], response: { body: 'x' } }] }, '/routes/0: must have required property "path"'],
    [{ server: { port: 70000 } }, '/server/port: must be <= 65535'],
    [{ server: { port: '80' } }, '/server/port: must be integer'],
    [{ server: { prot: 1 } }, '/server: must NOT have additional property "prot"'],
    [{ logging: { level: 'loud' } }, '/logging/level: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"'],
    [{ routes: [{ path: '/a', methods: ['get'], response: {} }] }, '/routes/0/methods/0: must match pattern "^(\\*|[A-Z][A-Z0-9_-]*)$"'],
    [{ routes: [{ path: '/a', upstream: 'nope' }] }, '/routes/0/upstream: unknown upstream "nope"'],
    [{ routes: [{ path: '/a' }] }, '/routes/0: must have exactly one of "response", "upstream", "backends", "handler", "redirect" (found none)'],
    [
      { routes: [{ path: '/a', response: {}, handler: 'echo' }] },
      '/routes/0: must have exactly one of "response", "upstream", "backends", "handler", "redirect" (found response, handler)',
    ],
    [{ variants: { router: 'nope' } }, '/variants/router: unknown router variant "nope"'],
    [{ variants: { server: 'nope' } }, '/variants/server: unknown server variant "nope" (known: node-http, own)'],
    [{ routes: [{ path: '/a/:id(', response: {} }] }, '/routes/0/path: '],
    [[], '/: must be object'],
    [{ server: { trustedProxies: ['10.0.0.0/8', 'not-an-ip'] } }, '/server/trustedProxies/1: must be an IP address or CIDR range, got "not-an-ip"'],
    [{ plugins: [{ options: {} }] }, '/plugins/0: must have required property "name"'],
    [{ routes: [{ path: '/a', methods: ['GET', 'GETT'], response: {} }] }, '/routes/0/methods/1: unknown HTTP method "GETT" (known: ACL,'],
    [{ server: { workers: 2, workerMode: 'threads' } }, '/server/workerMode: "threads" needs server.listen({ reusePort })'],
    [{ server: { port: 8080 }, admin: { host: '0.0.0.0', port: 8080 } }, '/admin/port: 8080 is also server.port'],
    [{ server: { headersTimeoutMs: 66000, requestTimeoutMs: 60000 } }, '/server/headersTimeoutMs: 66000 exceeds server.requestTimeoutMs 60000'],
  ])('rejects %j with its path and rule', (raw, message) => {
    const errors = errorsOf(raw);
    expect(errors.some((e) => e.startsWith(message))).toBe(true);
  });

  it('reports all errors at once', () => {
    const errors = errorsOf({ server: { port: -1, host: '' }, routes: [{ path: 'x', response: {} }] });
    expect(errors).toEqual(
      expect.arrayContaining(['/server/port: must be >= 0', '/server/host: must NOT have fewer than 1 characters', '/routes/0/path: must start with "/"']),
    );
  });

  it('exports gateway.schema.json for editors', () => {
    const schema = JSON.parse(readFileSync('gateway.schema.json', 'utf8')) as { properties: Record<string, unknown> };
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['server', 'admin', 'variants', 'upstreams', 'routes', 'plugins']));
  });
});

describe('CLI startup on invalid config', () => {
  it('exits non-zero naming the path and rule', () => {
    const file = writeConfig({ routes: [{ path: 'nope', response: {} }], server: { port: 99999 } });
    const r = spawnSync(process.execPath, ['dist/core/cli.js', '--config', file], { encoding: 'utf8', timeout: CLI_RUN_MS });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('/routes/0/path: must start with "/"');
    expect(r.stderr).toContain('/server/port: must be <= 65535');
  });

  it('a data port already taken is one line naming the setting, not a stack (in-process and with workers)', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    try {
      for (const workers of ['0', '1']) {
        const r = spawnSync(process.execPath, [CLI, '--config', writeConfig(ok), '--port', String(port), '--admin-port', '0', '--workers', workers], {
          encoding: 'utf8',
          timeout: 30_000,
        });
        expect(r.status, r.stderr).toBe(1);
        expect(r.stderr).toContain(`127.0.0.1:${port}`);
        expect(r.stderr).toContain('EADDRINUSE');
        expect(r.stderr).not.toMatch(/^\s+at /m);
      }
    } finally {
      taken.close();
    }
  });

  it('--check validates without starting', () => {
    const good = spawnSync(process.execPath, ['dist/core/cli.js', '--check', '--config', writeConfig(ok)], { encoding: 'utf8', timeout: CLI_RUN_MS });
    expect(good.status).toBe(0);
    expect(good.stdout).toContain('is valid');
    const bad = spawnSync(process.execPath, ['dist/core/cli.js', '--check', '--config', writeConfig({ routes: 5 })], { encoding: 'utf8', timeout: CLI_RUN_MS });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('/routes: must be array');
  });

  it('--check also resolves plugins (unknown name, bad options)', () => {
    const r = spawnSync(process.execPath, ['dist/core/cli.js', '--check', '--config', writeConfig({ ...ok, plugins: [{ name: 'no-such-plugin' }] })], {
      encoding: 'utf8',
      timeout: CLI_RUN_MS,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('/plugins/0/name: unknown plugin "no-such-plugin"');
  });

  it('start refuses what --check refuses, naming the JSON path (threads on this runtime, unknown methods)', () => {
    const file = writeConfig({ server: { workers: 1, workerMode: 'threads' }, routes: [{ path: '/a', methods: ['FETCH'], response: {} }] });
    for (const args of [['--check'], ['--port', '0', '--admin-port', '0']]) {
      const r = spawnSync(process.execPath, ['dist/core/cli.js', ...args, '--config', file], { encoding: 'utf8', timeout: CLI_RUN_MS });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toContain('/server/workerMode: "threads" needs server.listen({ reusePort }), which this Node runtime lacks; use "cluster"');
      expect(r.stderr).toContain('/routes/0/methods/0: unknown HTTP method "FETCH"');
    }
  });

  it('--check warns about what is suspicious, and exits 0 for a config with only warnings', () => {
    const file = writeConfig({
      server: { workers: 0, workerMode: 'threads' },
      admin: { host: '0.0.0.0', port: 0 },
      upstreams: { billing: { targets: ['http://127.0.0.1:9'] } },
    });
    const r = spawnSync(process.execPath, ['dist/core/cli.js', '--check', '--config', file], { encoding: 'utf8', timeout: CLI_RUN_MS });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('is valid (4 warnings)');
    expect(r.stderr.trim().split('\n')).toEqual([
      'warning: /routes: no routes: every request will be answered 404',
      'warning: /upstreams/billing: no route uses this upstream',
      'warning: /admin/host: 0.0.0.0 is not a loopback address, and the admin API has no authentication (anyone who reaches it can read /config, see the dashboard and trigger reloads; set admin.auth)',
      'warning: /server/workerMode: ignored with server.workers 0 (the gateway serves in one process)',
    ]);
    const clean = spawnSync(process.execPath, ['dist/core/cli.js', '--check', '--config', writeConfig(ok)], { encoding: 'utf8', timeout: CLI_RUN_MS });
    expect(clean.status).toBe(0);
    expect(clean.stderr).toBe('');
    expect(clean.stdout).toMatch(/is valid\n$/);
  });

  it('a JSON syntax error names its line and column', () => {
    const file = writeConfig(ok);
    writeFileSync(file, '{\n  "routes": [\n    { "path": "/a", "response": {} },\n  ]\n}\n');
    const r = spawnSync(process.execPath, ['dist/core/cli.js', '--check', '--config', file], { encoding: 'utf8', timeout: CLI_RUN_MS });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`/: invalid JSON in ${file} at line 4, column 3: expected a value (no comma before "]")`);
  });

  it('a half-written file is a clear error', () => {
    const file = writeConfig(ok);
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.slice(0, 20));
    const r = spawnSync(process.execPath, ['dist/core/cli.js', '--check', '--config', file], { encoding: 'utf8', timeout: CLI_RUN_MS });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('invalid JSON');
  });
});

describe('relative paths in a config file', () => {
  /** A config folder as an operator lays it out: the file, ./plugins, ./tls/*.pem, ./keys.txt, all named relatively. */
  function configFolder(): { dir: string; file: string } {
    const dir = mkdtempSync(join(tmpdir(), 'gw-rel-'));
    mkdirSync(join(dir, 'plugins'));
    writeFileSync(join(dir, 'plugins', 'stamp.mjs'), `export default { name: 'stamp', version: '1.0.0', init() { return { postHandler() {} }; } };`);
    mkdirSync(join(dir, 'tls'));
    const ca = new TestCa();
    const leaf = ca.leaf('localhost');
    copyFileSync(leaf.cert, join(dir, 'tls', 'cert.pem'));
    copyFileSync(leaf.key, join(dir, 'tls', 'key.pem'));
    copyFileSync(ca.caCert, join(dir, 'tls', 'ca.pem'));
    ca.cleanup();
    writeFileSync(join(dir, 'keys.txt'), `ci:${createHash('sha256').update('k1').digest('hex')}\n`);
    const file = join(dir, 'gateway.json');
    writeFileSync(
      file,
      JSON.stringify({
        server: {
          workers: 0,
          tls: { cert: 'tls/cert.pem', key: './tls/key.pem', ca: 'tls/ca.pem', sni: { 'a.test': { cert: 'tls/cert.pem', key: 'tls/key.pem' } } },
        },
        pluginDirs: ['./plugins'],
        routes: [
          { path: '/s', methods: ['GET'], response: { body: 's' }, plugins: [{ name: 'stamp' }, { name: 'auth', options: { apiKey: { file: 'keys.txt' } } }] },
        ],
      }),
    );
    return { dir, file };
  }
  const elsewhere = mkdtempSync(join(tmpdir(), 'gw-cwd-'));

  it.skipIf(!hasOpenssl)("resolve against the config file's folder, not the cwd (--check from another directory)", () => {
    const { file } = configFolder();
    const r = spawnSync(process.execPath, [CLI, '--check', '--config', file], { cwd: elsewhere, encoding: 'utf8', timeout: CLI_RUN_MS });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it.skipIf(!hasOpenssl)('the loader and the reload path both resolve them (to absolute paths in the effective config)', () => {
    const { dir, file } = configFolder();
    for (const r of [loadConfigFile(file), new ConfigWatcher(file).read()]) {
      if (!r.ok) throw new Error(r.errors.join('\n'));
      expect(r.value.pluginDirs).toEqual([join(dir, 'plugins')]);
      expect(r.value.server.tls).toMatchObject({ cert: join(dir, 'tls/cert.pem'), key: join(dir, 'tls/key.pem'), ca: join(dir, 'tls/ca.pem') });
      expect(r.value.server.tls!.sni['a.test']).toEqual({ cert: join(dir, 'tls/cert.pem'), key: join(dir, 'tls/key.pem') });
      expect(r.value.routes[0]!.plugins[1]!.options).toEqual({ apiKey: { file: join(dir, 'keys.txt') } });
    }
  });

  it('a missing file or folder is an error at its JSON path, naming where it was looked for', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-rel-'));
    const file = join(dir, 'gateway.json');
    writeFileSync(file, JSON.stringify({ ...ok, pluginDirs: ['/', 'missing'], server: { tls: { cert: 'nope.pem', key: 'nope.key' } } }));
    const r = spawnSync(process.execPath, [CLI, '--check', '--config', file], { cwd: elsewhere, encoding: 'utf8', timeout: CLI_RUN_MS });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`/pluginDirs/1: cannot read ${join(dir, 'missing')} (ENOENT)`);
    expect(r.stderr).toContain(`/server/tls/cert: cannot read ${join(dir, 'nope.pem')} (ENOENT)`);
    expect(r.stderr).toContain(`/server/tls/key: cannot read ${join(dir, 'nope.key')} (ENOENT)`);
  });
});
