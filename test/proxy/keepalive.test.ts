import http from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_VARIANTS, request, sleep, startProxy, startUpstream, type GatewayUnderTest, type TestUpstream } from './helpers.js';

const IDLE_MS = 1000;

/**
 * The upstream closes a keep-alive connection IDLE_MS after its last response, without announcing it
 * (no Keep-Alive: timeout hint), like many servers and load balancers do. Requests spaced around IDLE_MS then
 * regularly hit a connection the upstream is closing just as the gateway reuses it.
 */
function closeIdleAfter(server: http.Server): void {
  server.keepAliveTimeout = 0;
  const timers = new WeakMap<Socket, NodeJS.Timeout>();
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const s = req.socket;
    clearTimeout(timers.get(s));
    res.on('finish', () =>
      timers.set(
        s,
        setTimeout(() => s.destroy(), IDLE_MS),
      ),
    );
  });
}

describe.each(CLIENT_VARIANTS)('keep-alive race (%s client)', (variant) => {
  let up: TestUpstream;
  let gw: GatewayUnderTest;
  const connections = new Set<Socket>();

  beforeAll(async () => {
    up = await startUpstream(
      'ka',
      (_req, res) => res.end('ok'),
      (s) => {
        closeIdleAfter(s);
        s.on('connection', (c: Socket) => connections.add(c));
      },
    );
    // the gateway would keep idle connections far longer than the upstream does
    gw = await startProxy(variant, { svc: { targets: [up.url], keepAlive: { idleMs: 30000, maxSockets: 4 } } }, [{ path: '/*', upstream: 'svc' }]);
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
  });

  it('requests spaced around the upstream idle timeout see zero errors', async () => {
    const client = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const offsets = [-15, -5, 0, 5, 15, -10, 10, -2, 2];
    const statuses: number[] = [];
    for (const off of offsets) {
      statuses.push((await request(gw.url, { path: '/x', agent: client })).status);
      await sleep(IDLE_MS + off);
    }
    statuses.push((await request(gw.url, { path: '/x', agent: client })).status);
    client.destroy();
    expect(statuses).toEqual(statuses.map(() => 200));
    // the upstream really did close idle connections under us (several connections were used)
    expect(connections.size).toBeGreaterThan(1);
    expect(gw.stats('svc').targets[0]!.failures).toBe(0);
  }, 20_000);
});
