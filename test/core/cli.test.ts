import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterEach, describe, expect, it } from 'vitest';
import { startCli, type CliGateway } from '../support/cli.js';
import { load, request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { eventually, until } from '../support/wait.js';

const running: CliGateway[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop('SIGKILL');
});

const pluginDir = writePlugins(
  {
    slow: `
export default { name: 'slow', version: '1.0.0',
  init(o) { return { async preHandler() { await new Promise((r) => setTimeout(r, o.ms ?? 300)); } }; } };`,
  },
  'gw-slow-',
);

function cfg(body: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    logging: { level: 'info', accessLog: false },
    pluginDirs: [pluginDir],
    routes: [
      { path: '/v', methods: ['GET'], response: { body } },
      // long enough for a drain to be watched while it runs
      { path: '/slow', methods: ['GET'], response: { body: 'slow' }, plugins: [{ name: 'slow', options: { ms: 2000 } }] },
    ],
    ...extra,
  };
}

// Crashes, hot reload under load and SIGTERM under load are reliability scenarios: test/reliability/cluster.test.ts.
// This file covers what the CLI offers: reload triggers, --workers, the admin API, the startup log.

const body = async (gw: CliGateway): Promise<string> => (await request(`${gw.url}/v`)).body;

describe('hot reload', () => {
  it('reloads on POST /config/reload and SIGHUP', async () => {
    const gw = await startCli(cfg('a'), ['--workers', '0']);
    running.push(gw);
    writeFileSync(gw.configFile, JSON.stringify(cfg('b')));
    const r = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' });
    expect(r.status).toBe(200);
    await until(async () => (await body(gw)) === 'b', { message: 'POST /config/reload applied config b' });
    writeFileSync(gw.configFile, JSON.stringify(cfg('c')));
    gw.proc.kill('SIGHUP');
    await until(async () => (await body(gw)) === 'c', { message: 'SIGHUP applied config c' });
    // the reload path reads through the same loader: a syntax error names its line and column there too
    writeFileSync(gw.configFile, '{\n  "routes": [\n    { "path": "/v", "response": { "body": "d" } }\n  ],\n}\n');
    const syntax = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' });
    expect(syntax.status).toBe(400);
    expect(JSON.parse(syntax.body).errors).toEqual([
      `/: invalid JSON in ${gw.configFile} at line 5, column 1: expected a property name (no comma before "}"), found "}"`,
    ]);
    writeFileSync(gw.configFile, JSON.stringify({ routes: 'x' }));
    const bad = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).errors).toContain('/routes: must be array');
    expect((await request(`${gw.url}/v`)).body).toBe('c');
  });
});

describe('--workers', () => {
  it('two workers both serve, each counted in /stats', async () => {
    const gw = await startCli(cfg('w'), ['--workers', '2']);
    running.push(gw);
    // Fresh connections so the primary's round-robin hands them to both workers.
    for (let i = 0; i < 40; i++) expect((await request(`${gw.url}/v`, { agent: false })).status).toBe(200);
    const stats = JSON.parse((await request(`${gw.adminUrl}/stats`)).body) as {
      metrics: { perWorker: Array<{ workerId: number; requests: number }> };
      workers: Array<{ id: number; pid: number; alive: boolean; restarts: number }>;
    };
    expect(stats.metrics.perWorker).toHaveLength(2);
    for (const w of stats.metrics.perWorker) expect(w.requests).toBeGreaterThan(0);
    expect(stats.workers.map((w) => [w.alive, w.restarts])).toEqual([
      [true, 0],
      [true, 0],
    ]);
    expect(new Set(stats.workers.map((w) => w.pid)).size).toBe(2);
  });
});

describe('admin API', () => {
  it('/metrics is valid Prometheus text and /stats numbers move with traffic', async () => {
    const gw = await startCli(cfg('m'), ['--workers', '2']);
    running.push(gw);
    const s0 = JSON.parse((await request(`${gw.adminUrl}/stats`)).body);
    await load(`${gw.url}/v`, 60, 4);
    await request(`${gw.url}/missing`);
    const s1 = JSON.parse((await request(`${gw.adminUrl}/stats`)).body);
    for (const k of ['requests', 'errors', 'rps', 'latency', 'activeConnections', 'memory', 'cpuPercent', 'perWorker', 'routes']) {
      expect(s1.metrics).toHaveProperty(k);
    }
    expect(s1.metrics.requests - s0.metrics.requests).toBeGreaterThanOrEqual(61);
    expect(s1.metrics.latency.p99).toBeGreaterThan(0);
    expect(s1.metrics.statusClasses['4xx']).toBeGreaterThanOrEqual(1);
    expect(s1.configVersion).toBe(1);
    expect(s1.metrics.memory.rss).toBeGreaterThan(0);

    const text = (await request(`${gw.adminUrl}/metrics`)).body;
    const families = parsePrometheusTextFormat(text) as Array<{
      name: string;
      type: string;
      metrics: Array<{ value?: string; labels?: Record<string, string> }>;
    }>;
    const byName = new Map(families.map((f) => [f.name, f]));
    const total = byName.get('gateway_requests_total')!;
    expect(total.type).toBe('COUNTER');
    expect(Number(total.metrics.find((m) => m.labels?.code === '2xx')!.value)).toBeGreaterThanOrEqual(60);
    expect(byName.get('gateway_request_duration_seconds')!.type).toBe('HISTOGRAM');
    expect(byName.get('gateway_worker_rss_bytes')!.metrics).toHaveLength(2);

    expect((await request(`${gw.adminUrl}/health`)).status).toBe(200);
    const conf = JSON.parse((await request(`${gw.adminUrl}/config`)).body);
    expect(conf.routes[0].path).toBe('/v');
  });

  it('/ready is 503 while draining; the admin API answers until the last request is done', async () => {
    const gw = await startCli(cfg('r'), ['--workers', '0']);
    running.push(gw);
    expect((await request(`${gw.adminUrl}/ready`)).status).toBe(200);
    const slow = request(`${gw.url}/slow`, { agent: false });
    let inFlight = -1;
    await until(
      async () => {
        inFlight = (JSON.parse((await request(`${gw.adminUrl}/stats`, { agent: false })).body) as { metrics: { inFlight: number } }).metrics.inFlight;
        return inFlight === 1;
      },
      { message: () => `the slow request in flight (saw ${inFlight})` },
    );
    gw.proc.kill('SIGTERM');
    await logLine(gw.output, () => gw.proc.exitCode !== null, 'draining');
    // a refused connection is a failure here, not a stand-in for 503: the admin API must still answer
    const r = await request(`${gw.adminUrl}/ready`, { agent: false });
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toEqual({ ready: false });
    expect((await slow).status).toBe(200);
    expect(await gw.exited).toBe(0);
  });
});

/** The JSON log line with this msg, once the process has written it (or a clear failure with what it did write). */
function logLine(output: () => string, exited: () => boolean, msg: string): Promise<Record<string, unknown>> {
  const find = (): Record<string, unknown> | undefined => {
    for (const line of output().split('\n')) {
      if (!line.startsWith('{')) continue;
      const j = JSON.parse(line) as Record<string, unknown>;
      if (j.msg === msg) return j;
    }
    if (exited()) throw new Error('the process exited');
    return undefined;
  };
  return eventually(find, { timeoutMs: 20_000, message: () => `a "${msg}" log line; output:\n${output()}` });
}

describe('startup log', () => {
  it.each([0, 1])('names the config file, the listen address and the admin address (workers %i)', async (workers) => {
    const gw = await startCli(cfg('s'), ['--workers', String(workers)]);
    running.push(gw);
    const line = await logLine(gw.output, () => gw.proc.exitCode !== null, 'gateway listening');
    expect(line).toMatchObject({
      port: gw.port,
      address: `127.0.0.1:${gw.port}`,
      admin: `127.0.0.1:${gw.adminPort}`,
      config: gw.configFile,
      workers,
    });
  });

  it('says "embedded default config" without --config', async () => {
    const proc = spawn(process.execPath, ['dist/core/cli.js', '--port', '0', '--admin-port', '0', '--workers', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    try {
      const line = await logLine(
        () => out,
        () => proc.exitCode !== null,
        'gateway listening',
      );
      expect(line.config).toBe('embedded default config');
      expect(line.address).toBe(`127.0.0.1:${line.port as number}`);
      expect(line.admin).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(line.port).toBeGreaterThan(0);
    } finally {
      proc.kill('SIGKILL');
    }
  });
});
