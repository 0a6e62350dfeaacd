import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../plugins/helpers.js';
import { startCli, type CliGateway } from '../support/cli.js';
import { request, type SimpleResponse } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { needService, needTool, onPath } from '../support/services.js';
import { freePort, startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { until } from '../support/wait.js';

/**
 * Several gateway instances, proven: 3 instances of 2 workers each behind a real HAProxy (round robin, health
 * checks on each admin /ready), one real redis-server shared by all of them for rate limiting and caching,
 * everything on 127.0.0.1 with ephemeral ports. What each instance served is printed as a table.
 */
const redisServer = needService('redis-server');
// Debian installs HAProxy in /usr/sbin, which is not on every user's PATH.
const HAPROXY_PATH = `${process.env.PATH ?? ''}:/usr/sbin`;
const haproxy = needTool('haproxy', 'apt-get install haproxy', { ...process.env, PATH: HAPROXY_PATH });

const INSTANCES = ['gw1', 'gw2', 'gw3'];
const LIMIT = 30;

// Names the instance on every answer (hits and refusals included: preRoute runs before anything can answer).
const pluginDir = writePlugins({
  'instance-id': `export default { name: 'instance-id', version: '1.0.0', init(o) {
  return { preRoute(ctx) { ctx.addResponseHeader('x-instance', o.id); } };
} };`,
});

interface Tally {
  requests: number;
  ok: number;
  limited: number;
  other: number;
  hit: number;
  miss: number;
}

describe.skipIf(!redisServer.available || !haproxy.available)('3 gateway instances behind HAProxy, one Redis', () => {
  let redis: RedisServer;
  let up: RecordingUpstream;
  const gateways: CliGateway[] = [];
  let lb: ChildProcess | null = null;
  let lbDir = '';
  let lbUrl = '';
  let lbOutput = '';
  const tallies = new Map<string, Tally>(INSTANCES.map((id) => [id, { requests: 0, ok: 0, limited: 0, other: 0, hit: 0, miss: 0 }]));
  const errors: string[] = [];

  /** One request through the load balancer, tallied per instance. */
  const viaLb = async (path: string): Promise<SimpleResponse | null> => {
    try {
      const r = await request(`${lbUrl}${path}`, { timeoutMs: 5_000 });
      const id = String(r.headers['x-instance'] ?? 'none');
      const t = tallies.get(id);
      if (t === undefined) errors.push(`${path}: ${r.status} without an instance header`);
      else {
        t.requests++;
        if (r.status === 200) t.ok++;
        else if (r.status === 429) t.limited++;
        else t.other++;
        if (r.headers['x-cache'] === 'HIT') t.hit++;
        if (r.headers['x-cache'] === 'MISS') t.miss++;
      }
      return r;
    } catch (err) {
      errors.push(`${path}: ${(err as Error).message}`);
      return null;
    }
  };

  beforeAll(async () => {
    redis = await startRedis();
    up = await startUpstream('up', (req, res) => {
      req.resume();
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
      res.end(`origin ${req.url}`);
    });
    const redisOpts = { url: redis.url, connectTimeoutMs: 300, commandTimeoutMs: 300 };
    const started = await Promise.all(
      INSTANCES.map((id) =>
        startCli(
          {
            logging: { level: 'info', accessLog: false },
            pluginDirs: [pluginDir],
            plugins: [{ name: 'instance-id', options: { id } }],
            upstreams: { up: { targets: [up.url] } },
            routes: [
              {
                path: '/limited',
                methods: ['GET'],
                response: { body: 'ok' },
                plugins: [{ name: 'rate-limit', options: { limit: LIMIT, windowMs: 600_000, store: 'redis', redis: redisOpts, failMode: 'open' } }],
              },
              {
                // never reached: shows the rate limiter's failure mode (open) while Redis is down
                path: '/steady/limited',
                methods: ['GET'],
                response: { body: 'ok' },
                plugins: [{ name: 'rate-limit', options: { limit: 1_000_000, windowMs: 600_000, store: 'redis', redis: redisOpts, failMode: 'open' } }],
              },
              { path: '/*', methods: ['GET'], upstream: 'up', plugins: [{ name: 'cache', options: { store: 'redis', redis: redisOpts } }] },
            ],
          },
          ['--workers', '2'],
        ),
      ),
    );
    gateways.push(...started);

    const port = await freePort();
    lbDir = mkdtempSync(join(tmpdir(), 'gw-haproxy-'));
    const cfg = join(lbDir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      [
        'global',
        '  maxconn 2000',
        'defaults',
        '  mode http',
        '  timeout connect 2s',
        '  timeout client 30s',
        '  timeout server 30s',
        '  retries 2',
        '  option redispatch',
        'frontend fe',
        `  bind 127.0.0.1:${port}`,
        '  default_backend gateways',
        'backend gateways',
        '  balance roundrobin',
        '  option httpchk GET /ready',
        '  http-check expect status 200',
        ...gateways.map((g, i) => `  server ${INSTANCES[i]} 127.0.0.1:${g.port} check port ${g.adminPort} inter 300 fall 2 rise 1`),
        '',
      ].join('\n'),
    );
    lb = spawn(onPath('haproxy', HAPROXY_PATH)!, ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
    lb.stdout!.on('data', (c: Buffer) => (lbOutput += c.toString()));
    lb.stderr!.on('data', (c: Buffer) => (lbOutput += c.toString()));
    lbUrl = `http://127.0.0.1:${port}`;
    // up once every instance has answered through it (each passed its health check)
    const seen = new Set<string>();
    await until(
      async () => {
        const r = await request(`${lbUrl}/warmup`, { agent: false, timeoutMs: 2_000 });
        if (r.status === 200) seen.add(String(r.headers['x-instance']));
        return seen.size === INSTANCES.length;
      },
      { timeoutMs: 20_000, stepMs: 50, message: () => `HAProxy never reached every instance (saw ${[...seen].join(', ')}):\n${lbOutput}` },
    );
  }, 90_000);

  afterAll(async () => {
    console.table(Object.fromEntries(tallies));
    if (errors.length > 0) console.log(`errors (${errors.length}):\n${errors.slice(0, 20).join('\n')}`);
    if (lb !== null && lb.exitCode === null) {
      const exited = new Promise((r) => lb!.once('exit', r));
      lb.kill('SIGTERM');
      await exited;
    }
    await Promise.all(gateways.map((g) => g.stop()));
    await up?.close();
    await redis?.close();
    if (lbDir !== '') rmSync(lbDir, { recursive: true, force: true });
  }, 60_000);

  it('one rate limit across all instances: exactly LIMIT allowed, 429 for the rest', async () => {
    const statuses: Array<{ status: number; instance: string }> = [];
    let next = 0;
    const total = LIMIT * 2;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        while (next < total) {
          next++;
          const r = await viaLb('/limited');
          if (r !== null) statuses.push({ status: r.status, instance: String(r.headers['x-instance']) });
        }
      }),
    );
    expect(errors).toEqual([]);
    expect(statuses.filter((s) => s.status === 200).length).toBe(LIMIT);
    expect(statuses.filter((s) => s.status === 429).length).toBe(total - LIMIT);
    // every instance answered, and more than one of them refused: the count is one, not one per instance
    expect(new Set(statuses.map((s) => s.instance)).size).toBe(INSTANCES.length);
    expect(new Set(statuses.filter((s) => s.status === 429).map((s) => s.instance)).size).toBeGreaterThan(1);
  });

  it('a response cached through one instance is a HIT on the others', async () => {
    const first = await viaLb('/shared');
    expect(first?.headers['x-cache']).toBe('MISS');
    const storer = String(first!.headers['x-instance']);
    const hitsBy = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = await viaLb('/shared');
      expect(r?.headers['x-cache']).toBe('HIT');
      expect(r?.body).toBe('origin /shared');
      hitsBy.add(String(r!.headers['x-instance']));
    }
    // round robin: the others served hits of the entry the first one stored
    expect([...hitsBy].filter((id) => id !== storer).length).toBe(INSTANCES.length - 1);
    // and each instance directly (same Host as through the balancer: the cache key includes it)
    for (const g of gateways) {
      const r = await request(`${g.url}/shared`, { headers: { host: new URL(lbUrl).host } });
      expect(r.headers['x-cache']).toBe('HIT');
    }
    expect(up.received.filter((r) => r.url === '/shared').length).toBe(1);
  });

  it('under steady load, a Redis restart degrades to misses and fail-open, then recovers by itself', async () => {
    type Sample = { phase: 'before' | 'down' | 'after'; status: number; cache: string; limited: boolean };
    const samples: Sample[] = [];
    let phase: Sample['phase'] = 'before';
    let running = true;
    let i = 0;
    const loop = async (): Promise<void> => {
      while (running) {
        const p = phase;
        const n = i++;
        // half cacheable URLs (20 of them, revisited), half the rate-limited route
        const path = n % 2 === 0 ? `/steady/page-${n % 40}` : '/steady/limited';
        const r = await viaLb(path);
        if (r === null) continue;
        samples.push({ phase: p, status: r.status, cache: String(r.headers['x-cache'] ?? '-'), limited: r.headers['ratelimit-limit'] !== undefined });
      }
    };
    const loops = Array.from({ length: 4 }, loop);
    // Each phase lasts until it has what the checks below need, not a fixed 1.5 s: on a loaded machine 1.5 s
    // could end before any URL was revisited (a HIT) or before a request labelled 'down' was answered.
    const seen = (p: Sample['phase'], what: (s: Sample) => boolean): boolean => samples.some((s) => s.phase === p && what(s));
    await until(() => seen('before', (s) => s.cache === 'HIT') && seen('before', (s) => s.limited), {
      timeoutMs: 20_000,
      message: 'a cache HIT and a rate-limited answer before Redis stopped',
    });
    await redis.stop();
    phase = 'down';
    await until(() => samples.filter((s) => s.phase === 'down').length >= 20, { timeoutMs: 20_000, message: '20 answers while Redis was down' });
    // 'after' from before the restart: a request labelled 'down' was sent while Redis was certainly down
    phase = 'after';
    await redis.start();
    // caching and the limiter come back by themselves (ioredis reconnects with backoff, at most 2 s apart)
    await until(() => seen('after', (s) => s.cache === 'HIT') && seen('after', (s) => s.limited), {
      timeoutMs: 15_000,
      message: 'caching or rate limiting never recovered after Redis came back',
    });
    running = false;
    await Promise.all(loops);

    const by = (p: Sample['phase']): Sample[] => samples.filter((s) => s.phase === p);
    console.table(
      Object.fromEntries(
        (['before', 'down', 'after'] as const).map((p) => [
          p,
          {
            requests: by(p).length,
            non200: by(p).filter((s) => s.status !== 200).length,
            hit: by(p).filter((s) => s.cache === 'HIT').length,
            miss: by(p).filter((s) => s.cache === 'MISS').length,
            rateLimitHeaders: by(p).filter((s) => s.limited).length,
          },
        ]),
      ),
    );
    expect(errors).toEqual([]);
    for (const p of ['before', 'down', 'after'] as const) expect(by(p).length, p).toBeGreaterThan(0);
    // nothing failed: the cache answered from the upstream, the limiter let requests through (failMode open)
    expect(samples.every((s) => s.status === 200)).toBe(true);
    const down = by('down');
    expect(down.filter((s) => s.cache === 'HIT')).toEqual([]);
    expect(down.filter((s) => s.limited)).toEqual([]);
    expect(by('before').some((s) => s.cache === 'HIT')).toBe(true);
  }, 60_000);
});
