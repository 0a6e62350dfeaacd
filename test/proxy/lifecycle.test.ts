import { afterAll, describe, expect, it } from 'vitest';
import { CLIENT_VARIANTS, request, startProxy, startUpstream, type GatewayUnderTest, type TestUpstream } from './helpers.js';

describe.each(CLIENT_VARIANTS)('reload and observability (%s client)', (variant) => {
  const ups: TestUpstream[] = [];
  let gw: GatewayUnderTest | null = null;
  afterAll(async () => {
    await gw?.close();
    await Promise.all(ups.map((u) => u.close()));
  });

  it('a reload switches targets while a request in flight on the old pool completes', async () => {
    let release: (() => void) | null = null;
    const a = await startUpstream('a', (req, res) => {
      if (req.url === '/slow') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('slow-');
        release = () => res.end('done');
        return;
      }
      res.end('a');
    });
    const b = await startUpstream('b');
    ups.push(a, b);
    const routes = [{ path: '/*', upstream: 'svc' }];
    gw = await startProxy(variant, { svc: { targets: [a.url] } }, routes);
    const slow = request(gw.url, { path: '/slow' });
    await new Promise<void>((r) => {
      const t = setInterval(() => {
        if (release !== null) {
          clearInterval(t);
          r();
        }
      }, 10);
    });
    const result = await gw.gw.reload({
      server: { host: '127.0.0.1' },
      admin: { enabled: false },
      logging: { level: 'silent', accessLog: false },
      variants: { upstream: variant },
      upstreams: { svc: { targets: [b.url] } },
      routes,
    });
    expect(result.ok).toBe(true);
    expect((await request(gw.url, { path: '/x' })).body).toBe('b');
    release!();
    const s = await slow;
    expect(s.status).toBe(200);
    expect(s.body).toBe('slow-done');
  });

  it('stats and Prometheus lines describe every target', async () => {
    const m = gw!.manager();
    const stats = m.stats() as Record<string, { balancer: string; targets: Array<Record<string, unknown>> }>;
    expect(stats.svc!.balancer).toBe('round-robin');
    const t = stats.svc!.targets[0]!;
    expect(t).toMatchObject({ url: ups[1]!.url, healthy: true, circuit: 'closed', active: 0 });
    expect(t.requests).toBeGreaterThanOrEqual(1);
    const lines = m.prometheusLines();
    for (const metric of [
      'gateway_upstream_target_healthy',
      'gateway_upstream_target_circuit_state',
      'gateway_upstream_target_active_requests',
      'gateway_upstream_target_requests_total',
      'gateway_upstream_target_failures_total',
      'gateway_upstream_retries_total',
    ]) {
      expect(lines).toContain(`# TYPE ${metric} ${metric.endsWith('_total') ? 'counter' : 'gauge'}`);
      expect(lines.some((l) => l.startsWith(`${metric}{upstream="svc"`))).toBe(true);
    }
    expect(lines).toContain(`gateway_upstream_target_requests_total{upstream="svc",target="${ups[1]!.url}"} ${t.requests}`);
  });
});
