import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { gatewayFor, startRedis, type RedisServer } from '../plugins/helpers.js';
import { request } from '../support/http.js';
import { needService } from '../support/services.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';

const redisServer = needService('redis-server');

/**
 * A rate-limit key chosen by the client (a header) is hashed to a fixed size: 14 KB ids used to be kept whole for
 * the whole window, in the primary's memory when clustered and in Redis.
 */
describe.skipIf(!redisServer.available)('rate-limit keys have a fixed size', () => {
  let redis: RedisServer;
  let up: RecordingUpstream;
  let gw: RunningGateway;

  beforeAll(async () => {
    redis = await startRedis();
    up = await startUpstream('up');
    gw = await gatewayFor({
      upstreams: { up: { targets: [up.url] } },
      plugins: [
        {
          name: 'rate-limit',
          options: { limit: 2, windowMs: 60_000, key: 'header:x-client-id', store: 'redis', redis: { url: redis.url, keyPrefix: 'sec-rl:' } },
        },
      ],
      routes: [{ path: '/*', methods: ['GET'], upstream: 'up' }],
    });
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
    await redis?.close();
  });

  it('a 14 KB client id is stored under a key of fixed length, and still limited on its own', async () => {
    const long = 'a'.repeat(14_000);
    const other = `${'a'.repeat(13_999)}b`;
    expect((await request(`${gw.url}/`, { headers: { 'x-client-id': long } })).status).toBe(200);
    expect((await request(`${gw.url}/`, { headers: { 'x-client-id': long } })).status).toBe(200);
    expect((await request(`${gw.url}/`, { headers: { 'x-client-id': long } })).status).toBe(429);
    expect((await request(`${gw.url}/`, { headers: { 'x-client-id': other } })).status).toBe(200);
    const c = new Redis(redis.url);
    const keys = await c.keys('sec-rl:*');
    await c.quit();
    expect(keys).toHaveLength(2);
    for (const k of keys) expect(k.length).toBeLessThan(100);
  });
});
