import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { variantFamilies, variantNames } from '../../core/variants.js';
import { DEFAULT_UPSTREAM_CLIENT, upstreamClientVariants } from '../../variants/upstream/index.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { exchange } from '../support/raw.js';
import { freePort, startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { sleep, until } from '../support/wait.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const quiet = { admin: { enabled: false }, logging: { level: 'silent', accessLog: false } };
const running: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.close();
});

/**
 * Every server engine runs every suite here. The upstream-fault matrix runs every upstream client on the default
 * engine and the default client on the others (the engine's part is only how a broken answer reaches the client);
 * the heap-overload case runs on the default engine only (the pipeline sheds before the engine does any work);
 * the disconnect storm is 2,000 aborts on the default engine and 500 on the others.
 */
const ENGINES = variantNames('server');
const DEFAULT_ENGINE = variantFamilies.server.default;

async function gateway(raw: Record<string, unknown>, engine: string = DEFAULT_ENGINE): Promise<RunningGateway> {
  const gw = await startGateway({
    ...quiet,
    ...raw,
    server: { host: '127.0.0.1', ...(raw.server as object) },
    variants: { ...(raw.variants as object), server: engine },
  });
  running.push(gw);
  return gw;
}

/** A TCP "upstream" that reads one request head and then misbehaves as `kind` (taken from the request path). */
async function faultyUpstream(): Promise<{ url: string; connections: () => number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let head = '';
    s.on('data', (c: Buffer) => {
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const kind = /^\S+ \/f\/([a-z-]+)/.exec(head)?.[1] ?? 'ok';
      head = '';
      switch (kind) {
        case 'ok':
          s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
          break;
        case 'hang':
          break;
        case 'reset':
          s.resetAndDestroy();
          break;
        case 'garbage':
          s.end('this is not http\r\n\r\n');
          break;
        case 'te-cl':
          s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
          break;
        case 'bad-cl':
          s.write('HTTP/1.1 200 OK\r\ncontent-length: abc\r\n\r\nhello');
          break;
        case 'two-cl':
          s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 7\r\n\r\nhello!!');
          break;
        case 'mid-body':
          s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n' + 'x'.repeat(1000));
          setTimeout(() => s.destroy(), 30);
          break;
        case 'bad-chunk':
          s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n');
          break;
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** GET that reports whether the response ended cleanly (a truncated body must surface as an abort). */
function outcome(url: string): Promise<{ status: number; clean: boolean; error: string | null }> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => resolve({ status: res.statusCode!, clean: true, error: null }));
      res.on('error', (e) => resolve({ status: res.statusCode!, clean: false, error: e.message }));
      res.on('aborted', () => resolve({ status: res.statusCode!, clean: false, error: 'aborted' }));
    });
    req.on('error', (e) => resolve({ status: 0, clean: false, error: e.message }));
    req.setTimeout(5000, () => req.destroy(new Error('client timeout')));
  });
}

function upstreamActive(gw: RunningGateway, name: string): number {
  const s = gw.gateway.server.currentRuntime.upstreams!.stats()[name] as { targets: Array<{ active: number }> };
  return s.targets.reduce((a, t) => a + t.active, 0);
}

/** (engine, upstream client) pairs: every client on the default engine, the default client on the others */
const FAULT_MATRIX: Array<[string, string]> = ENGINES.flatMap((engine) =>
  engine === DEFAULT_ENGINE ? Object.keys(upstreamClientVariants).map((v): [string, string] => [engine, v]) : [[engine, DEFAULT_UPSTREAM_CLIENT]],
);

describe('upstream faults → 502/504, socket discarded, gateway alive', () => {
  for (const [engine, variant] of FAULT_MATRIX) {
    it(`every fault kind (engine ${engine}, client ${variant})`, async () => {
      const up = await faultyUpstream();
      running.push(up);
      const closed = `http://127.0.0.1:${await freePort()}`;
      const gw = await gateway(
        {
          variants: { upstream: variant },
          upstreams: {
            faulty: {
              targets: [up.url],
              timeouts: { headersMs: 300, idleMs: 300 },
              retries: { count: 0 },
              circuitBreaker: { enabled: false },
              healthCheck: { passive: { enabled: false } },
            },
            refused: { targets: [closed], retries: { count: 0 }, circuitBreaker: { enabled: false }, healthCheck: { passive: { enabled: false } } },
          },
          routes: [
            { path: '/f/*', upstream: 'faulty' },
            { path: '/refused', upstream: 'refused' },
          ],
        },
        engine,
      );
      const expectations: Array<[string, (r: Awaited<ReturnType<typeof outcome>>) => boolean]> = [
        ['/refused', (r) => r.status === 502],
        ['/f/hang', (r) => r.status === 504],
        ['/f/reset', (r) => r.status === 502],
        ['/f/garbage', (r) => r.status === 502],
        ['/f/te-cl', (r) => r.status === 502],
        ['/f/bad-cl', (r) => r.status === 502],
        ['/f/two-cl', (r) => r.status === 502],
        // headers were already forwarded: the only honest signal left is an aborted connection
        ['/f/mid-body', (r) => (r.status === 200 && !r.clean) || r.status === 502],
        ['/f/bad-chunk', (r) => (r.status === 200 && !r.clean) || r.status === 502],
      ];
      for (const [path, ok] of expectations) {
        const r = await outcome(gw.url + path);
        expect(ok(r), `${path}: ${JSON.stringify(r)}`).toBe(true);
        // alive, and the broken upstream socket was not reused for the next request
        const before = up.connections();
        const good = await outcome(`${gw.url}/f/ok`);
        expect(good, path).toEqual({ status: 200, clean: true, error: null });
        if (path !== '/refused' && path !== '/f/hang') expect(up.connections(), `${path}: socket reused`).toBeGreaterThan(before);
      }
      await until(() => upstreamActive(gw, 'faulty') === 0 && gw.gateway.metrics.inFlight === 0, {
        timeoutMs: 5000,
        message: () => `upstream exchanges released (active ${upstreamActive(gw, 'faulty')}, in flight ${gw.gateway.metrics.inFlight})`,
      });
    });
  }
});

describe('upstream body breaks off while a hook is still running', () => {
  // postHandler waits 80 ms; the upstream sends its head and part of the body, then dies after 30 ms
  const dir = writePlugins(
    {
      'slow-post': `export default { name: 'slow-post', version: '1.0.0',
    init() { return { postHandler: () => new Promise((r) => setTimeout(r, 80)) }; } };`,
    },
    'gw-faults-',
  );
  for (const [engine, variant] of FAULT_MATRIX) {
    it(`answers 502 instead of a truncated 200 (engine ${engine}, client ${variant})`, async () => {
      const up = await faultyUpstream();
      running.push(up);
      const gw = await gateway(
        {
          pluginDirs: [dir],
          variants: { upstream: variant },
          upstreams: { faulty: { targets: [up.url], retries: { count: 0 }, circuitBreaker: { enabled: false }, healthCheck: { passive: { enabled: false } } } },
          routes: [{ path: '/f/*', upstream: 'faulty', plugins: [{ name: 'slow-post' }] }],
        },
        engine,
      );
      expect(await outcome(`${gw.url}/f/mid-body`)).toEqual({ status: 502, clean: true, error: null });
      expect(await outcome(`${gw.url}/f/ok`)).toEqual({ status: 200, clean: true, error: null });
      await until(() => upstreamActive(gw, 'faulty') === 0 && gw.gateway.metrics.inFlight === 0, {
        timeoutMs: 5000,
        message: () => `upstream exchanges released (active ${upstreamActive(gw, 'faulty')}, in flight ${gw.gateway.metrics.inFlight})`,
      });
    });
  }
});

describe.each(ENGINES)('slow clients (engine %s)', (engine) => {
  let up: RecordingUpstream;
  beforeAll(async () => {
    up = await startUpstream('rec');
  });
  afterAll(() => up.close());

  const timeouts = { headersTimeoutMs: 300, requestTimeoutMs: 700, connectionsCheckingIntervalMs: 50 };

  it('slowloris (headers never finish) → 408 and close at headersTimeoutMs; nothing reaches the upstream', async () => {
    const gw = await gateway({ server: timeouts, upstreams: { rec: { targets: [up.url] } }, routes: [{ path: '/api/*', upstream: 'rec' }] }, engine);
    up.reset();
    const drip: Array<string | number> = ['GET /api/x HTTP/1.1\r\nHost: gw\r\n'];
    for (let i = 0; i < 40; i++) drip.push(50, `X-Drip-${i}: 1\r\n`);
    const ex = await exchange(gw.port, drip, { waitClose: true, timeoutMs: 4000 });
    expect(ex.responses[0]?.status).toBe(408);
    expect(ex.closed).toBe(true);
    expect(up.bytes).toBe(0);
  });

  it('slow POST (body trickles) → 408 and close at requestTimeoutMs; the upstream exchange is released', async () => {
    const gw = await gateway({ server: timeouts, upstreams: { rec: { targets: [up.url] } }, routes: [{ path: '/api/*', upstream: 'rec' }] }, engine);
    const drip: Array<string | number> = ['POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n'];
    for (let i = 0; i < 60; i++) drip.push(50, 'a');
    const ex = await exchange(gw.port, drip, { waitClose: true, timeoutMs: 4000 });
    expect(ex.responses[0]?.status).toBe(408);
    expect(ex.closed).toBe(true);
    await until(() => upstreamActive(gw, 'rec') === 0 && gw.gateway.metrics.inFlight === 0, {
      timeoutMs: 5000,
      message: () => `upstream exchange released (active ${upstreamActive(gw, 'rec')}, in flight ${gw.gateway.metrics.inFlight})`,
    });
    expect(up.requests.filter((r) => r.body.length === 100)).toEqual([]);
  });
});

describe.each(ENGINES)('per-IP connection cap (engine %s)', (engine) => {
  it('excess concurrent connections from one address get 503 and are closed; a freed slot is reusable', async () => {
    const gw = await gateway({ server: { maxConnectionsPerIp: 3 }, routes: [{ path: '/ok', response: { body: 'ok' } }] }, engine);
    const held: net.Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const s = net.connect(gw.port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      held.push(s);
    }
    await until(() => gw.gateway.metrics.activeConnections === 3, {
      timeoutMs: 5000,
      message: () => `3 connections held (${gw.gateway.metrics.activeConnections})`,
    });
    const refused = await exchange(gw.port, ['GET /ok HTTP/1.1\r\nHost: gw\r\n\r\n'], { waitClose: true });
    expect(refused.responses[0]?.status).toBe(503);
    expect(refused.responses[0]?.headers['retry-after']).toBe('1');
    expect(refused.closed).toBe(true);
    expect(gw.gateway.server.limitStats().perIpRefused).toBe(1);
    // the held connections still work
    const onHeld = await new Promise<string>((resolve) => {
      held[0]!.once('data', (c: Buffer) => resolve(c.toString()));
      held[0]!.write('GET /ok HTTP/1.1\r\nHost: gw\r\n\r\n');
    });
    expect(onHeld.startsWith('HTTP/1.1 200')).toBe(true);
    held.pop()!.destroy();
    await until(() => gw.gateway.metrics.activeConnections === 2, {
      timeoutMs: 5000,
      message: () => `a slot freed (${gw.gateway.metrics.activeConnections} connections)`,
    });
    const again = await exchange(gw.port, ['GET /ok HTTP/1.1\r\nHost: gw\r\n\r\n']);
    expect(again.responses[0]?.status).toBe(200);
    for (const s of held) s.destroy();
  });
});

describe.each(ENGINES)('overload protection (engine %s)', (engine) => {
  it('event-loop delay over the threshold → immediate 503 + Retry-After, no upstream call; recovers when it drops', async () => {
    const up = await startUpstream('rec');
    running.push(up);
    const gw = await gateway(
      {
        // The threshold sits well above what a loaded machine alone causes: at 40 ms, a process descheduled for a
        // moment (or a GC pause) was "overloaded" before the burn began, and the first request got a 503.
        server: { overload: { maxEventLoopDelayMs: 250, checkIntervalMs: 100, retryAfterS: 2 } },
        admin: { enabled: true },
        upstreams: { rec: { targets: [up.url] } },
        routes: [{ path: '/api/*', upstream: 'rec' }],
      },
      engine,
    );
    expect((await request(`${gw.url}/api/before`)).status).toBe(200);
    // Sustained pressure: the loop is blocked 400 ms out of every ~410 ms, in this process (the gateway's).
    let pressure = true;
    const burn = (): void => {
      if (!pressure) return;
      const end = performance.now() + 400;
      while (performance.now() < end);
      setTimeout(burn, 10);
    };
    burn();
    up.reset();
    let ok = 0;
    let shed = 0;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && shed < 3) {
      const r = await request(`${gw.url}/api/during`);
      if (r.status === 200) ok++;
      else if (r.status === 503 && r.headers['retry-after'] === '2') shed++;
      else throw new Error(`unexpected ${r.status}`);
    }
    // A balancer in front sees the gateway as not ready while it sheds. The flag follows each 100 ms sample, and
    // an interval can catch the burn's 10 ms gap on a slow machine, so ask until it answers 503 (bounded).
    let readyDuring = 0;
    const readyDeadline = Date.now() + 5000;
    while (Date.now() < readyDeadline && readyDuring !== 503) readyDuring = (await request(`${gw.adminUrl}/ready`)).status;
    pressure = false;
    expect(shed).toBe(3);
    expect(readyDuring).toBe(503);
    const stats = gw.gateway.server.limitStats().overload!;
    expect(stats.shed).toBe(3);
    expect(stats.episodes).toBeGreaterThanOrEqual(1);
    // shed requests never reached the upstream: it saw exactly the ones answered 200
    expect(up.requests.filter((r) => r.url === '/api/during').length).toBe(ok);
    await until(async () => (await request(`${gw.url}/api/after`)).status === 200, { timeoutMs: 5000, message: '200 again once the pressure stopped' });
    expect(gw.gateway.server.limitStats().overload!.overloaded).toBe(false);
    expect((await request(`${gw.adminUrl}/ready`)).status).toBe(200);
  });

  // Skipped for the other engines on purpose: heap shedding is the core's overload monitor (process heap, not
  // the engine's sockets), so one engine proves it, and a second 96 MiB ballast would only add memory pressure.
  it.runIf(engine === DEFAULT_ENGINE)(
    `heap over the threshold → 503 while it lasts, recovers after the memory is released${engine === DEFAULT_ENGINE ? '' : ` (skipped: the core's heap monitor is engine-independent; proven on ${DEFAULT_ENGINE})`}`,
    async () => {
      gc();
      const base = process.memoryUsage().heapUsed;
      const gw = await gateway({
        server: { overload: { maxHeapUsedBytes: base + 96 * 1024 * 1024, checkIntervalMs: 50 } },
        routes: [{ path: '/ok', response: { body: 'ok' } }],
      });
      expect((await request(`${gw.url}/ok`)).status).toBe(200);
      let ballast: number[][] | null = Array.from({ length: 200 }, () => Array.from({ length: 100_000 }, (_, i) => i + 0.5));
      await until(async () => (await request(`${gw.url}/ok`)).status === 503, { timeoutMs: 5000, message: '503 while overloaded' });
      expect(ballast.length).toBe(200);
      ballast = null;
      gc();
      await until(async () => (await request(`${gw.url}/ok`)).status === 200, { timeoutMs: 5000, message: '200 once the overload passed' });
    },
  );
});

describe.each(ENGINES)('client disconnects (engine %s)', (engine) => {
  const TOTAL = engine === DEFAULT_ENGINE ? 2000 : 500;
  it(`${TOTAL} aborts mid-request and mid-response: sockets, in-flight and upstream requests and heap return to baseline`, async () => {
    const big = Buffer.alloc(256 * 1024, 'z');
    const upServer = await startUpstream('app', (req, res) => {
      if (req.url!.startsWith('/api/big')) {
        res.writeHead(200, { 'content-length': big.length });
        res.end(big);
        return;
      }
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    running.push(upServer);
    const upUrl = upServer.url;
    const gw = await gateway({ admin: { enabled: true }, upstreams: { app: { targets: [upUrl] } }, routes: [{ path: '/api/*', upstream: 'app' }] }, engine);

    const stats = async (): Promise<{ active: number; inFlight: number; upstream: number }> => {
      const r = JSON.parse((await request(`${gw.adminUrl}/stats`, { agent: false })).body) as {
        metrics: { activeConnections: number; inFlight: number };
        workers: Array<{ upstreams: Record<string, { targets: Array<{ active: number }> }> }>;
      };
      return { active: r.metrics.activeConnections, inFlight: r.metrics.inFlight, upstream: r.workers[0]!.upstreams.app!.targets[0]!.active };
    };
    // warm up (pools, JIT) before measuring the heap baseline
    for (let i = 0; i < 50; i++) await request(`${gw.url}/api/big`, { agent: false });
    await until(async () => (await stats()).active === 0, { timeoutMs: 5000, message: 'warm-up connections closed' });
    gc();
    const heapBase = process.memoryUsage().heapUsed;

    let next = 0;
    const abortOne = (i: number): Promise<void> =>
      new Promise((resolve) => {
        const s = net.connect(gw.port, '127.0.0.1');
        s.on('error', () => undefined);
        s.on('close', () => resolve());
        s.on('connect', () => {
          if (i % 2 === 0) {
            // mid-request: head and part of the body, then gone
            s.write(`POST /api/up HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\n${'a'.repeat(100)}`);
            setTimeout(() => s.destroy(), i % 3);
          } else {
            // mid-response: gone after the first bytes of a 256 KB answer
            s.write('GET /api/big HTTP/1.1\r\nHost: gw\r\n\r\n');
            s.once('data', () => s.destroy());
          }
        });
        setTimeout(() => s.destroy(), 3000);
      });
    const loop = async (): Promise<void> => {
      while (next < TOTAL) await abortOne(next++);
    };
    await Promise.all(Array.from({ length: 32 }, loop));

    let last: unknown = null;
    await until(
      async () => {
        const s = await stats();
        last = s;
        return s.active <= 1 && s.inFlight === 0 && s.upstream === 0; // <= 1: the admin request's own socket is on another server
      },
      { timeoutMs: 10_000, stepMs: 50, message: () => `sockets, in-flight and upstream requests back to baseline: ${JSON.stringify(last)}` },
    );
    // still serving
    expect((await request(`${gw.url}/api/up`, { method: 'POST', body: 'x', agent: false })).status).toBe(200);
    await sleep(50);
    gc();
    const heapAfter = process.memoryUsage().heapUsed;
    expect(heapAfter - heapBase, `heap grew from ${heapBase} to ${heapAfter}`).toBeLessThan(24 * 1024 * 1024);
  }, 90_000);
});
