import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { gatewayFor, startRedis, type RedisServer } from '../plugins/helpers.js';
import { request } from '../support/http.js';
import { needService } from '../support/services.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';

/**
 * RFC 9111 §4.4: an unsafe method invalidates the target URI, every variant of it. The stores used to drop only
 * the Vary spec: the variant the POST did not select came back as a HIT with its old content once the next save
 * wrote the spec again. Also across partitions: a POST by one user invalidates what every other user holds.
 */
const redisServer = needService('redis-server');

describe.each(['memory', 'redis'] as const)('invalidation removes every variant (%s store)', (store) => {
  let gw: RunningGateway;
  let up: RecordingUpstream;
  let redis: RedisServer | null = null;
  let version = 1;

  beforeAll(async () => {
    if (store === 'redis') {
      if (!redisServer.available) return;
      redis = await startRedis();
    }
    up = await startUpstream('up', (req, res) => {
      req.resume();
      if (req.method === 'POST') {
        version++;
        res.writeHead(204);
        res.end();
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' });
      res.end(`v${version} ${req.headers['accept-language'] ?? 'none'}`);
    });
    const storeOptions = store === 'redis' ? { store: 'redis', redis: { url: redis!.url, keyPrefix: 'sec-inv:' } } : {};
    gw = await gatewayFor({
      upstreams: { up: { targets: [up.url] } },
      plugins: [{ name: 'cache', options: { keyCookies: ['session'], ...storeOptions } }],
      routes: [{ path: '/*', methods: ['GET', 'POST'], upstream: 'up' }],
    });
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
    await redis?.close();
  });

  const get = (path: string, headers: Record<string, string> = {}) => request(`${gw.url}${path}`, { headers });

  it.skipIf(store === 'redis' && !redisServer.available)('after a POST, the variant the POST did not select is not served', async () => {
    expect((await get('/doc', { 'accept-language': 'en' })).body).toBe('v1 en');
    expect((await get('/doc', { 'accept-language': 'fr' })).body).toBe('v1 fr');
    expect((await get('/doc', { 'accept-language': 'fr' })).headers['x-cache']).toBe('HIT');
    expect((await request(`${gw.url}/doc`, { method: 'POST', headers: { 'accept-language': 'en' }, body: 'x' })).status).toBe(204);
    // the next save writes the URI's spec again …
    expect((await get('/doc', { 'accept-language': 'en' })).body).toBe('v2 en');
    // … and the French variant from before the POST must not come back with it
    const fr = await get('/doc', { 'accept-language': 'fr' });
    expect(fr.body).toBe('v2 fr');
    expect(fr.headers['x-cache']).toBe('MISS');
  });

  it.skipIf(store === 'redis' && !redisServer.available)('a POST invalidates every partition of the URI, not only the poster’s', async () => {
    const v = version;
    expect((await get('/shared', { cookie: 'session=alice' })).body).toBe(`v${v} none`);
    expect((await get('/shared', { cookie: 'session=alice' })).headers['x-cache']).toBe('HIT');
    await request(`${gw.url}/shared`, { method: 'POST', headers: { cookie: 'session=bob' }, body: 'x' });
    const alice = await get('/shared', { cookie: 'session=alice' });
    expect(alice.body).toBe(`v${v + 1} none`);
  });
});
