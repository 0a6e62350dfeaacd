import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { startCli, type CliGateway } from '../support/cli.js';
import { request } from '../support/http.js';
import { needService } from '../support/services.js';
import { sleep } from '../support/wait.js';
import { captureLogger, gatewayFor, startRedis, type RedisServer } from './helpers.js';

// The Redis store is tested against a real redis-server that the tests start on a free port.
const redisServer = needService('redis-server');

/** Every request on a fresh connection, several in parallel, so the cluster spreads them over the workers. */
async function burst(url: string, total: number, concurrency: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        const r = await request(url, { agent: false });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    }),
  );
  return statuses;
}

describe('rate-limit memory store across 2 workers', () => {
  let cli: CliGateway;
  beforeAll(async () => {
    cli = await startCli(
      {
        // startCli reads the ports from the info-level 'listening' lines
        logging: { level: 'info' },
        routes: [
          { path: '/limited', methods: ['GET'], response: { body: 'ok' }, plugins: [{ name: 'rate-limit', options: { limit: 10, windowMs: 600_000 } }] },
        ],
      },
      ['--workers', '2'],
    );
  }, 30_000);
  afterAll(async () => {
    await cli?.stop();
  });

  it('enforces the limit overall, not per worker', async () => {
    const statuses = await burst(`${cli.url}/limited`, 40, 8);
    expect(statuses.get(200)).toBe(10);
    expect(statuses.get(429)).toBe(30);
    // both workers served traffic (each reports its own request count)
    type WorkerStats = { counters?: Record<string, { value: number }> };
    const stats = JSON.parse((await request(`${cli.adminUrl}/stats`)).body) as { workers: WorkerStats[] };
    expect(stats.workers.length).toBe(2);
    // both workers served traffic and refused some of it: the limit held across them
    const rejected = stats.workers.map((w) => w.counters?.rate_limit_rejected_total?.value ?? 0);
    expect(rejected.every((n) => n > 0)).toBe(true);
    expect(rejected[0]! + rejected[1]!).toBe(30);
  });
});

describe.skipIf(!redisServer.available)('rate-limit Redis store', () => {
  let redis: RedisServer;
  let a: RunningGateway;
  let b: RunningGateway;
  let closedGw: RunningGateway;
  const log = captureLogger();

  const config = (failMode: 'open' | 'closed', limit: number): Record<string, unknown> => ({
    routes: [
      {
        path: '/r',
        methods: ['GET'],
        response: { body: 'ok' },
        plugins: [
          {
            name: 'rate-limit',
            options: { limit, windowMs: 600_000, store: 'redis', redis: { url: redis.url, connectTimeoutMs: 300, commandTimeoutMs: 300 }, failMode },
          },
        ],
      },
    ],
  });

  beforeAll(async () => {
    redis = await startRedis();
    a = await gatewayFor(config('open', 6), log.logger);
    b = await gatewayFor(config('open', 6));
    closedGw = await gatewayFor({ ...config('closed', 1000) });
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), closedGw?.close()]);
    await redis?.close();
  });

  it('two gateway instances sharing one Redis enforce one limit', async () => {
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) seen.push((await request(`${(i % 2 === 0 ? a : b).url}/r`)).status);
    expect(seen.filter((s) => s === 200).length).toBe(6);
    expect(seen.slice(6)).toEqual([429, 429, 429, 429]);
    const last = await request(`${a.url}/r`);
    expect(last.headers['retry-after']).toBe('100'); // 6 per 600 s: one token per 100 s
    expect(last.headers['ratelimit-limit']).toBe('6');
    // the counters live in Redis
    const client = new Redis(redis.url);
    const keys = await client.keys('gw:rl:*');
    await client.quit();
    expect(keys.length).toBeGreaterThan(0);
  });

  it('Redis stopped mid-test: fail open lets requests through, fail closed answers 503; both count and log, none crash', async () => {
    expect((await request(`${closedGw.url}/r`)).status).toBe(200);
    await redis.stop();
    await sleep(50);
    const open = await request(`${a.url}/r`);
    expect(open.status).toBe(200); // was 429 while Redis was up
    expect(open.headers['ratelimit-limit']).toBeUndefined();
    const closed = await request(`${closedGw.url}/r`);
    expect(closed.status).toBe(503);
    expect(closed.headers['retry-after']).toBe('1');
    const counters = JSON.stringify(a.gateway.exportMetrics());
    expect(counters).toMatch(/"rate_limit_store_errors_total":\{[^}]*"value":[1-9]/);
    const line = log.lines().find((l) => l.msg === 'rate-limit store unavailable');
    expect(line).toMatchObject({ level: 40, failMode: 'open', plugin: 'rate-limit' });

    // Redis back: the limit applies again (its state was not persisted, so the budget starts fresh)
    await redis.start();
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      await sleep(100);
      status = (await request(`${closedGw.url}/r`)).status;
    }
    expect(status).toBe(200);
  });
});
