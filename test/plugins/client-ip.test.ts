import { Agent, request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { captureLogger, gatewayFor } from './helpers.js';

/**
 * server.trustedProxies is the one notion of the client address: plugins keyed on the client (rate-limit,
 * ip-filter) believe X-Forwarded-For exactly when the proxy would, without repeating the list.
 */

interface Answer {
  status: number;
  /** whether the request went over a connection an earlier request had used (keep-alive) */
  reused: boolean;
}

/** Requests over one keep-alive connection, one at a time (a trusted proxy's connection carries many clients). */
function connection(base: string): { get(path: string, xff?: string): Promise<Answer>; close(): void } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  return {
    get: (path, xff) =>
      new Promise((resolve, reject) => {
        const req = httpRequest(`${base}${path}`, { agent, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket }));
        });
        req.on('error', reject);
        req.end();
      }),
    close: () => agent.destroy(),
  };
}

const routes = (deny: string) => [
  {
    path: '/limited',
    methods: ['GET'],
    response: { body: 'ok' },
    plugins: [{ name: 'rate-limit', options: { limit: 1, windowMs: 3_600_000, bucket: `rl-${deny}` } }],
  },
  {
    path: '/limited-peer',
    methods: ['GET'],
    response: { body: 'ok' },
    plugins: [{ name: 'rate-limit', options: { limit: 1, windowMs: 3_600_000, clientIp: 'peer', bucket: `rlp-${deny}` } }],
  },
  { path: '/filtered', methods: ['GET'], response: { body: 'ok' }, plugins: [{ name: 'ip-filter', options: { deny: [deny] } }] },
  { path: '/filtered-peer', methods: ['GET'], response: { body: 'ok' }, plugins: [{ name: 'ip-filter', options: { deny: [deny], clientIp: 'peer' } }] },
];

describe('client IP from server.trustedProxies (the peer 127.0.0.1 is a trusted proxy)', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await gatewayFor({ server: { port: 0, workers: 0, trustedProxies: ['127.0.0.1'] }, routes: routes('203.0.113.0/24') });
  });
  afterAll(() => gw.close());

  it('two forwarded clients on one keep-alive connection get separate rate-limit buckets', async () => {
    const c = connection(gw.url);
    try {
      expect((await c.get('/limited', '198.51.100.1')).status).toBe(200);
      const second = await c.get('/limited', '198.51.100.2');
      expect(second.reused).toBe(true);
      expect(second.status).toBe(200);
      // each client's own bucket is spent, on that same connection
      expect((await c.get('/limited', '198.51.100.1')).status).toBe(429);
      expect((await c.get('/limited', '198.51.100.2')).status).toBe(429);
      expect((await c.get('/limited', '198.51.100.3')).status).toBe(200);
    } finally {
      c.close();
    }
  });

  it('ip-filter judges the forwarded address, request by request on one connection', async () => {
    const c = connection(gw.url);
    try {
      expect((await c.get('/filtered', '198.51.100.7')).status).toBe(200);
      const denied = await c.get('/filtered', '203.0.113.9');
      expect(denied.reused).toBe(true);
      expect(denied.status).toBe(403);
      expect((await c.get('/filtered', '198.51.100.7')).status).toBe(200);
      // a spoofed entry left of the untrusted hop is not believed
      expect((await c.get('/filtered', '203.0.113.9, 198.51.100.7')).status).toBe(200);
    } finally {
      c.close();
    }
  });

  it('clientIp: "peer" narrows it to the socket peer', async () => {
    const c = connection(gw.url);
    try {
      expect((await c.get('/filtered-peer', '203.0.113.9')).status).toBe(200);
      expect((await c.get('/limited-peer', '198.51.100.1')).status).toBe(200);
      expect((await c.get('/limited-peer', '198.51.100.2')).status).toBe(429);
    } finally {
      c.close();
    }
  });
});

describe('client IP when the peer is not a trusted proxy', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await gatewayFor({ server: { port: 0, workers: 0, trustedProxies: ['10.0.0.0/8'] }, routes: routes('127.0.0.1') });
  });
  afterAll(() => gw.close());

  it("ignores an untrusted peer's X-Forwarded-For: one bucket for the peer", async () => {
    const c = connection(gw.url);
    try {
      expect((await c.get('/limited', '198.51.100.1')).status).toBe(200);
      expect((await c.get('/limited', '198.51.100.2')).status).toBe(429);
    } finally {
      c.close();
    }
    // and on a fresh connection too
    const d = connection(gw.url);
    try {
      expect((await d.get('/limited', '198.51.100.3')).status).toBe(429);
    } finally {
      d.close();
    }
  });

  it('ip-filter judges the peer whatever X-Forwarded-For claims', async () => {
    const c = connection(gw.url);
    try {
      expect((await c.get('/filtered', '198.51.100.7')).status).toBe(403);
      expect((await c.get('/filtered')).status).toBe(403);
    } finally {
      c.close();
    }
  });
});

describe('trustForwarded (deprecated) keeps its meaning', () => {
  it('still believes its own proxy list, with a warning at load', async () => {
    const log = captureLogger();
    const gw = await gatewayFor(
      {
        routes: [
          {
            path: '/x',
            methods: ['GET'],
            response: { body: 'x' },
            plugins: [{ name: 'ip-filter', options: { deny: ['203.0.113.0/24'], trustForwarded: ['127.0.0.1'] } }],
          },
        ],
      },
      log.logger,
    );
    try {
      const c = connection(gw.url);
      expect((await c.get('/x', '198.51.100.1')).status).toBe(200);
      expect((await c.get('/x', '203.0.113.1')).status).toBe(403);
      c.close();
      expect(log.lines().some((l) => l.level === 40 && l.plugin === 'ip-filter' && /trustForwarded.*deprecated/.test(String(l.msg)))).toBe(true);
    } finally {
      await gw.close();
    }
  });

  it('cannot be combined with clientIp', async () => {
    await expect(
      gatewayFor({
        routes: [
          {
            path: '/x',
            methods: ['GET'],
            response: { body: 'x' },
            plugins: [{ name: 'ip-filter', options: { deny: ['10.0.0.1'], clientIp: 'peer', trustForwarded: true } }],
          },
        ],
      }),
    ).rejects.toThrow(/trustForwarded.*deprecated.*clientIp/);
  });
});
