import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { request } from '../support/http.js';

let gw: RunningGateway;
beforeAll(async () => {
  gw = await startGateway({ logging: { level: 'silent' }, routes: [{ path: '/a', methods: ['GET'], response: { body: 'a' } }] });
});
afterAll(() => gw?.close());

describe('GET /stats', () => {
  it('has clean numbers: latencies to the microsecond, no float noise', async () => {
    for (let i = 0; i < 200; i++) await request(`${gw.url}/a`);
    const r = await request(`${gw.adminUrl}/stats`);
    expect(r.status).toBe(200);
    const numbers = r.body.match(/-?\d+\.\d+(e-?\d+)?/g) ?? [];
    // a bucket midpoint times a scale printed whole looks like 6.471993000000111
    const noisy = numbers.filter((n) => /\.\d{5,}/.test(n) && !/^-?0\.0*\d{1,4}$/.test(n));
    expect(noisy).toEqual([]);
    const stats = JSON.parse(r.body) as { metrics: { latency: { p99: number; count: number } } };
    expect(stats.metrics.latency.count).toBeGreaterThanOrEqual(200);
    // to the microsecond from 1 ms up; below 1 ms (an idle machine) 4 significant digits
    const p99 = stats.metrics.latency.p99;
    expect(p99 >= 1 ? Math.round(p99 * 1000) / 1000 : Number(p99.toPrecision(4))).toBe(p99);
  });
});
