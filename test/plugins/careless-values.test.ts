import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { variantNames } from '../../core/variants.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { captureProcessErrors } from '../support/process-errors.js';
import { captureLogger, gatewayFor } from './helpers.js';

/**
 * A careless plugin throws, rejects and stages values no plugin should: each costs its own request (an answer,
 * never a hang, never the process), and the next request on the same keep-alive connection is served normally.
 * The plugin picks its misbehaviour from the x-do header; x-hook picks the hook; x-async makes it a promise.
 */
const dir = writePlugins(
  {
    careless: `
const throwers = {
  'throw-null': () => { throw null; },
  'throw-undefined': () => { throw undefined; },
  'throw-string': () => { throw 'a string'; },
  'throw-symbol': () => { throw Symbol('s'); },
  'throw-getter': () => { throw { get message() { throw new Error('getter'); }, get statusCode() { throw new Error('getter'); } }; },
  'throw-tostring': () => { throw { toString() { throw new Error('toString'); } }; },
  'throw-headers-getter': () => { throw { statusCode: 418, get headers() { throw new Error('headers getter'); } }; },
  'throw-bad-headers': () => { throw { statusCode: 429, headers: { 'retry-after': 'a\\r\\nx-injected: 1' } }; },
  'throw-symbol-header': () => { throw { statusCode: 429, headers: { 'retry-after': Symbol('x') } }; },
  'throw-status-200': () => { throw { statusCode: 200, message: 'not an error status' }; },
  'throw-status-text': () => { throw Object.assign(new Error('status as text'), { statusCode: 'teapot' }); },
  'throw-proxy': () => { throw new Proxy({}, { get() { throw new Error('proxy trap'); }, has() { throw new Error('proxy trap'); }, getPrototypeOf() { throw new Error('proxy trap'); } }); },
  'then-throws': () => ({ then() { throw new Error('then threw'); } }),
  'then-getter-throws': () => ({ get then() { throw new Error('then getter threw'); } }),
  'send-twice': (ctx) => { ctx.send(401, null, 'first'); ctx.send(403, null, 'second'); },
  'send-then-throw': (ctx) => { ctx.send(401, null, 'sent'); throw new Error('after send'); },
  'headers-string': (ctx) => { ctx.send(200, 'not an object', 'x'); },
  'headers-array-bad': (ctx) => { ctx.send(200, { 'x-a': ['ok', 'b\\r\\nad'] }, 'x'); },
  'headers-number': (ctx) => { ctx.send(200, { 'x-n': 42 }, 'x'); },
  'headers-symbol': (ctx) => { ctx.send(200, { 'x-s': Symbol('s') }, 'x'); },
  'headers-symbol-name': (ctx) => { ctx.send(200, { [Symbol('k')]: 'v' }, 'x'); },
  'status-nan': (ctx) => { ctx.send(NaN, null, 'x'); },
  'status-99': (ctx) => { ctx.send(99, null, 'x'); },
  'status-600': (ctx) => { ctx.send(600, null, 'x'); },
  'status-string': (ctx) => { ctx.send('200', null, 'x'); },
  'status-float': (ctx) => { ctx.send(200.5, null, 'x'); },
  'body-object': (ctx) => { ctx.send(200, null, { an: 'object' }); },
  'body-number': (ctx) => { ctx.send(200, null, 42); },
};
export default {
  name: 'careless', version: '1.0.0',
  init() {
    const run = (hook) => (ctx, err) => {
      if (hook === 'onError' && ctx.header('x-hook') !== 'onError') return;
      if (ctx.header('x-hook') !== hook && hook !== 'onError') return;
      const fn = throwers[ctx.header('x-do')];
      if (fn === undefined) return;
      if (ctx.header('x-async') === '1') return Promise.resolve().then(() => fn(ctx));
      return fn(ctx);
    };
    return { preRoute: run('preRoute'), preHandler: run('preHandler'), postHandler: run('postHandler'), onError: run('onError'), postResponse: run('postResponse') };
  },
};`,
    'fails-first': `
export default { name: 'fails-first', version: '1.0.0', init() { return { preHandler(ctx) { if (ctx.header('x-hook') === 'onError') throw new Error('to reach onError'); } }; } };`,
  },
  'gw-careless-values-',
);

const { unhandled, uncaught } = captureProcessErrors();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What the client gets when the misbehaviour happens in a pre-send hook or onError (postResponse: always the 200). */
const EXPECTED: Record<string, number> = {
  'throw-null': 500,
  'throw-undefined': 500,
  'throw-string': 500,
  'throw-symbol': 500,
  'throw-getter': 500,
  'throw-tostring': 500,
  // its statusCode reads 418 but its headers getter throws: before the fix, an uncaught exception (node-http)
  // or a cut connection with the context never released (async)
  'throw-headers-getter': 500,
  'throw-bad-headers': 500,
  'throw-symbol-header': 500,
  // a statusCode that is not a 4xx/5xx number is no chosen answer: a failure, logged with the plugin's name
  'throw-status-200': 500,
  'throw-status-text': 500,
  'throw-proxy': 500,
  'then-throws': 500,
  'then-getter-throws': 500,
  'send-twice': 403,
  'send-then-throw': 500,
  // node:http takes a string in the headers' place as the reason phrase (validated): harmless
  'headers-string': 200,
  'headers-array-bad': 500,
  'headers-number': 200,
  'headers-symbol': 500,
  'headers-symbol-name': 200,
  'status-nan': 500,
  'status-99': 500,
  // node:http writes any three-digit status
  'status-600': 600,
  'status-string': 200,
  'status-float': 200,
  'body-object': 500,
  'body-number': 500,
};
const HOOKS = ['preRoute', 'preHandler', 'postHandler', 'onError', 'postResponse'];

function expected(hook: string, does: string): number {
  if (hook === 'postResponse') return 200;
  // an onError hook that throws is counted and skipped: what it staged before throwing goes out
  if (hook === 'onError' && does === 'send-then-throw') return 401;
  return EXPECTED[does]!;
}

describe.each(variantNames('server'))('careless values (engine %s)', (engine) => {
  const log = captureLogger();
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await gatewayFor(
      {
        pluginDirs: [dir],
        variants: { server: engine },
        plugins: [{ name: 'careless' }],
        routes: [{ name: 'r', path: '/r', methods: ['GET'], response: { body: 'ok' }, plugins: [{ name: 'careless' }, { name: 'fails-first' }] }],
      },
      log.logger,
    );
  });
  afterAll(async () => {
    await gw?.close();
  });

  for (const hook of HOOKS) {
    for (const does of Object.keys(EXPECTED)) {
      it(`${hook} ${does}: ${expected(hook, does)}, sync and async; the next request on the connection is served`, async () => {
        for (const asyncHook of ['0', '1']) {
          const before = gw.gateway.metrics.inFlight;
          const r = await request(`${gw.url}/r`, { headers: { 'x-hook': hook, 'x-do': does, 'x-async': asyncHook }, timeoutMs: 3000 });
          expect(r.status).toBe(expected(hook, does));
          expect(r.headers['x-injected']).toBeUndefined();
          const ok = await request(`${gw.url}/r`);
          expect(ok.status).toBe(200);
          expect(ok.body).toBe('ok');
          expect(gw.gateway.metrics.inFlight).toBe(before);
        }
      });
    }
  }

  it('a returned object whose then getter throws is named like any failing hook', () => {
    for (const hook of ['preRoute', 'preHandler', 'postHandler']) {
      const named = log.lines().filter((l) => l.msg === 'request failed' && (l.err as { type?: string }).type === 'PluginHookError');
      expect(named.some((l) => (l.err as { message?: string }).message === `plugin "careless" ${hook} hook failed: then getter threw`)).toBe(true);
    }
    // the synchronous case too: never the bare error, without the plugin's name
    expect(log.lines().filter((l) => (l.err as { message?: string } | undefined)?.message === 'then getter threw')).toEqual([]);
    const post = log.lines().filter((l) => l.msg === 'postResponse hook failed' && l.plugin === 'careless');
    expect(post.some((l) => String((l.err as { stack?: string }).stack).includes('then getter threw'))).toBe(true);
  });

  it('an error with a statusCode that is no HTTP error status is logged as that plugin hook failure', () => {
    const named = log.lines().filter((l) => l.msg === 'request failed' && l.plugin === 'careless');
    expect(named.some((l) => String((l.err as { message?: string }).message).includes('not an error status'))).toBe(true);
    expect(named.some((l) => String((l.err as { message?: string }).message).includes('status as text'))).toBe(true);
  });

  it('an error whose headers cannot be read is logged as a failure', () => {
    const lines = log.lines().filter((l) => l.msg === 'request failed' && String((l.err as { message?: string }).message).includes('cannot be read'));
    expect(lines.length).toBeGreaterThan(0);
    expect(String((lines[0]!.err as { stack?: string }).stack)).toMatch(/headers getter/);
  });

  it('left nothing unhandled', async () => {
    await new Promise((r) => setImmediate(r));
    expect(unhandled).toEqual([]);
    expect(uncaught).toEqual([]);
  });
});
