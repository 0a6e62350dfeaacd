import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { request } from '../support/http.js';

/**
 * send() writes whatever the pipeline staged; node:http refuses some of it (a status outside 100–999, a header
 * name or value with bytes it will not put on the wire, a body of the wrong type). Each such answer costs its own
 * request — a plain 500 (or 502 for an upstream's answer) — and never the process, the connection's other
 * requests, the context release or the metrics.
 */
const dir = mkdtempSync(join(tmpdir(), 'gw-send-safety-'));

// One careless plugin: what it stages depends on the x-bad header, synchronously or (x-async) after a promise.
writeFileSync(
  join(dir, 'careless.mjs'),
  `
const later = (ctx, fn) => ctx.req.headers['x-async'] === '1' ? Promise.resolve().then(fn) : fn();
const stage = (ctx) => {
  switch (ctx.req.headers['x-bad']) {
    case 'extra-value': ctx.addResponseHeader('x-extra', 'a\\u0001b'); break;
    case 'header-value': ctx.responseHeaders = { ...ctx.responseHeaders, 'x-bad': 'v\\r\\ninjected: 1' }; break;
    case 'header-name': ctx.responseHeaders = { ...ctx.responseHeaders, 'bad name': 'v' }; break;
    case 'status-high': ctx.statusCode = 1000; break;
    case 'status-zero': ctx.statusCode = 0; break;
    case 'body-object': ctx.body = { not: 'a body' }; break;
  }
};
export default {
  name: 'careless', version: '1.0.0',
  init() {
    return {
      postHandler: (ctx) => later(ctx, () => stage(ctx)),
      onError: (ctx) => { if (ctx.req.headers['x-onerror'] === 'bad') ctx.addResponseHeader('x-err', '\\u007f'); },
      postResponse: (ctx) => later(ctx, () => { if (ctx.req.headers['x-post-throw'] === '1') throw new Error('postResponse failed'); }),
    };
  },
  };`,
);
// Refuses upgrades with a response whose header would split the raw answer if written unchecked.
writeFileSync(
  join(dir, 'halter.mjs'),
  `
export default {
  name: 'halter', version: '1.0.0',
  init() {
    return { preHandler(ctx) { ctx.send(ctx.req.headers['x-status'] === 'bad' ? '401\\r\\nx-injected: 1' : 401, { 'x-bad': 'no\\r\\nx-injected: 1', 'x-good': 'yes' }, 'denied'); } };
  },
};`,
);
writeFileSync(
  join(dir, 'thrower.mjs'),
  `
export default {
  name: 'thrower', version: '1.0.0',
  init() { return { preHandler() { throw new Error('preHandler failed'); } }; },
};`,
);

/** A raw upstream that answers every request with the same bytes (a hostile or broken server). */
function rawUpstream(answer: string): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer((s: Socket) => {
      s.on('error', () => undefined);
      s.once('data', () => s.end(answer));
    });
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

const logLines: Array<{ msg: string; url?: string; plugin?: string; hook?: string; err?: { code?: string } }> = [];
const logger = pino(
  { level: 'warn' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(JSON.parse(chunk.toString()));
      done();
    },
  }),
);

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

let gw: RunningGateway;
let zeroStatus: { server: Server; port: number };
let goodUpstream: { server: Server; port: number };
beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  zeroStatus = await rawUpstream('HTTP/1.1 000 x\r\ncontent-length: 2\r\n\r\nok');
  goodUpstream = await rawUpstream('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 8\r\n\r\nupstream');
  gw = await startGateway(
    {
      pluginDirs: [dir],
      // agent: node's own client parser accepts status 000 and hands it on (the h1 and undici clients refuse it)
      variants: { upstream: 'agent' },
      upstreams: {
        zero: { targets: [{ url: `http://127.0.0.1:${zeroStatus.port}` }], retries: { count: 0 } },
        good: { targets: [{ url: `http://127.0.0.1:${goodUpstream.port}` }], retries: { count: 0 } },
      },
      routes: [
        { path: '/plain', methods: ['GET', 'HEAD'], response: { body: 'plain' } },
        { name: 'careless', path: '/careless', methods: ['GET', 'HEAD'], response: { body: 'careless' }, plugins: [{ name: 'careless' }] },
        { path: '/careless-error', methods: ['GET'], response: { body: 'x' }, plugins: [{ name: 'careless' }, { name: 'thrower' }] },
        { path: '/careless-upstream', methods: ['GET'], upstream: 'good', plugins: [{ name: 'careless' }] },
        { path: '/zero', methods: ['GET'], upstream: 'zero' },
        { path: '/ws', methods: ['GET'], upstream: 'good', plugins: [{ name: 'halter' }] },
      ],
    },
    { logger },
  );
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await gw?.close();
  zeroStatus?.server.close();
  goodUpstream?.server.close();
});

function routeErrors(route: string): { requests: number; errors: number } {
  const m = gw.gateway.exportMetrics().routes[route];
  return { requests: m?.requests ?? 0, errors: m?.errors ?? 0 };
}

describe('send() never throws out of the pipeline', () => {
  const cases = ['extra-value', 'header-value', 'header-name', 'status-high', 'status-zero', 'body-object'];
  for (const bad of cases) {
    for (const asyncHook of [false, true]) {
      it(`a plugin staging ${bad} (${asyncHook ? 'async' : 'sync'} hook) gets a plain 500; the gateway keeps serving`, async () => {
        const inFlightBefore = gw.gateway.metrics.inFlight;
        const r = await request(`${gw.url}/careless`, { headers: { 'x-bad': bad, 'x-async': asyncHook ? '1' : '0' } });
        expect(r.status).toBe(500);
        expect(JSON.parse(r.body)).toEqual({ error: 'Internal Server Error', statusCode: 500 });
        expect(r.headers['x-extra']).toBeUndefined();
        expect(r.headers['x-bad']).toBeUndefined();
        // the same keep-alive agent: the next request is answered normally
        const ok = await request(`${gw.url}/careless`);
        expect(ok.status).toBe(200);
        expect(ok.body).toBe('careless');
        expect(gw.gateway.metrics.inFlight).toBe(inFlightBefore);
        // the operator is told what was refused and where
        expect(logLines.some((l) => l.msg === 'response could not be written' && l.url === '/careless')).toBe(true);
      });
    }
  }

  it('counts the refused answer as an error on its route (context released, metrics recorded)', async () => {
    const before = routeErrors('careless');
    await request(`${gw.url}/careless`, { headers: { 'x-bad': 'status-high' } });
    const after = routeErrors('careless');
    expect(after.requests).toBe(before.requests + 1);
    expect(after.errors).toBe(before.errors + 1);
  });

  it('a HEAD whose staged header is refused gets a bodiless 500', async () => {
    const r = await request(`${gw.url}/careless`, { method: 'HEAD', headers: { 'x-bad': 'extra-value' } });
    expect(r.status).toBe(500);
    expect(r.body).toBe('');
  });

  it('an upstream answer a plugin made unsendable is a 502, and the upstream body is released', async () => {
    const r = await request(`${gw.url}/careless-upstream`, { headers: { 'x-bad': 'header-value', 'x-async': '1' } });
    expect(r.status).toBe(502);
    const ok = await request(`${gw.url}/careless-upstream`);
    expect(ok.status).toBe(200);
    expect(ok.body).toBe('upstream');
  });

  it('an onError hook that adds a refused header still lets the error answer out', async () => {
    const r = await request(`${gw.url}/careless-error`, { headers: { 'x-onerror': 'bad' } });
    expect(r.status).toBe(500);
    expect(r.headers['x-err']).toBeUndefined();
  });

  it('an upstream status node:http refuses (000 through the agent client) is a 502, not a crash', async () => {
    const r = await request(`${gw.url}/zero`);
    expect(r.status).toBe(502);
    expect((await request(`${gw.url}/plain`)).status).toBe(200);
  });

  it('a postResponse hook that throws after the answer went out costs nothing', async () => {
    for (const asyncHook of ['0', '1']) {
      const r = await request(`${gw.url}/careless`, { headers: { 'x-post-throw': '1', 'x-async': asyncHook } });
      expect(r.status).toBe(200);
    }
    expect((await request(`${gw.url}/plain`)).status).toBe(200);
    // sync and async failures are both logged with the plugin and hook that failed
    const failed = logLines.filter((l) => l.msg === 'postResponse hook failed' && l.plugin === 'careless' && l.hook === 'postResponse');
    expect(failed.length).toBe(2);
  });

  it('left no promise rejection unhandled', async () => {
    // unhandled rejections are reported after a macrotask turn
    await new Promise((r) => setImmediate(r));
    expect(unhandled).toEqual([]);
  });
});

/** Sends a raw upgrade request and returns everything the gateway wrote before closing. */
function rawUpgrade(port: number, extra = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => {
      s.write(
        `GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`,
      );
    });
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

describe('an upgrade refused by a hook is written raw, with only sendable headers', () => {
  it('drops a header value that would split the response', async () => {
    const out = await rawUpgrade(gw.port);
    expect(out.startsWith('HTTP/1.1 401 Unauthorized\r\n')).toBe(true);
    expect(out).toContain('x-good: yes\r\n');
    expect(out).not.toMatch(/x-injected/i);
    expect(out.endsWith('denied')).toBe(true);
  });

  it('answers 500 for a status that is not a number', async () => {
    const out = await rawUpgrade(gw.port, 'x-status: bad\r\n');
    expect(out.startsWith('HTTP/1.1 500 Internal Server Error\r\n')).toBe(true);
    expect(out).not.toMatch(/x-injected/i);
  });
});

describe('headers from the config that node:http would refuse', () => {
  it('are refused by validation, naming the field, instead of answering 500 on every request', async () => {
    const bad = (headers: Record<string, string>, where: 'response' | 'responseHeaders'): Promise<unknown> =>
      startGateway(
        {
          upstreams: { good: { targets: [{ url: `http://127.0.0.1:${goodUpstream.port}` }] } },
          routes: [
            where === 'response'
              ? { path: '/s', methods: ['GET'], response: { headers, body: 's' } }
              : { path: '/s', methods: ['GET'], upstream: 'good', responseHeaders: { add: headers } },
          ],
        },
        { logger },
      );
    await expect(bad({ 'x-a': 'a\u0001b' }, 'response')).rejects.toThrow('/routes/0/response/headers/x-a: header value has a character HTTP forbids');
    await expect(bad({ 'bad name': 'v' }, 'response')).rejects.toThrow('/routes/0/response/headers: header name "bad name" is not an HTTP token');
    await expect(bad({ 'x-b': 'v\r\nx-injected: 1' }, 'responseHeaders')).rejects.toThrow('/routes/0/responseHeaders/add/x-b');
  });
});
