import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { request } from '../support/http.js';
import { closedPortUrl, startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { until } from '../support/wait.js';

const opened: Array<{ close(): Promise<void> }> = [];
let gw: RunningGateway | null = null;

afterEach(async () => {
  await gw?.close();
  gw = null;
  await Promise.all(opened.splice(0).map((u) => u.close()));
});

async function upstream(name: string, answer?: (req: IncomingMessage, res: ServerResponse) => void): Promise<RecordingUpstream> {
  const u = await startUpstream(name, answer);
  opened.push(u);
  return u;
}

async function start(primary: string, mirrorUrl: string, mirror: Record<string, unknown>, route: Record<string, unknown> = {}): Promise<RunningGateway> {
  gw = await startGateway({
    server: { host: '127.0.0.1' },
    admin: { enabled: true, host: '127.0.0.1', port: 0 },
    logging: { level: 'silent', accessLog: false },
    upstreams: {
      primary: { targets: [primary] },
      shadow: { targets: [mirrorUrl], circuitBreaker: { enabled: false }, healthCheck: { passive: { enabled: false } } },
    },
    routes: [{ name: 'api', path: '/api/*', upstream: 'primary', mirror: { upstream: 'shadow', ...mirror }, ...route }],
  });
  return gw;
}

interface MirrorStats {
  sent: number;
  completed: number;
  inFlight: number;
  dropped: Record<string, number>;
  failed: { timeout: number; error: number };
  compare: {
    agree: number;
    differ: number;
    skipped: number;
    fields: Record<string, number>;
    differences: Array<{
      path: string;
      fields: string[];
      primary: { status: number; headers: Record<string, string> };
      mirror: { status: number; headers: Record<string, string> } | null;
      error: string | null;
    }>;
  } | null;
}

async function mirrorStats(): Promise<MirrorStats> {
  const stats = JSON.parse((await request(`${gw!.adminUrl}/stats`)).body) as { workers: Array<{ traffic: Record<string, { mirror: MirrorStats }> }> };
  return stats.workers[0]!.traffic.api!.mirror;
}

/** until() with the condition's own text as the message when it times out. */
function waitFor(cond: () => boolean | Promise<boolean>): Promise<void> {
  return until(cond, { message: async () => `${cond.toString()} (mirror stats: ${JSON.stringify(await mirrorStats().catch(() => null))})` });
}

/** An upstream that takes requests and never answers (the gateway's timeouts or a closed connection end them). */
function never(): (req: IncomingMessage, res: ServerResponse) => void {
  return (req) => req.resume();
}

describe('mirror', () => {
  it('sends a copy with method, path, headers and body; the client gets the primary answer only', async () => {
    const primary = await upstream('primary');
    const shadow = await upstream('shadow');
    await start(primary.url, shadow.url, {});
    const r = await request(`${gw!.url}/api/orders?id=7`, { method: 'POST', body: 'hello mirror', headers: { 'content-type': 'text/plain', 'x-trace': 't1' } });
    expect(r.status).toBe(200);
    expect(r.body).toBe('primary');
    await waitFor(() => shadow.requests.length === 1);
    const copy = shadow.requests[0]!;
    expect(copy.method).toBe('POST');
    expect(copy.url).toBe('/api/orders?id=7');
    expect(copy.body.toString()).toBe('hello mirror');
    expect(copy.headers).toMatchObject({ 'x-trace': 't1', 'content-type': 'text/plain', 'x-gateway-mirror': '1', 'content-length': '12' });
    expect(primary.requests[0]!.body.toString()).toBe('hello mirror');
    expect(primary.requests[0]!.headers['x-gateway-mirror']).toBeUndefined();
  });

  it('copies a chunked body too, and leaves it out with body: false', async () => {
    const primary = await upstream('primary');
    const shadow = await upstream('shadow');
    await start(primary.url, shadow.url, { body: false });
    await request(`${gw!.url}/api/a`, { method: 'PUT', body: 'not copied', headers: { 'transfer-encoding': 'chunked' } });
    await waitFor(() => shadow.requests.length === 1);
    expect(shadow.requests[0]!.body.length).toBe(0);
    expect(shadow.requests[0]!.headers['content-length']).toBe('0');
    expect(primary.requests[0]!.body.toString()).toBe('not copied');
  });

  it('mirrors exactly the share asked, and no body over maxBodyBytes (counted as dropped)', async () => {
    const primary = await upstream('primary');
    const shadow = await upstream('shadow');
    await start(primary.url, shadow.url, { percent: 25, maxBodyBytes: 8 });
    for (let i = 0; i < 20; i++) expect((await request(`${gw!.url}/api/${i}`)).status).toBe(200);
    await waitFor(() => shadow.requests.length === 5);
    expect(shadow.requests.map((a) => a.url)).toEqual(['/api/3', '/api/7', '/api/11', '/api/15', '/api/19']);
    // with a Content-Length over the bound it is not tee'd at all; chunked, it is given up once past it
    for (let i = 0; i < 4; i++) await request(`${gw!.url}/api/big`, { method: 'POST', body: 'x'.repeat(100) });
    for (let i = 0; i < 4; i++) await request(`${gw!.url}/api/big`, { method: 'POST', body: 'y'.repeat(100), headers: { 'transfer-encoding': 'chunked' } });
    expect(primary.requests.filter((a) => a.url === '/api/big').map((a) => a.body.length)).toEqual([100, 100, 100, 100, 100, 100, 100, 100]);
    const s = await mirrorStats();
    expect(s.dropped.bodyTooLarge).toBe(2);
    expect(shadow.requests.filter((a) => a.url === '/api/big')).toEqual([]);
    expect((await request(`${gw!.adminUrl}/metrics`)).body).toContain('gateway_mirror_dropped_total{route="api",upstream="shadow",reason="body_too_large"} 2');
  });

  it('a mirror that never answers holds at most maxConcurrent exchanges, drops the rest (counted), and times out', async () => {
    const primary = await upstream('primary');
    const shadow = await upstream('shadow', never());
    await start(primary.url, shadow.url, { maxConcurrent: 2, timeoutMs: 60_000 });
    for (let i = 0; i < 10; i++) {
      const r = await request(`${gw!.url}/api/${i}`, { method: 'POST', body: `body ${i}` });
      expect(r.status).toBe(200);
      expect(r.body).toBe('primary');
    }
    await waitFor(() => shadow.received.length === 2);
    const s = await mirrorStats();
    expect(s.inFlight).toBe(2);
    expect(s.sent).toBe(2);
    expect(s.dropped.concurrency).toBe(8);
    const metrics = (await request(`${gw!.adminUrl}/metrics`)).body;
    expect(metrics).toContain('gateway_mirror_dropped_total{route="api",upstream="shadow",reason="concurrency"} 8');
    expect(metrics).toContain('gateway_mirror_in_flight{route="api",upstream="shadow"} 2');
    expect(shadow.connections).toBe(2);

    // the same mirror with a short timeout: every exchange ends, freeing its slot
    await gw!.close();
    gw = null;
    await start(primary.url, shadow.url, { maxConcurrent: 2, timeoutMs: 150 });
    for (let i = 0; i < 3; i++) expect((await request(`${gw!.url}/api/t${i}`)).status).toBe(200);
    await waitFor(async () => (await mirrorStats()).failed.timeout >= 1 && (await mirrorStats()).inFlight === 0);
    expect((await request(`${gw!.url}/api/after`)).status).toBe(200);
    await waitFor(async () => (await mirrorStats()).sent >= 2);
  });

  it('a dead mirror costs the primary nothing but a counted failure', async () => {
    const primary = await upstream('primary');
    await start(primary.url, await closedPortUrl(), {});
    for (let i = 0; i < 5; i++) {
      const r = await request(`${gw!.url}/api/${i}`, { method: 'POST', body: 'payload' });
      expect([r.status, r.body]).toEqual([200, 'primary']);
    }
    expect(primary.requests.map((a) => a.body.toString())).toEqual(Array(5).fill('payload'));
    await waitFor(async () => (await mirrorStats()).failed.error === 5);
    expect((await request(`${gw!.adminUrl}/metrics`)).body).toContain('gateway_mirror_failures_total{route="api",upstream="shadow",reason="error"} 5');
  });

  it('a client that leaves mid-body reaches neither side whole; the mirror slot is freed', async () => {
    const primary = await upstream('primary');
    const shadow = await upstream('shadow');
    await start(primary.url, shadow.url, {});
    const { connect } = await import('node:net');
    const sock = connect(gw!.port, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write('POST /api/cut HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\npartial');
    await waitFor(() => primary.received.length === 1);
    sock.destroy();
    await waitFor(async () => (await mirrorStats()).dropped.clientAborted === 1);
    expect((await mirrorStats()).inFlight).toBe(0);
    expect(shadow.received).toEqual([]);
  });
});

describe('mirror.compare', () => {
  /** Answers by path: the mirror differs from the primary on /status, /body and /header. */
  const answer =
    (side: 'primary' | 'mirror') =>
    (req: IncomingMessage, res: ServerResponse): void => {
      req.resume();
      req.on('end', () => {
        const path = req.url!.split('?')[0]!;
        const status = side === 'mirror' && path.endsWith('/status') ? 500 : 200;
        const body = side === 'mirror' && path.endsWith('/body') ? 'changed' : `same body for ${path}`;
        const headers: Record<string, string> = { 'content-type': 'text/plain', 'set-cookie': `session=${side}-secret` };
        if (side === 'mirror' && path.endsWith('/header')) headers['content-type'] = 'application/json';
        if (path.endsWith('/stream')) {
          res.writeHead(status, headers);
          for (let i = 0; i < 64; i++) res.write(`${String(i).padStart(4, '0')}${'z'.repeat(1020)}`);
          res.end();
          return;
        }
        res.writeHead(status, headers);
        res.end(body);
      });
    };

  it('counts agreements and differences per field, keeps the first few differing pairs, redacted', async () => {
    const primary = await upstream('primary', answer('primary'));
    const shadow = await upstream('shadow', answer('mirror'));
    await start(primary.url, shadow.url, { compare: true, compareHeaders: ['content-type', 'set-cookie'], keepDifferences: 2 });
    // set-cookie differs on every pair (the upstreams name themselves): compared, as asked
    for (const p of ['/api/same', '/api/status?token=abc', '/api/body', '/api/header']) await request(`${gw!.url}${p}`);
    await waitFor(async () => {
      const c = (await mirrorStats()).compare!;
      return c.agree + c.differ === 4;
    });
    const c = (await mirrorStats()).compare!;
    expect(c.differ).toBe(4);
    expect(c.fields).toEqual({ status: 1, headers: 4, body: 1, error: 0 });
    expect(c.differences.length).toBe(2);

    const kept = JSON.parse((await request(`${gw!.adminUrl}/mirror/differences`)).body) as {
      routes: { api: NonNullable<MirrorStats['compare']>['differences'] };
    };
    expect(kept.routes.api.map((d) => d.path)).toEqual(['/api/same', '/api/status?token=[redacted]']);
    const pair = kept.routes.api[1]!;
    expect(pair.fields).toEqual(['status', 'headers']);
    expect(pair.primary).toMatchObject({ status: 200, headers: { 'content-type': 'text/plain', 'set-cookie': '[redacted]' } });
    expect(pair.mirror).toMatchObject({ status: 500, headers: { 'content-type': 'text/plain', 'set-cookie': '[redacted]' } });
    const text = JSON.stringify(kept);
    expect(text).not.toContain('secret');
    expect(text).not.toContain('abc');

    const metrics = (await request(`${gw!.adminUrl}/metrics`)).body;
    expect(metrics).toContain('gateway_mirror_comparisons_total{route="api",upstream="shadow",result="differ"} 4');
    expect(metrics).toContain('gateway_mirror_differences_total{route="api",upstream="shadow",field="body"} 1');
  });

  it('agrees on identical answers, streamed bodies included, which reach the client whole', async () => {
    const primary = await upstream('primary', answer('primary'));
    const shadow = await upstream('shadow', answer('mirror'));
    await start(primary.url, shadow.url, { compare: true });
    const streamed = await request(`${gw!.url}/api/stream`);
    expect(streamed.body.length).toBe(64 * 1024);
    expect(streamed.body.slice(1024, 1028)).toBe('0001');
    await request(`${gw!.url}/api/same`);
    await waitFor(async () => (await mirrorStats()).compare!.agree === 2);
    expect((await mirrorStats()).compare!.differ).toBe(0);
  });

  it('a mirror that fails is a difference of kind error', async () => {
    const primary = await upstream('primary', answer('primary'));
    await start(primary.url, await closedPortUrl(), { compare: true });
    await request(`${gw!.url}/api/same`);
    await waitFor(async () => (await mirrorStats()).compare!.differ === 1);
    const c = (await mirrorStats()).compare!;
    expect(c.fields.error).toBe(1);
    expect(c.differences[0]!.mirror).toBeNull();
    expect(c.differences[0]!.error).toBe('connect error');
  });
});
