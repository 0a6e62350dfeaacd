import { rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { variantNames } from '../../core/variants.js';
import { load, request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { until } from '../support/wait.js';
import { captureLogger, gatewayFor } from './helpers.js';

/**
 * A hook whose promise never settles must cost its own request only, and only for server.hookTimeoutMs: before
 * the bound, a preHandler that forgot to resolve left the client waiting forever (no server timeout covers a
 * request that has been read), and the context, the in-flight count and the runtime it started in stayed taken
 * even after the client gave up, so a reload never destroyed the old plugin instances.
 *
 * The plugin hangs in the hook named by x-hang; with x-late it settles after that many ms instead, and then
 * writes to the context it was given (which must not reach any other request).
 */
const dir = writePlugins(
  {
    hang: `
const late = new Set();
globalThis.__lateWrites ??= 0;
function maybeHang(ctx, hook) {
  if (ctx.header('x-hang') !== hook) return;
  const ms = Number(ctx.header('x-late') ?? 0);
  if (ms === 0) return new Promise(() => {});
  return new Promise((resolve) => setTimeout(() => {
    // a careless late write to a context the gateway has given up on
    ctx.statusCode = 299;
    ctx.addResponseHeader('x-late-write', 'leaked');
    globalThis.__lateWrites++;
    resolve();
  }, ms));
}
export default {
  name: 'hang', version: '1.0.0',
  init(options, api) {
    api.registerHandler('hang-handler', (ctx) => maybeHang(ctx, 'handler') ?? ctx.send(200, null, 'handled'));
    return {
      preRoute: (ctx) => maybeHang(ctx, 'preRoute'),
      preHandler: (ctx) => maybeHang(ctx, 'preHandler'),
      postHandler: (ctx) => maybeHang(ctx, 'postHandler'),
      onError: (ctx) => maybeHang(ctx, 'onError'),
      postResponse: (ctx) => maybeHang(ctx, 'postResponse'),
    };
  },
};`,
    // Fails the request when asked, so that onError hooks run.
    fail: `
export default { name: 'fail', version: '1.0.0', init() { return { preHandler(ctx) { if (ctx.header('x-fail') === '1') throw new Error('to onError'); } }; } };`,
    // Waits 400 ms (well under the bound) before answering: requests in flight while a late write happens.
    slow: `
export default { name: 'slow', version: '1.0.0', init() { return { preHandler: () => new Promise((r) => setTimeout(r, 400)) }; } };`,
  },
  'gw-careless-hang-',
);

// far enough above the victims' 400 ms wait that a timer running late on a loaded machine is not a 504
const HOOK_TIMEOUT_MS = 1000;

function config(engine: string, hookTimeoutMs = HOOK_TIMEOUT_MS): Record<string, unknown> {
  return {
    pluginDirs: [dir],
    server: { hookTimeoutMs },
    variants: { server: engine },
    plugins: [{ name: 'hang' }],
    routes: [
      { name: 'r', path: '/r', methods: ['GET'], response: { body: 'ok' }, plugins: [{ name: 'fail' }] },
      { name: 'h', path: '/h', methods: ['GET'], handler: 'hang-handler' },
      { name: 'victim', path: '/victim', methods: ['GET'], response: { body: 'victim' }, plugins: [{ name: 'slow' }] },
    ],
  };
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function hookStats(gw: RunningGateway, hook: string): { calls: number; errors: number } {
  const plugins = gw.gateway.exportMetrics().sections.plugins as Record<string, { hooks: Record<string, { calls: number; errors: number }> }>;
  return plugins.hang!.hooks[hook]!;
}

describe.each(variantNames('server'))('a hook that never settles (engine %s)', (engine) => {
  const log = captureLogger();
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await gatewayFor(config(engine), log.logger);
  });
  afterAll(async () => {
    await gw?.close();
  });

  for (const [hook, path] of [
    ['preRoute', '/r'],
    ['preHandler', '/r'],
    ['handler', '/h'],
    ['postHandler', '/r'],
  ] as const) {
    it(`${hook}: the client gets a 504 at hookTimeoutMs, logged with the plugin and hook; nothing stays taken`, async () => {
      const errorsBefore = hook === 'handler' ? 0 : hookStats(gw, hook).errors;
      const t0 = Date.now();
      const r = await request(`${gw.url}${path}`, { headers: { 'x-hang': hook }, timeoutMs: 5000 });
      expect(r.status).toBe(504);
      expect(JSON.parse(r.body)).toEqual({ error: 'Gateway Timeout', statusCode: 504 });
      // not before the bound (no assertion on how soon after it: that is the machine's speed)
      expect(Date.now() - t0).toBeGreaterThanOrEqual(HOOK_TIMEOUT_MS - 5);
      const line = log.lines().find((l) => l.msg === 'plugin hook did not settle in time; request given up on' && l.hook === hook);
      expect(line).toMatchObject({ url: path, timeoutMs: HOOK_TIMEOUT_MS, plugin: hook === 'handler' ? 'handler "hang-handler"' : 'hang' });
      if (hook !== 'handler') expect(hookStats(gw, hook).errors).toBe(errorsBefore + 1);
      expect(gw.gateway.metrics.inFlight).toBe(0);
      expect((await request(`${gw.url}${path}`)).status).toBe(200);
    });
  }

  it('a WebSocket upgrade whose preHandler hangs gets a raw 504 at hookTimeoutMs, and the socket closed', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      const s = connect(gw.port, '127.0.0.1', () => {
        s.write(
          'GET /r HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n' +
            'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nx-hang: preHandler\r\n\r\n',
        );
      });
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      s.on('close', () => resolve(text));
      s.on('error', reject);
      s.setTimeout(5000, () => s.destroy(new Error('no answer')));
    });
    expect(out.startsWith('HTTP/1.1 504 Gateway Timeout\r\n')).toBe(true);
    expect(gw.gateway.metrics.inFlight).toBe(0);
  });

  it('onError: the staged error answer goes out at hookTimeoutMs', async () => {
    const r = await request(`${gw.url}/r`, { headers: { 'x-hang': 'onError', 'x-fail': '1' }, timeoutMs: 5000 });
    expect(r.status).toBe(500);
    expect(log.lines().some((l) => l.msg === 'plugin hook did not settle in time; request given up on' && l.hook === 'onError')).toBe(true);
    expect(gw.gateway.metrics.inFlight).toBe(0);
  });

  it('postResponse: the answer is not delayed, and the request is finished at hookTimeoutMs', async () => {
    const r = await request(`${gw.url}/r`, { headers: { 'x-hang': 'postResponse' }, timeoutMs: 5000 });
    expect(r.status).toBe(200);
    await until(() => gw.gateway.metrics.inFlight === 0, { timeoutMs: 5000, message: () => `inFlight ${gw.gateway.metrics.inFlight}` });
    expect(log.lines().some((l) => l.msg === 'plugin hook did not settle in time; request given up on' && l.hook === 'postResponse')).toBe(true);
  });

  it('a hook that settles after the bound writes only to its own, abandoned context: no other request sees it', async () => {
    const lateWrites = (): number => (globalThis as { __lateWrites?: number }).__lateWrites ?? 0;
    const writesBefore = lateWrites();
    const late = request(`${gw.url}/r`, { headers: { 'x-hang': 'preHandler', 'x-late': String(HOOK_TIMEOUT_MS + 300) }, timeoutMs: 5000 });
    // requests in flight across the late write, on contexts from the pool
    const victims = Array.from({ length: 8 }, () => request(`${gw.url}/victim`, { agent: false, timeoutMs: 5000 }));
    expect((await late).status).toBe(504);
    const more = Array.from({ length: 8 }, () => request(`${gw.url}/victim`, { agent: false, timeoutMs: 5000 }));
    for (const v of await Promise.all([...victims, ...more])) {
      expect(v.status).toBe(200);
      expect(v.body).toBe('victim');
      expect(v.headers['x-late-write']).toBeUndefined();
    }
    await until(() => lateWrites() === writesBefore + 1, { timeoutMs: 5000, message: 'the late write happened' });
    expect(gw.gateway.metrics.inFlight).toBe(0);
  });
});

describe('async hooks that do settle', () => {
  it('leave no watched wait behind: 1,500 requests, a third through an async preHandler', async () => {
    // a bound far above the 400 ms wait: on a loaded machine a timer can run late, and a 504 here is no leak
    const gw = await gatewayFor(config('node-http', 10_000));
    try {
      // the victim route waits 400 ms in an async preHandler (watched); /h and /r stay synchronous
      const { statuses, errors } = await load(gw.url, 1500, 32, (i) => (i % 3 === 0 ? '/victim' : i % 3 === 1 ? '/h' : '/r'));
      expect(errors).toEqual([]);
      expect(statuses.get(200)).toBe(1500);
      expect(gw.gateway.metrics.inFlight).toBe(0);
      // the map holds contexts: anything left in it would be a leak
      const pipeline = (gw.gateway.server as unknown as { pipeline: { waiting: Map<unknown, unknown> } }).pipeline;
      expect(pipeline.waiting.size).toBe(0);
    } finally {
      await gw.close();
    }
  }, 60_000);
});

describe.each(variantNames('server'))('a client that gives up on a hanging hook (engine %s)', (engine) => {
  let gw: RunningGateway;
  beforeAll(async () => {
    // a bound far away: what frees the request here is the client leaving
    gw = await gatewayFor(config(engine, 60_000));
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('frees its context and in-flight slot soon after, not at the bound', async () => {
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${gw.url}/r`, { headers: { 'x-hang': 'preHandler' }, agent: false });
      req.on('error', () => resolve());
      req.end();
      void until(() => gw.gateway.metrics.inFlight === 1, { timeoutMs: 5000, message: 'request in flight' }).then(() => req.destroy());
    });
    await until(() => gw.gateway.metrics.inFlight === 0, { timeoutMs: 5000, message: () => `inFlight ${gw.gateway.metrics.inFlight}` });
    expect((await request(`${gw.url}/r`)).status).toBe(200);
  });
});

describe('reload and shutdown with a hanging hook', () => {
  it('the old runtime is disposed (its destroy hooks run) once the hung request is given up on', async () => {
    const destroyDir = writePlugins(
      {
        marker: `
export default { name: 'marker', version: '1.0.0', init(o) { return { destroy() { (globalThis.__destroyed ??= []).push(o.tag); } }; } };`,
      },
      'gw-careless-hang-marker-',
    );
    const cfg = (tag: string): Record<string, unknown> => ({
      ...config('node-http'),
      pluginDirs: [dir, destroyDir],
      plugins: [{ name: 'hang' }, { name: 'marker', options: { tag } }],
    });
    const gw = await gatewayFor(cfg('old'));
    try {
      const hung = request(`${gw.url}/r`, { headers: { 'x-hang': 'preHandler' }, timeoutMs: 5000 });
      await until(() => gw.gateway.metrics.inFlight === 1, { timeoutMs: 5000, message: 'request in flight' });
      expect((await gw.reload(cfg('new'))).ok).toBe(true);
      expect((await hung).status).toBe(504);
      await until(() => ((globalThis as { __destroyed?: string[] }).__destroyed ?? []).includes('old'), {
        timeoutMs: 5000,
        message: 'old marker instance destroyed',
      });
    } finally {
      await gw.close();
      rmSync(destroyDir, { recursive: true, force: true });
    }
  });

  it('gateway.close() ends by its deadline with a hook hung (hookTimeoutMs off)', async () => {
    const gw = await gatewayFor(config('node-http', 0));
    const hung = request(`${gw.url}/r`, { headers: { 'x-hang': 'preHandler' }, timeoutMs: 10_000 }).catch((e: Error) => e);
    await until(() => gw.gateway.metrics.inFlight === 1, { timeoutMs: 5000, message: 'request in flight' });
    // RunningGateway.close drains for 1 s; then the connection is cut
    await gw.close();
    expect(await hung).toBeInstanceOf(Error);
  });
});
