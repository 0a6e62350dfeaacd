import { Agent } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { slidingWindow, tokenBucket, type KeyState } from '../../core/plugins/builtin/rate-limit/algorithms.js';
import { request } from '../support/http.js';
import { gatewayFor } from './helpers.js';

let gw: RunningGateway;

beforeAll(async () => {
  gw = await gatewayFor({
    routes: [
      { path: '/tb', methods: ['GET'], response: { body: 'ok' }, plugins: [{ name: 'rate-limit', options: { limit: 3, windowMs: 60_000 } }] },
      {
        path: '/sw',
        methods: ['GET'],
        response: { body: 'ok' },
        plugins: [{ name: 'rate-limit', options: { limit: 2, windowMs: 60_000, algorithm: 'sliding-window', bucket: 'sw' } }],
      },
      {
        path: '/by-header',
        methods: ['GET'],
        response: { body: 'ok' },
        plugins: [{ name: 'rate-limit', options: { limit: 1, windowMs: 60_000, key: 'header:x-tenant' } }],
      },
      {
        path: '/by-subject',
        methods: ['GET'],
        response: { body: 'ok' },
        plugins: [
          {
            name: 'auth',
            options: {
              apiKey: {
                keys: [
                  '2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b' /* sha256("secret") */,
                  { name: 'other', sha256: '81b637d8fcd2c6da6359e6963113a1170de795e4b725b84d1e0b4cfd9ec58ce9' /* sha256("bob") */ },
                ],
              },
            },
          },
          { name: 'rate-limit', options: { limit: 1, windowMs: 60_000, key: 'subject' } },
        ],
      },
      {
        path: '/conn-header',
        methods: ['GET'],
        response: { body: 'ok' },
        plugins: [{ name: 'rate-limit', options: { limit: 1, windowMs: 60_000, key: 'header:x-tenant' } }],
      },
      { path: '/conn-ip', methods: ['GET'], response: { body: 'ok' }, plugins: [{ name: 'rate-limit', options: { limit: 2, windowMs: 60_000 } }] },
      { path: '/a', methods: ['GET'], response: { body: 'a' }, plugins: [{ name: 'rate-limit', options: { limit: 1, windowMs: 60_000, bucket: 'shared' } }] },
      { path: '/b', methods: ['GET'], response: { body: 'b' }, plugins: [{ name: 'rate-limit', options: { limit: 1, windowMs: 60_000, bucket: 'shared' } }] },
    ],
  });
});
afterAll(() => gw.close());

describe('rate-limit (memory store, single process)', () => {
  it('token bucket: limit, then 429 with Retry-After and RateLimit-* headers', async () => {
    const seen: Array<[number, string | undefined]> = [];
    for (let i = 0; i < 3; i++) {
      const r = await request(`${gw.url}/tb`);
      seen.push([r.status, r.headers['ratelimit-remaining'] as string | undefined]);
      expect(r.headers['ratelimit-limit']).toBe('3');
    }
    expect(seen).toEqual([
      [200, '2'],
      [200, '1'],
      [200, '0'],
    ]);
    const r = await request(`${gw.url}/tb`);
    expect(r.status).toBe(429);
    expect(JSON.parse(r.body)).toEqual({ error: 'Too Many Requests', statusCode: 429 });
    // one token per 20 s at 3 per minute
    expect(r.headers['retry-after']).toBe('20');
    expect(r.headers['ratelimit-limit']).toBe('3');
    expect(r.headers['ratelimit-remaining']).toBe('0');
    expect(Number(r.headers['ratelimit-reset'])).toBeGreaterThan(55);
  });

  it('sliding window', async () => {
    expect((await request(`${gw.url}/sw`)).status).toBe(200);
    expect((await request(`${gw.url}/sw`)).status).toBe(200);
    const r = await request(`${gw.url}/sw`);
    expect(r.status).toBe(429);
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('keys by a header, falling back to the client address', async () => {
    expect((await request(`${gw.url}/by-header`, { headers: { 'x-tenant': 't1' } })).status).toBe(200);
    expect((await request(`${gw.url}/by-header`, { headers: { 'x-tenant': 't1' } })).status).toBe(429);
    expect((await request(`${gw.url}/by-header`, { headers: { 'x-tenant': 't2' } })).status).toBe(200);
    expect((await request(`${gw.url}/by-header`)).status).toBe(200);
    expect((await request(`${gw.url}/by-header`)).status).toBe(429);
  });

  it('one keep-alive connection switching keys gets each key its own budget; connections from one address share it', async () => {
    const one = new Agent({ keepAlive: true, maxSockets: 1 });
    const other = new Agent({ keepAlive: true, maxSockets: 1 });
    const ports = new Set<number>();
    one.on('free', (socket: { localPort?: number }) => ports.add(socket.localPort ?? -1));
    try {
      const get = (path: string, tenant: string | null, agent: Agent): Promise<number> =>
        request(`${gw.url}${path}`, { agent, headers: tenant === null ? {} : { 'x-tenant': tenant } }).then((r) => r.status);
      expect(await get('/conn-header', 'a', one)).toBe(200);
      expect(await get('/conn-header', 'b', one)).toBe(200);
      expect(await get('/conn-header', 'a', one)).toBe(429);
      expect(await get('/conn-header', 'b', one)).toBe(429);
      expect(await get('/conn-header', 'c', one)).toBe(200);
      expect(ports.size).toBe(1);
      expect(await get('/conn-ip', null, one)).toBe(200);
      expect(await get('/conn-ip', null, other)).toBe(200);
      expect(await get('/conn-ip', null, one)).toBe(429);
      expect(await get('/conn-ip', null, other)).toBe(429);
    } finally {
      one.destroy();
      other.destroy();
    }
  });

  it('keys by the authenticated subject', async () => {
    expect((await request(`${gw.url}/by-subject`, { headers: { 'x-api-key': 'secret' } })).status).toBe(200);
    expect((await request(`${gw.url}/by-subject`, { headers: { 'x-api-key': 'secret' } })).status).toBe(429);
    expect((await request(`${gw.url}/by-subject`, { headers: { 'x-api-key': 'bob' } })).status).toBe(200);
  });

  it('entries with the same bucket share one budget', async () => {
    expect((await request(`${gw.url}/a`)).status).toBe(200);
    expect((await request(`${gw.url}/b`)).status).toBe(429);
  });
});

describe('rate-limit algorithms', () => {
  it('token bucket refills continuously', () => {
    let s: KeyState | undefined;
    const t0 = 1_000_000;
    for (let i = 0; i < 10; i++) {
      const r = tokenBucket(s, 10, 1000, t0);
      s = r.state;
      expect(r.decision.allowed).toBe(true);
    }
    const denied = tokenBucket(s, 10, 1000, t0);
    expect(denied.decision.allowed).toBe(false);
    expect(denied.decision.retryAfterMs).toBe(100);
    expect(tokenBucket(denied.state, 10, 1000, t0 + 100).decision.allowed).toBe(true);
  });

  it('sliding window weighs the previous window', () => {
    let s: KeyState | undefined;
    const w = 1000;
    const t0 = 10 * w; // start of a window
    for (let i = 0; i < 4; i++) s = slidingWindow(s, 4, w, t0 + 100).state;
    expect(slidingWindow(s, 4, w, t0 + 200).decision.allowed).toBe(false);
    // next window, 25% in: previous count weighs 0.75 × 4 = 3, one more fits
    const r = slidingWindow(s, 4, w, t0 + w + 250);
    expect(r.decision.allowed).toBe(true);
    const d = slidingWindow(r.state, 4, w, t0 + w + 250);
    expect(d.decision.allowed).toBe(false);
    // previous 4, current 1: 4·(1−e/w) + 1 + 1 ≤ 4 once e ≥ w/2
    expect(d.decision.retryAfterMs).toBe(w / 2 - 250);
    expect(slidingWindow(d.state, 4, w, t0 + w + 250 + d.decision.retryAfterMs).decision.allowed).toBe(true);
  });
});
