import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../support/cli.js';
import { needService } from '../support/services.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { until } from '../support/wait.js';
import { gatewayFor, startRedis, type RedisServer } from './helpers.js';

/**
 * One conformance suite for every cache store: Vary, freshness, revalidation, invalidation, coalescing and the
 * RFC 5861 stale windows must behave the same whether entries live in this process, in the primary of a 2-worker
 * cluster, or in Redis. Real clock (short max-ages), real sockets, a fresh connection per request (so a cluster
 * spreads them over its workers: a HIT is often served by another worker than the one that stored it).
 */
const redisServer = needService('redis-server');

interface Raw {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request on its own connection, the body kept as bytes. */
function get(url: string, headers: OutgoingHttpHeaders = {}, method = 'GET'): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.end(method === 'POST' ? 'x' : undefined);
  });
}

const BINARY = Buffer.from(Array.from({ length: 1024 }, (_, i) => (i * 7) % 256));
const BIG = Buffer.alloc(100 * 1024, 0xa5);

/** The upstream every store is tested against; each path has one behaviour, `n` is the path's arrival count. */
function answer(up: () => RecordingUpstream) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const path = req.url!.split('?')[0]!;
    const n = up().received.filter((r) => r.url.split('?')[0] === path).length;
    req.resume();
    const send = (status: number, headers: OutgoingHttpHeaders, body: string | Buffer): void => {
      res.writeHead(status, headers);
      res.end(body);
    };
    switch (path) {
      case '/bin':
        return send(200, { 'cache-control': 'max-age=60', etag: '"b1"', 'content-type': 'application/octet-stream' }, BINARY);
      case '/big':
        return send(200, { 'cache-control': 'max-age=60', 'content-type': 'application/octet-stream' }, BIG);
      case '/vary':
        return send(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' }, `${req.headers['accept-language'] ?? 'none'} ${n}`);
      case '/short':
        return send(200, { 'cache-control': 'max-age=1' }, `short ${n}`);
      case '/slow':
        setTimeout(() => send(200, { 'cache-control': 'max-age=60' }, `slow ${n}`), 300);
        return;
      case '/swr':
        return send(200, { 'cache-control': 'max-age=1, stale-while-revalidate=60' }, `swr ${n}`);
      case '/sie':
        if (n === 1) return send(200, { 'cache-control': 'max-age=1, stale-if-error=60' }, `sie ${n}`);
        return send(503, { 'cache-control': 'no-store' }, 'upstream broke');
      case '/strict':
        if (n === 1) return send(200, { 'cache-control': 'max-age=1, must-revalidate, stale-if-error=60' }, `strict ${n}`);
        return send(503, {}, 'upstream broke');
      default:
        return send(200, { 'cache-control': 'max-age=60' }, `${req.method} ${path} ${n}`);
    }
  };
}

interface Target {
  url: string;
  /** per worker: cache hits it served (clustered targets only) */
  hitsPerWorker?: () => Promise<number[]>;
  close(): Promise<void>;
}

interface StoreCase {
  name: string;
  skip: boolean;
  start(config: Record<string, unknown>): Promise<Target>;
  cacheOptions(): Record<string, unknown>;
}

let redis: RedisServer | null = null;

const inProcess = async (config: Record<string, unknown>): Promise<Target> => {
  const gw = await gatewayFor(config);
  return { url: gw.url, close: () => gw.close() };
};

const STORES: StoreCase[] = [
  { name: 'memory, single process', skip: false, start: inProcess, cacheOptions: () => ({}) },
  {
    name: 'memory, 2 workers (held by the primary)',
    skip: false,
    async start(config) {
      const cli = await startCli({ ...config, logging: { level: 'info' } }, ['--workers', '2']);
      const hitsPerWorker = async (): Promise<number[]> => {
        type WorkerStats = { counters?: Record<string, { value: number }> };
        const stats = JSON.parse((await get(`${cli.adminUrl}/stats`)).body.toString()) as { workers: WorkerStats[] };
        return stats.workers.map((w) => w.counters?.cache_hits_total?.value ?? 0);
      };
      return { url: cli.url, hitsPerWorker, close: async () => void (await cli.stop()) };
    },
    cacheOptions: () => ({}),
  },
  {
    name: 'redis',
    skip: !redisServer.available,
    start: inProcess,
    cacheOptions: () => ({ store: 'redis', redis: { url: redis!.url, connectTimeoutMs: 300, commandTimeoutMs: 300 } }),
  },
];

beforeAll(async () => {
  if (redisServer.available) redis = await startRedis();
});
afterAll(async () => {
  await redis?.close();
});

for (const store of STORES) {
  describe.skipIf(store.skip)(`cache store: ${store.name}`, () => {
    let up: RecordingUpstream;
    let flaky: RecordingUpstream;
    let gw: Target;
    const calls = (path: string): number => up.received.filter((r) => r.url.split('?')[0] === path).length;

    beforeAll(async () => {
      up = await startUpstream(
        'up',
        answer(() => up),
      );
      flaky = await startUpstream(
        'flaky',
        answer(() => flaky),
      );
      const cache = { name: 'cache', options: { maxEntries: 100, ...store.cacheOptions() } };
      gw = await store.start({
        upstreams: { up: { targets: [up.url] }, flaky: { targets: [flaky.url] } },
        plugins: [cache],
        routes: [
          { path: '/down/*', methods: ['GET'], upstream: 'flaky', stripPrefix: '/down' },
          { path: '/*', methods: ['GET', 'HEAD', 'POST'], upstream: 'up' },
        ],
      });
    }, 90_000);
    afterAll(async () => {
      await gw?.close();
      await up?.close();
      await flaky?.close();
    });

    it('MISS then HIT on another connection, the binary body byte for byte (1 KB and 100 KB)', async () => {
      for (const [path, bytes] of [
        ['/bin', BINARY],
        ['/big', BIG],
      ] as const) {
        const a = await get(`${gw.url}${path}`);
        expect(a.headers['x-cache'], path).toBe('MISS');
        for (let i = 0; i < 4; i++) {
          const b = await get(`${gw.url}${path}`);
          expect(b.headers['x-cache'], path).toBe('HIT');
          expect(b.body.equals(bytes), path).toBe(true);
          expect(b.headers['content-length']).toBe(String(bytes.length));
        }
        expect(calls(path)).toBe(1);
      }
      // clustered: both workers served hits of entries one of them stored (one shared copy, not one per worker)
      if (gw.hitsPerWorker !== undefined) {
        const hits = await gw.hitsPerWorker();
        expect(hits.length).toBe(2);
        expect(hits.every((n) => n > 0)).toBe(true);
      }
    });

    it('revalidation: If-None-Match on a hit answers 304', async () => {
      await get(`${gw.url}/bin`);
      const r = await get(`${gw.url}/bin`, { 'if-none-match': '"b1"' });
      expect(r.status).toBe(304);
      expect(r.headers['x-cache']).toBe('HIT');
      expect(r.body.length).toBe(0);
      expect((await get(`${gw.url}/bin`, { 'if-none-match': '"b0"' })).status).toBe(200);
    });

    it('keys variants by the Vary request headers', async () => {
      expect((await get(`${gw.url}/vary`, { 'accept-language': 'en' })).body.toString()).toBe('en 1');
      expect((await get(`${gw.url}/vary`, { 'accept-language': 'fr' })).body.toString()).toBe('fr 2');
      for (const lang of ['en', 'fr']) {
        const r = await get(`${gw.url}/vary`, { 'accept-language': lang });
        expect(r.headers['x-cache'], lang).toBe('HIT');
        expect(r.body.toString()).toBe(lang === 'en' ? 'en 1' : 'fr 2');
      }
      expect((await get(`${gw.url}/vary`)).headers['x-cache']).toBe('MISS');
    });

    it('an entry expires at the end of its freshness', async () => {
      await get(`${gw.url}/short`);
      expect((await get(`${gw.url}/short`)).headers['x-cache']).toBe('HIT');
      await until(async () => (await get(`${gw.url}/short`)).headers['x-cache'] === 'MISS', {
        timeoutMs: 5_000,
        stepMs: 100,
        message: 'max-age=1 never expired',
      });
      expect(calls('/short')).toBe(2);
    });

    it('an unsafe method invalidates the URL for every worker / instance', async () => {
      await get(`${gw.url}/thing`);
      expect((await get(`${gw.url}/thing`)).headers['x-cache']).toBe('HIT');
      await get(`${gw.url}/thing`, {}, 'POST');
      for (let i = 0; i < 2; i++) {
        const r = await get(`${gw.url}/thing`);
        expect(r.headers['x-cache']).toBe(i === 0 ? 'MISS' : 'HIT');
        expect(r.body.toString()).toBe('GET /thing 3');
      }
    });

    it('a refreshed entry replaces the old one everywhere (no process serves a copy it kept of the old one)', async () => {
      await get(`${gw.url}/refreshed`);
      for (let i = 0; i < 4; i++) expect((await get(`${gw.url}/refreshed`)).body.toString()).toBe('GET /refreshed 1');
      const refreshed = await get(`${gw.url}/refreshed`, { 'cache-control': 'no-cache' });
      expect(refreshed.body.toString()).toBe('GET /refreshed 2');
      for (let i = 0; i < 4; i++) {
        const r = await get(`${gw.url}/refreshed`);
        expect(r.headers['x-cache']).toBe('HIT');
        expect(r.body.toString()).toBe('GET /refreshed 2');
      }
    });

    it('coalescing: 10 concurrent misses for one URL make one upstream request', async () => {
      const all = await Promise.all(Array.from({ length: 10 }, () => get(`${gw.url}/slow`)));
      expect(all.map((r) => r.status)).toEqual(Array(10).fill(200));
      expect(new Set(all.map((r) => r.body.toString()))).toEqual(new Set(['slow 1']));
      expect(calls('/slow')).toBe(1);
    });

    it('stale-while-revalidate: stale answers while one background revalidation refreshes the entry', async () => {
      expect((await get(`${gw.url}/swr`)).body.toString()).toBe('swr 1');
      await until(async () => (await get(`${gw.url}/swr`)).headers['x-cache'] === 'STALE', { timeoutMs: 5_000, stepMs: 100, message: 'never served stale' });
      // several stale requests at once: still one revalidation
      const burst = await Promise.all(Array.from({ length: 5 }, () => get(`${gw.url}/swr`)));
      for (const r of burst) expect(['swr 1', 'swr 2']).toContain(r.body.toString());
      await until(async () => (await get(`${gw.url}/swr`)).body.toString() === 'swr 2', { message: 'the background revalidation never stored' });
      const fresh = await get(`${gw.url}/swr`);
      expect(fresh.headers['x-cache']).toBe('HIT');
      expect(calls('/swr')).toBe(2);
      expect(up.received.filter((r) => r.url === '/swr')[1]!.headers['cache-control']).toBe('max-age=0');
    });

    it('stale-if-error: the stale entry answers an upstream 5xx and a dead upstream; must-revalidate forbids it', async () => {
      await get(`${gw.url}/sie`);
      await get(`${gw.url}/down/sie`);
      await get(`${gw.url}/strict`);
      // All three are max-age=1, so each is stale one second after it was stored, at the latest one second from
      // now. /sie going stale is not enough: on a loaded machine the two stored after it were still fresh (a HIT).
      const allStaleAt = Date.now() + 1000;
      await until(async () => (await get(`${gw.url}/sie`)).headers['x-cache'] !== 'HIT', { timeoutMs: 5_000, stepMs: 100, message: 'never went stale' });
      await until(() => Date.now() > allStaleAt, { message: 'max-age passed' });
      const r = await get(`${gw.url}/sie`);
      expect(r.status).toBe(200);
      expect(r.headers['x-cache']).toBe('STALE');
      expect(r.body.toString()).toBe('sie 1');
      await flaky.close();
      const down = await get(`${gw.url}/down/sie`);
      expect(down.status).toBe(200);
      expect(down.headers['x-cache']).toBe('STALE');
      expect(down.body.toString()).toBe('sie 1');
      const strict = await get(`${gw.url}/strict`);
      expect(strict.status).toBe(503);
    });
  });
}

describe('cache store options', () => {
  it('store "redis" without a redis block is refused at startup, naming the path', async () => {
    const err = await inProcess({
      plugins: [{ name: 'cache', options: { store: 'redis' } }],
      routes: [{ path: '/', methods: ['GET'], response: { body: 'x' } }],
    }).then(
      (gw) => gw.close().then(() => null),
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/\/plugins\/0\/options/);
    expect(err?.message).toMatch(/redis/);
  });
});

describe('memory store bounds', () => {
  let up: RecordingUpstream;
  let gw: Target;
  beforeAll(async () => {
    up = await startUpstream(
      'up',
      answer(() => up),
    );
    gw = await inProcess({
      upstreams: { up: { targets: [up.url] } },
      plugins: [{ name: 'cache', options: { maxEntries: 2 } }],
      routes: [{ path: '/*', methods: ['GET'], upstream: 'up' }],
    });
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
  });

  it('holds at most maxEntries, evicting the least recently used', async () => {
    for (const p of ['/a', '/b']) await get(`${gw.url}${p}`);
    await get(`${gw.url}/a`); // /a is now the most recently used
    await get(`${gw.url}/c`); // evicts /b
    expect((await get(`${gw.url}/a`)).headers['x-cache']).toBe('HIT');
    expect((await get(`${gw.url}/b`)).headers['x-cache']).toBe('MISS');
  });
});

describe.skipIf(!redisServer.available)('redis store: TTLs and outage', () => {
  let up: RecordingUpstream;
  let gw: Target;
  beforeAll(async () => {
    up = await startUpstream(
      'up',
      answer(() => up),
    );
    gw = await inProcess({
      upstreams: { up: { targets: [up.url] } },
      plugins: [{ name: 'cache', options: { store: 'redis', redis: { url: redis!.url, keyPrefix: 'ttl:', connectTimeoutMs: 300, commandTimeoutMs: 300 } } }],
      routes: [{ path: '/*', methods: ['GET'], upstream: 'up' }],
    });
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
  });

  it('every key it writes has a TTL of the entry retention; bodies are stored as binary', async () => {
    const c = new Redis(redis!.url);
    const before = new Set(await c.keys('ttl:*'));
    await get(`${gw.url}/bin`);
    await get(`${gw.url}/swr`);
    const keys = (await c.keys('ttl:*')).filter((k) => !before.has(k));
    const ttls = await Promise.all(keys.map((k) => c.pttl(k)));
    const bodies = await Promise.all(keys.filter((k) => k.startsWith('ttl:b:')).map((k) => c.getBuffer(k)));
    await c.quit();
    expect(keys.length).toBe(8); // per URL: its Vary spec, its set of variants, the variant's metadata, its body
    for (const t of ttls) expect(t).toBeGreaterThan(0);
    expect(Math.max(...ttls)).toBeLessThanOrEqual(61_000); // swr: max-age=1 + stale-while-revalidate=60
    expect(bodies.some((b) => b!.equals(BINARY))).toBe(true);
  });

  it('Redis killed mid-test: every request still answers from the upstream, within the command timeout; caching recovers by itself', async () => {
    await get(`${gw.url}/outage`);
    expect((await get(`${gw.url}/outage`)).headers['x-cache']).toBe('HIT');
    await redis!.stop();
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const r = await get(`${gw.url}/outage`);
      // a bound on waiting (commandTimeoutMs 300), not a speed check: a hung store would take the client timeout
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(r.status).toBe(200);
      expect(r.headers['x-cache']).toBe('MISS');
    }
    await redis!.start();
    await until(async () => (await get(`${gw.url}/outage`)).headers['x-cache'] === 'HIT', {
      timeoutMs: 15_000,
      stepMs: 200,
      message: 'caching never recovered after Redis came back',
    });
    expect(calls(up, '/outage')).toBeGreaterThanOrEqual(7);
  });
});

function calls(up: RecordingUpstream, path: string): number {
  return up.received.filter((r) => r.url.split('?')[0] === path).length;
}
