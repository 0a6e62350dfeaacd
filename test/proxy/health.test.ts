import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../support/wait.js';
import { CLIENT_VARIANTS, closedPortUrl, request, sleep, startProxy, startUpstream, type GatewayUnderTest } from './helpers.js';

type Closer = { close(): Promise<void> };

describe.each(CLIENT_VARIANTS)('circuit breaker and health checks (%s client)', (variant) => {
  const closers: Closer[] = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((c) => c.close()));
  });

  async function proxy(upstream: Record<string, unknown>): Promise<GatewayUnderTest> {
    const gw = await startProxy(variant, { svc: upstream }, [{ path: '/*', upstream: 'svc' }]);
    closers.push(gw);
    return gw;
  }

  it('closed → open → half-open (limited probes) → closed, and a failed probe re-opens', async () => {
    let failing = true;
    let hold: Array<() => void> | null = null;
    const up = await startUpstream('b', (_req, res) => {
      const answer = (): void => {
        res.statusCode = failing ? 503 : 200;
        res.end(failing ? 'down' : 'up');
      };
      if (hold !== null) hold.push(answer);
      else answer();
    });
    closers.push(up);
    const gw = await proxy({
      targets: [up.url],
      retries: { count: 0 },
      healthCheck: { passive: { enabled: false } },
      circuitBreaker: { enabled: true, failureRatio: 0.5, minRequests: 4, windowMs: 10000, openMs: 300, halfOpenRequests: 2 },
    });
    const circuit = (): unknown => gw.stats('svc').targets[0]!.circuit;

    for (let i = 0; i < 4; i++) expect((await request(gw.url, { path: '/x' })).status).toBe(503);
    expect(circuit()).toBe('open');
    const seen = up.received.length;
    const shed = await request(gw.url, { path: '/x' });
    expect(shed.status).toBe(503);
    expect(shed.headers['retry-after']).toBe('1');
    // shed by the gateway: the upstream did not see it
    expect(up.received.length).toBe(seen);

    // after openMs: half-open; a failed probe re-opens
    await sleep(350);
    expect((await request(gw.url, { path: '/x' })).status).toBe(503);
    expect(up.received.length).toBe(seen + 1);
    expect(circuit()).toBe('open');

    // half-open again, upstream recovered; at most 2 probes in flight: a third concurrent request is shed
    await sleep(350);
    failing = false;
    hold = [];
    const probes = [request(gw.url, { path: '/p1' }), request(gw.url, { path: '/p2' })];
    await until(() => hold!.length === 2, { timeoutMs: 5000, message: () => `2 requests held upstream (${hold!.length})` });
    expect(circuit()).toBe('half-open');
    expect((await request(gw.url, { path: '/p3' })).status).toBe(503);
    const waiting = hold;
    hold = null;
    for (const f of waiting) f();
    for (const r of await Promise.all(probes)) expect(r.status).toBe(200);
    expect(circuit()).toBe('closed');
    expect((await request(gw.url, { path: '/x' })).status).toBe(200);
    expect(gw.stats('svc').targets[0]!.circuitOpens).toBe(2);
  });

  it('active health check takes a failing target out and puts it back when it recovers', async () => {
    let sick = false;
    const handler = (name: string) => (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.url === '/healthz') {
        res.statusCode = name === 'a' && sick ? 500 : 200;
        res.end();
        return;
      }
      res.end(name);
    };
    const a = await startUpstream('a', handler('a'));
    const b = await startUpstream('b', handler('b'));
    closers.push(a, b);
    const gw = await proxy({
      targets: [a.url, b.url],
      healthCheck: { active: { enabled: true, path: '/healthz', intervalMs: 30, timeoutMs: 500, healthyThreshold: 2, unhealthyThreshold: 2 } },
    });
    const healthy = (): unknown => gw.stats('svc').targets[0]!.healthy;
    await until(() => a.received.some((r) => r.url === '/healthz'), { timeoutMs: 5000, message: 'an active probe of /healthz arrived' });
    sick = true;
    await until(() => healthy() === false, { timeoutMs: 5000, message: 'the target marked unhealthy' });
    const lines = gw.manager().prometheusLines();
    expect(lines).toContain(`gateway_upstream_target_healthy{upstream="svc",target="${a.url}"} 0`);
    expect(lines).toContain(`gateway_upstream_target_healthy{upstream="svc",target="${b.url}"} 1`);
    for (let i = 0; i < 6; i++) expect((await request(gw.url, { path: '/x' })).body).toBe('b');
    sick = false;
    await until(() => healthy() === true, { timeoutMs: 5000, message: 'the target healthy again' });
    const bodies = new Set<string>();
    for (let i = 0; i < 6; i++) bodies.add((await request(gw.url, { path: '/x' })).body);
    expect([...bodies].sort()).toEqual(['a', 'b']);
  });

  it('an active block without "enabled" probes (the README writes it that way); enabled: false does not', async () => {
    const probed = await startUpstream('p');
    const off = await startUpstream('o');
    closers.push(probed, off);
    // README shape: path and intervalMs only
    const gw = await proxy({ targets: [probed.url], healthCheck: { active: { path: '/probe', intervalMs: 20 } } });
    const gwOff = await startProxy(variant, { svc: { targets: [off.url], healthCheck: { active: { enabled: false, path: '/probe', intervalMs: 20 } } } }, [
      { path: '/*', upstream: 'svc' },
    ]);
    closers.push(gwOff);
    const probes = (u: typeof probed): number => u.received.filter((r) => r.url === '/probe').length;
    // The gateway counts a probe once its answer is in, after the upstream saw it: wait on the counter itself.
    const checks = (): number => gw.stats('svc').healthChecks as number;
    await until(() => checks() >= 3, { timeoutMs: 5000, message: () => `3 checks (seen ${checks()})` });
    expect(probes(probed)).toBeGreaterThanOrEqual(3);
    // by the time the first gateway made three probes, the disabled one had as long to make one
    expect(probes(off)).toBe(0);
  });

  it('an active check on a dead target marks it unhealthy', async () => {
    const b = await startUpstream('b');
    closers.push(b);
    const dead = await closedPortUrl();
    const gw = await proxy({
      targets: [dead, b.url],
      healthCheck: { active: { enabled: true, path: '/', intervalMs: 20, timeoutMs: 200, healthyThreshold: 1, unhealthyThreshold: 1 } },
    });
    await until(() => gw.stats('svc').targets[0]!.healthy === false, { timeoutMs: 5000, message: 'the dead target marked unhealthy' });
    expect(gw.stats('svc').targets[1]!.healthy).toBe(true);
  });

  it('passive marking after consecutive failures', async () => {
    const b = await startUpstream('b');
    closers.push(b);
    const gw = await proxy({
      targets: [await closedPortUrl(), b.url],
      retries: { count: 0 },
      circuitBreaker: { enabled: false },
      healthCheck: { passive: { enabled: true, failures: 2, windowMs: 60000 } },
    });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await request(gw.url, { path: '/x' })).status);
    // round-robin: the dead target fails twice, then is out of rotation
    expect(statuses.filter((s) => s === 502).length).toBe(2);
    expect(gw.stats('svc').targets[0]!.passiveDown).toBe(true);
    expect(statuses.slice(4)).toEqual([200, 200, 200, 200]);
  });
});
