import http from 'node:http';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { until } from '../support/wait.js';
import { CLIENT_VARIANTS, closedPortUrl, request, sleep, startProxy, startRawServer, startUpstream, type GatewayUnderTest } from './helpers.js';

type Closer = { close(): Promise<void> };

/** GET through the gateway; reports whether the body ended cleanly or the connection was cut. */
function getOutcome(url: string, path: string): Promise<{ status: number; bytes: number; clean: boolean; error: string | null }> {
  return new Promise((resolve) => {
    const u = new URL(url);
    let status = 0;
    let bytes = 0;
    let done = false;
    const finish = (clean: boolean, error: string | null): void => {
      if (done) return;
      done = true;
      resolve({ status, bytes, clean, error });
    };
    const req = http.get({ hostname: u.hostname, port: u.port, path, agent: false }, (res) => {
      status = res.statusCode!;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => finish(res.complete, null));
      res.on('error', (e) => finish(false, e.message));
      res.on('close', () => finish(res.complete && res.readableEnded, 'closed'));
    });
    req.on('error', (e) => finish(false, e.message));
  });
}

describe.each(CLIENT_VARIANTS)('error mapping (%s client)', (variant) => {
  const closers: Closer[] = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await Promise.all(closers.splice(0).map((c) => c.close()));
  });

  async function proxy(upstream: Record<string, unknown>, route: Record<string, unknown> = {}): Promise<GatewayUnderTest> {
    const gw = await startProxy(variant, { svc: upstream }, [{ path: '/*', upstream: 'svc', ...route }]);
    closers.push(gw);
    return gw;
  }

  it('connection refused → 502 (after the allowed retry)', async () => {
    const gw = await proxy({ targets: [await closedPortUrl()], circuitBreaker: { enabled: false }, healthCheck: { passive: { enabled: false } } });
    const r = await request(gw.url, { path: '/x' });
    expect(r.status).toBe(502);
    expect(gw.stats('svc').retries).toBe(1);
    const p = await request(gw.url, { path: '/x', method: 'POST', body: 'data' });
    expect(p.status).toBe(502);
    // POST is not idempotent: no retry
    expect(gw.stats('svc').retries).toBe(1);
  });

  it('connection reset before any response byte → 502', async () => {
    const raw = await startRawServer((s) => s.once('data', () => s.resetAndDestroy()));
    closers.push(raw);
    const gw = await proxy({ targets: [raw.url], retries: { count: 0 } });
    expect((await request(gw.url, { path: '/x' })).status).toBe(502);
  });

  it('garbage instead of HTTP → 502', async () => {
    const raw = await startRawServer((s) => s.once('data', () => s.end('SSH-2.0-nope\r\n\r\n')));
    closers.push(raw);
    const gw = await proxy({ targets: [raw.url], retries: { count: 0 } });
    expect((await request(gw.url, { path: '/x' })).status).toBe(502);
  });

  it('upstream accepts but never answers → 504', async () => {
    const raw = await startRawServer(() => {});
    closers.push(raw);
    const gw = await proxy({ targets: [raw.url], timeouts: { headersMs: 300 } });
    const r = await request(gw.url, { path: '/x' });
    expect(r.status).toBe(504);
  });

  it('slow response headers → 504; a longer route timeoutMs lets it through', async () => {
    const up = await startUpstream('slow', (_req, res) => {
      setTimeout(() => res.end('late'), 600);
    });
    closers.push(up);
    const upstream = { targets: [up.url], timeouts: { headersMs: 150, requestMs: 150 } };
    const gw = await startProxy(variant, { svc: upstream }, [
      { path: '/patient/*', upstream: 'svc', timeoutMs: 3000 },
      { path: '/*', upstream: 'svc' },
    ]);
    closers.push(gw);
    expect((await request(gw.url, { path: '/x' })).status).toBe(504);
    const ok = await request(gw.url, { path: '/patient/x' });
    expect(ok.status).toBe(200);
    expect(ok.body).toBe('late');
  });

  it('upstream dies mid-body (content-length) → client connection aborted, never a clean end', async () => {
    const raw = await startRawServer((s) =>
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n' + 'x'.repeat(1000));
        setTimeout(() => s.destroy(), 50);
      }),
    );
    closers.push(raw);
    const gw = await proxy({ targets: [raw.url] });
    const r = await getOutcome(gw.url, '/x');
    expect(r.status).toBe(200);
    expect(r.clean).toBe(false);
    expect(r.bytes).toBeLessThan(100000);
  });

  it('upstream dies mid-body (chunked) → client connection aborted, never a clean end', async () => {
    const up = await startUpstream('dying', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first chunk');
      setTimeout(() => res.socket?.destroy(), 50);
    });
    closers.push(up);
    const gw = await proxy({ targets: [up.url] });
    const r = await getOutcome(gw.url, '/x');
    expect(r.status).toBe(200);
    expect(r.clean).toBe(false);
    expect(r.bytes).toBe('first chunk'.length);
    // the gateway is still fine
    const ok = await startUpstream('ok');
    closers.push(ok);
    const gw2 = await proxy({ targets: [ok.url] });
    expect((await request(gw2.url, { path: '/y' })).status).toBe(200);
  });

  it('upstream stalls mid-body beyond idleMs → client connection aborted', async () => {
    const up = await startUpstream('stall', (_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('partial');
    });
    closers.push(up);
    const gw = await proxy({ targets: [up.url], timeouts: { idleMs: 300 } });
    const r = await getOutcome(gw.url, '/x');
    expect(r.status).toBe(200);
    expect(r.clean).toBe(false);
    expect(r.bytes).toBe('partial'.length);
    await until(() => gw.stats('svc').targets[0]!.active === 0, { timeoutMs: 5000, message: 'the stalled exchange released its target slot' });
    expect(gw.stats('svc').targets[0]!.failures).toBe(1);
  });

  it('no available target → 503 with Retry-After', async () => {
    const gw = await proxy({
      targets: [await closedPortUrl()],
      retries: { count: 0 },
      circuitBreaker: { enabled: true, minRequests: 2, failureRatio: 0.5, openMs: 5000 },
    });
    expect((await request(gw.url, { path: '/x' })).status).toBe(502);
    expect((await request(gw.url, { path: '/x' })).status).toBe(502);
    const r = await request(gw.url, { path: '/x' });
    expect(r.status).toBe(503);
    const ra = Number(r.headers['retry-after']);
    expect(ra).toBeGreaterThanOrEqual(1);
    expect(ra).toBeLessThanOrEqual(5);
  });

  it('retries go to another target and recover the request', async () => {
    const good = await startUpstream('good');
    closers.push(good);
    const gw = await proxy({
      targets: [await closedPortUrl(), good.url],
      balancer: 'round-robin',
      retries: { budgetRatio: 1 },
      circuitBreaker: { enabled: false },
      healthCheck: { passive: { enabled: false } },
    });
    for (let i = 0; i < 6; i++) {
      const r = await request(gw.url, { path: '/x' });
      expect(r.status).toBe(200);
      expect(r.body).toBe('good');
    }
  });

  it('a 503 answer is retried for GET, and the retry budget caps retries', async () => {
    let n = 0;
    const up = await startUpstream('flaky', (_req, res) => {
      n++;
      res.statusCode = 503;
      res.end('busy');
    });
    closers.push(up);
    const gw = await proxy({
      targets: [up.url],
      retries: { count: 1, budgetRatio: 0 },
      circuitBreaker: { enabled: false },
      healthCheck: { passive: { enabled: false } },
    });
    for (let i = 0; i < 10; i++) {
      const r = await request(gw.url, { path: '/x' });
      expect(r.status).toBe(503);
    }
    const s = gw.stats('svc');
    // budgetRatio 0 leaves only the per-window floor (3) of retries
    expect(s.retries).toBe(3);
    expect(n).toBe(13);
    await sleep(10);
  });
});
