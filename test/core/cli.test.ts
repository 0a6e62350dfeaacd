import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { startCli, writeConfig, type CliGateway } from '../support/cli.js';
import { load, request, sleep } from '../support/http.js';

const running: CliGateway[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop('SIGKILL');
});

const pluginDir = mkdtempSync(join(tmpdir(), 'gw-slow-'));
writeFileSync(join(pluginDir, 'slow.mjs'), `
export default { name: 'slow', version: '1.0.0',
  init(o) { return { async preHandler() { await new Promise((r) => setTimeout(r, o.ms ?? 300)); } }; } };`);

function cfg(body: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    logging: { level: 'info', accessLog: false },
    pluginDirs: [pluginDir],
    routes: [
      { path: '/v', methods: ['GET'], response: { body } },
      { path: '/slow', methods: ['GET'], response: { body: 'slow' }, plugins: [{ name: 'slow', options: { ms: 400 } }] },
    ],
    ...extra,
  };
}

async function waitFor(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error('condition not reached');
}

/** Atomic replace, as deploy tools do; a second test below writes in place, half at a time. */
function replaceFile(file: string, content: unknown): void {
  writeFileSync(`${file}.tmp`, typeof content === 'string' ? content : JSON.stringify(content));
  renameSync(`${file}.tmp`, file);
}

describe('hot reload (cluster worker)', () => {
  it('applies valid changes under load with zero failed requests, and rejects invalid ones', async () => {
    const gw = await startCli(cfg('v1'), ['--workers', '1']);
    running.push(gw);
    let stop = false;
    const seen = new Set<string>();
    let answers = 0;
    const failures: string[] = [];
    const loops = Array.from({ length: 6 }, async () => {
      while (!stop) {
        try {
          const r = await request(`${gw.url}/v`);
          if (r.status !== 200) failures.push(String(r.status));
          seen.add(r.body);
          answers++;
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    });
    await waitFor(async () => seen.has('v1'));
    replaceFile(gw.configFile, cfg('v2'));
    await waitFor(async () => seen.has('v2'));
    // Invalid and half-written files are rejected; v2 keeps answering.
    replaceFile(gw.configFile, { routes: [{ path: 'broken', response: {} }] });
    await waitFor(async () => {
      const s = JSON.parse((await request(`${gw.adminUrl}/stats`)).body) as { lastReloadError: string[] | null };
      return s.lastReloadError !== null && s.lastReloadError.includes('/routes/0/path: must start with "/"');
    });
    writeFileSync(gw.configFile, JSON.stringify(cfg('v3')).slice(0, 30));
    await waitFor(async () => {
      const s = JSON.parse((await request(`${gw.adminUrl}/stats`)).body) as { lastReloadError: string[] | null };
      return s.lastReloadError !== null && s.lastReloadError.some((e) => e.includes('invalid JSON'));
    });
    // after the rejection, only v2 answers
    seen.clear();
    const from = answers;
    await waitFor(async () => answers - from >= 60);
    stop = true;
    await Promise.all(loops);
    expect(failures).toEqual([]);
    expect([...seen]).toEqual(['v2']);
    expect(gw.output()).toContain('config file rejected');
  });

  it('reloads on POST /config/reload and SIGHUP', async () => {
    const gw = await startCli(cfg('a'), ['--workers', '0']);
    running.push(gw);
    writeFileSync(gw.configFile, JSON.stringify(cfg('b')));
    const r = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' });
    expect(r.status).toBe(200);
    await waitFor(async () => (await request(`${gw.url}/v`)).body === 'b');
    writeFileSync(gw.configFile, JSON.stringify(cfg('c')));
    gw.proc.kill('SIGHUP');
    await waitFor(async () => (await request(`${gw.url}/v`)).body === 'c');
    // the reload path reads through the same loader: a syntax error names its line and column there too
    writeFileSync(gw.configFile, '{\n  "routes": [\n    { "path": "/v", "response": { "body": "d" } }\n  ],\n}\n');
    const syntax = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' });
    expect(syntax.status).toBe(400);
    expect(JSON.parse(syntax.body).errors).toEqual([`/: invalid JSON in ${gw.configFile} at line 5, column 1: expected a property name (no comma before "}"), found "}"`]);
    writeFileSync(gw.configFile, JSON.stringify({ routes: 'x' }));
    const bad = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).errors).toContain('/routes: must be array');
    expect((await request(`${gw.url}/v`)).body).toBe('c');
  });
});

describe('workers', () => {
  it('two workers both serve; a SIGKILLed worker is restarted while the gateway keeps answering', async () => {
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

    const victim = stats.workers[0]!;
    process.kill(victim.pid, 'SIGKILL');
    // The surviving worker answers while the victim restarts.
    const during = await load(`${gw.url}/v`, 100, 4);
    expect(during.statuses.get(200) ?? 0).toBeGreaterThanOrEqual(96);
    await waitFor(async () => {
      const s = JSON.parse((await request(`${gw.adminUrl}/stats`)).body) as typeof stats;
      const w = s.workers.find((x) => x.id === victim.id)!;
      return w.alive && w.pid !== victim.pid && w.restarts === 1;
    });
    const after = await load(`${gw.url}/v`, 50, 4);
    expect(after.statuses.get(200)).toBe(50);
    expect(after.errors).toEqual([]);
  });

  it('SIGTERM under load: in-flight requests complete, exit 0', async () => {
    const gw = await startCli(cfg('t'), ['--workers', '2']);
    running.push(gw);
    const inflight = Array.from({ length: 8 }, () => request(`${gw.url}/slow`, { agent: false }));
    await sleep(150);
    const code = gw.stop('SIGTERM');
    const results = await Promise.all(inflight);
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(await code).toBe(0);
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
    const families = parsePrometheusTextFormat(text) as Array<{ name: string; type: string; metrics: Array<{ value?: string; labels?: Record<string, string> }> }>;
    const byName = new Map(families.map((f) => [f.name, f]));
    const total = byName.get('gateway_requests_total')!;
    expect(total.type).toBe('COUNTER');
    expect(Number(total.metrics.find((m) => m.labels?.code === '2xx')!.value)).toBeGreaterThanOrEqual(60);
    expect(byName.get('gateway_request_duration_seconds')!.type).toBe('SUMMARY');
    expect(byName.get('gateway_worker_rss_bytes')!.metrics).toHaveLength(2);

    expect((await request(`${gw.adminUrl}/health`)).status).toBe(200);
    const conf = JSON.parse((await request(`${gw.adminUrl}/config`)).body);
    expect(conf.routes[0].path).toBe('/v');
  });

  it('/ready is 503 while draining', async () => {
    const gw = await startCli(cfg('r'), ['--workers', '0']);
    running.push(gw);
    expect((await request(`${gw.adminUrl}/ready`)).status).toBe(200);
    const slow = request(`${gw.url}/slow`, { agent: false });
    await sleep(100);
    gw.proc.kill('SIGTERM');
    await sleep(100);
    const r = await request(`${gw.adminUrl}/ready`, { agent: false }).catch(() => ({ status: 503 }));
    expect(r.status).toBe(503);
    expect((await slow).status).toBe(200);
  });
});

/** The JSON log line with this msg, once the process has written it (or a clear failure with what it did write). */
async function logLine(output: () => string, exited: () => boolean, msg: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    for (const line of output().split('\n')) {
      if (!line.startsWith('{')) continue;
      const j = JSON.parse(line) as Record<string, unknown>;
      if (j.msg === msg) return j;
    }
    if (exited() || Date.now() > deadline) throw new Error(`no "${msg}" log line; output:\n${output()}`);
    await sleep(25);
  }
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
      const line = await logLine(() => out, () => proc.exitCode !== null, 'gateway listening');
      expect(line.config).toBe('embedded default config');
      expect(line.address).toBe(`127.0.0.1:${line.port as number}`);
      expect(line.admin).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(line.port).toBeGreaterThan(0);
    } finally {
      proc.kill('SIGKILL');
    }
  });
});
