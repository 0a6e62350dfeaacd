import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { createCachePlugin } from '../../core/plugins/builtin/cache/index.js';
import { builtinPlugins } from '../../core/plugins/builtin/index.js';
import { testClock } from '../support/clock.js';
import { request } from '../support/http.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { gatewayFor } from './helpers.js';

// The gateway's cache plugin reads this clock (freshness, Age, entry expiry): expiry is tested by moving it.
const clock = testClock();
const builtinCache = builtinPlugins.cache!;
builtinPlugins.cache = createCachePlugin({ now: clock.now });

let gw: RunningGateway;
let up: RecordingUpstream;
const version = 1;
const LAST_MODIFIED = 'Wed, 21 Oct 2015 07:28:00 GMT';

beforeAll(async () => {
  up = await startUpstream('up', (req, res) => {
    const path = req.url!.split('?')[0];
    const n = up.received.filter((r) => r.url.split('?')[0] === path).length;
    switch (path) {
      case '/fresh':
        res.writeHead(200, { 'cache-control': 'max-age=60', etag: `"v${version}"`, 'last-modified': LAST_MODIFIED, 'content-type': 'text/plain' });
        res.end(`fresh ${n}`);
        return;
      case '/short':
        res.writeHead(200, { 'cache-control': 's-maxage=1, max-age=600' });
        res.end(`short ${n}`);
        return;
      case '/no-store':
        res.writeHead(200, { 'cache-control': 'no-store' });
        res.end(`no-store ${n}`);
        return;
      case '/private':
        res.writeHead(200, { 'cache-control': 'private, max-age=60' });
        res.end(`private ${n}`);
        return;
      case '/vary':
        res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' });
        res.end(`${req.headers['accept-language'] ?? 'none'} ${n}`);
        return;
      case '/vary-star':
        res.writeHead(200, { 'cache-control': 'max-age=60', vary: '*' });
        res.end(`star ${n}`);
        return;
      case '/cookie':
        res.writeHead(200, { 'cache-control': 'max-age=60', 'set-cookie': 'a=b' });
        res.end(`cookie ${n}`);
        return;
      case '/default':
        res.end(`default ${n}`);
        return;
      case '/big':
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
        res.end('z'.repeat(4000));
        return;
      case '/error':
        res.writeHead(500, { 'cache-control': 'max-age=60' });
        res.end(`error ${n}`);
        return;
      default:
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.end(`${req.method} ${path} ${n}`);
    }
  });
  gw = await gatewayFor({
    upstreams: { up: { targets: [up.url] } },
    plugins: [{ name: 'cache', options: { maxEntries: 100, defaultTtlMs: 30_000 } }],
    routes: [
      { path: '/*', methods: ['GET', 'HEAD', 'POST'], upstream: 'up' },
      // compression before cache: compressed variants are stored, keyed by Accept-Encoding
      {
        path: '/z/*',
        methods: ['GET'],
        upstream: 'up',
        stripPrefix: '/z',
        plugins: [
          { name: 'compression', options: { thresholdBytes: 10 } },
          { name: 'cache', options: {} },
        ],
      },
    ],
  });
});
afterAll(async () => {
  builtinPlugins.cache = builtinCache;
  await gw.close();
  await up.close();
});

const upstreamCalls = (path: string): number => up.received.filter((r) => r.url.split('?')[0] === path).length;

describe('cache', () => {
  it('MISS then HIT for a fresh response, with Age', async () => {
    const a = await request(`${gw.url}/fresh`);
    expect(a.status).toBe(200);
    expect(a.headers['x-cache']).toBe('MISS');
    expect(a.body).toBe('fresh 1');
    const b = await request(`${gw.url}/fresh`);
    expect(b.headers['x-cache']).toBe('HIT');
    expect(b.body).toBe('fresh 1');
    expect(b.headers.etag).toBe('"v1"');
    expect(b.headers['content-type']).toBe('text/plain');
    expect(Number(b.headers.age)).toBeGreaterThanOrEqual(0);
    expect(upstreamCalls('/fresh')).toBe(1);
  });

  it('revalidation: If-None-Match / If-Modified-Since on a hit answer 304', async () => {
    await request(`${gw.url}/fresh`);
    const inm = await request(`${gw.url}/fresh`, { headers: { 'if-none-match': 'W/"v1"' } });
    expect(inm.status).toBe(304);
    expect(inm.body).toBe('');
    expect(inm.headers.etag).toBe('"v1"');
    expect(inm.headers['x-cache']).toBe('HIT');
    const other = await request(`${gw.url}/fresh`, { headers: { 'if-none-match': '"v0"' } });
    expect(other.status).toBe(200);
    const ims = await request(`${gw.url}/fresh`, { headers: { 'if-modified-since': 'Thu, 22 Oct 2015 07:28:00 GMT' } });
    expect(ims.status).toBe(304);
    const older = await request(`${gw.url}/fresh`, { headers: { 'if-modified-since': 'Tue, 20 Oct 2015 07:28:00 GMT' } });
    expect(older.status).toBe(200);
    expect(upstreamCalls('/fresh')).toBe(1);
  });

  it('HEAD is served from a stored GET, without a body; a HEAD miss stores nothing', async () => {
    await request(`${gw.url}/for-head`);
    const h = await request(`${gw.url}/for-head`, { method: 'HEAD' });
    expect(h.status).toBe(200);
    expect(h.headers['x-cache']).toBe('HIT');
    expect(h.body).toBe('');
    expect(h.headers['content-length']).toBe(String('GET /for-head 1'.length));
    const h2 = await request(`${gw.url}/head-first`, { method: 'HEAD' });
    expect(h2.headers['x-cache']).toBe('MISS');
    const g = await request(`${gw.url}/head-first`);
    expect(g.headers['x-cache']).toBe('MISS');
    expect(g.body).toBe('GET /head-first 2');
  });

  it('never stores no-store, private, Set-Cookie, Vary: * or non-200 responses', async () => {
    for (const path of ['/no-store', '/private', '/cookie', '/vary-star', '/error']) {
      await request(`${gw.url}${path}`);
      const second = await request(`${gw.url}${path}`);
      expect(second.headers['x-cache'], path).toBe('MISS');
      expect(upstreamCalls(path), path).toBe(2);
    }
  });

  it('keys variants by the Vary request headers', async () => {
    const en = await request(`${gw.url}/vary`, { headers: { 'accept-language': 'en' } });
    const fr = await request(`${gw.url}/vary`, { headers: { 'accept-language': 'fr' } });
    expect(en.body).toBe('en 1');
    expect(fr.body).toBe('fr 2');
    const en2 = await request(`${gw.url}/vary`, { headers: { 'accept-language': 'en' } });
    expect(en2.headers['x-cache']).toBe('HIT');
    expect(en2.body).toBe('en 1');
    const fr2 = await request(`${gw.url}/vary`, { headers: { 'accept-language': 'fr' } });
    expect(fr2.headers['x-cache']).toBe('HIT');
    expect(fr2.body).toBe('fr 2');
    const none = await request(`${gw.url}/vary`);
    expect(none.headers['x-cache']).toBe('MISS');
  });

  it('s-maxage wins over max-age and entries expire', async () => {
    await request(`${gw.url}/short`);
    expect((await request(`${gw.url}/short`)).headers['x-cache']).toBe('HIT');
    // s-maxage=1: still fresh at 999 ms (Age 0), stale after 1 s although max-age=600
    clock.advance(999);
    const before = await request(`${gw.url}/short`);
    expect(before.headers['x-cache']).toBe('HIT');
    expect(before.headers.age).toBe('0');
    clock.advance(2);
    const after = await request(`${gw.url}/short`);
    expect(after.headers['x-cache']).toBe('MISS');
    expect(after.body).toBe('short 2');
  });

  it('defaultTtlMs applies without freshness information', async () => {
    await request(`${gw.url}/default`);
    expect((await request(`${gw.url}/default`)).headers['x-cache']).toBe('HIT');
  });

  it('authenticated requests bypass the cache (not stored, not served)', async () => {
    await request(`${gw.url}/authz`);
    const withAuth = await request(`${gw.url}/authz`, { headers: { authorization: 'Bearer x' } });
    expect(withAuth.headers['x-cache']).toBeUndefined();
    expect(withAuth.body).toBe('GET /authz 2');
    await request(`${gw.url}/authz-only`, { headers: { authorization: 'Bearer x' } });
    expect((await request(`${gw.url}/authz-only`)).headers['x-cache']).toBe('MISS');
  });

  it('request no-store bypasses, no-cache skips the lookup but refreshes the entry', async () => {
    await request(`${gw.url}/refresh`);
    const nc = await request(`${gw.url}/refresh`, { headers: { 'cache-control': 'no-cache' } });
    expect(nc.headers['x-cache']).toBe('MISS');
    expect(nc.body).toBe('GET /refresh 2');
    const hit = await request(`${gw.url}/refresh`);
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.body).toBe('GET /refresh 2');
  });

  it('an unsafe method invalidates the URL', async () => {
    await request(`${gw.url}/thing`);
    expect((await request(`${gw.url}/thing`)).headers['x-cache']).toBe('HIT');
    await request(`${gw.url}/thing`, { method: 'POST', body: 'x' });
    expect((await request(`${gw.url}/thing`)).headers['x-cache']).toBe('MISS');
  });

  it('stores compressed variants per Accept-Encoding when placed after compression', async () => {
    const get = (ae: string | null): Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }> =>
      new Promise((resolve, reject) => {
        http
          .get(`${gw.url}/z/big`, { headers: ae === null ? {} : { 'accept-encoding': ae }, agent: false }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
          })
          .on('error', reject);
      });
    const g1 = await get('gzip');
    expect(g1.headers['x-cache']).toBe('MISS');
    expect(g1.headers['content-encoding']).toBe('gzip');
    const g2 = await get('gzip');
    expect(g2.headers['x-cache']).toBe('HIT');
    expect(g2.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(g2.body).toString()).toBe('z'.repeat(4000));
    const plain = await get(null);
    expect(plain.headers['x-cache']).toBe('MISS');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString()).toBe('z'.repeat(4000));
  });
});
