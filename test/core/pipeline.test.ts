import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { request } from '../support/http.js';
import { until } from '../support/wait.js';

/**
 * The general pipeline is sync-first: it stays synchronous while hooks and handlers return undefined and only
 * suspends at a stage that returns a promise. These cases mix sync and async stages at every point and check
 * that order, halting, the error path and the per-hook stats are what an all-async pipeline gives.
 */
const dir = mkdtempSync(join(tmpdir(), 'gw-pipeline-'));

// Each hook is sync or async depending on the request's x-async header (a list of hook names), so one plugin
// covers every mix. Every hook appends to a log the test reads.
writeFileSync(
  join(dir, 'mix.mjs'),
  `
const log = (s) => (globalThis.__pipelineLog ??= []).push(s);
const isAsync = (ctx, hook) => (ctx.req.headers['x-async'] ?? '').split(',').includes(hook);
const step = (hook, fn) => (ctx, err) => {
  if (!isAsync(ctx, hook)) return fn(ctx, err);
  return new Promise((r) => setTimeout(r, 1)).then(() => fn(ctx, err));
};
export default {
  name: 'mix', version: '1.0.0',
  init(options, api) {
    api.registerHandler('mixed', step('handler', (ctx) => {
      log('handler');
      if (ctx.req.headers['x-throw'] === 'handler') throw new Error('handler failed');
      ctx.statusCode = 200;
      ctx.responseHeaders = { 'content-type': 'text/plain' };
      ctx.body = 'handled';
    }));
    // A handler written carelessly: returns a value that is not a promise.
    api.registerHandler('returns-value', (ctx) => { ctx.body = 'value'; return 42; });
    return {
      preRoute: step('preRoute', (ctx) => {
        log('preRoute');
        if (ctx.req.headers['x-halt'] === 'preRoute') ctx.send(418, { 'content-type': 'text/plain' }, 'halted early');
      }),
      preHandler: step('preHandler', (ctx) => {
        log('preHandler');
        if (ctx.req.headers['x-throw'] === 'preHandler') throw new Error('preHandler failed');
        if (ctx.req.headers['x-halt'] === 'preHandler') ctx.send(401, { 'content-type': 'text/plain' }, 'no');
      }),
      postHandler: step('postHandler', (ctx) => {
        log('postHandler:' + ctx.statusCode);
        if (ctx.req.headers['x-throw'] === 'postHandler') throw new Error('postHandler failed');
        ctx.responseHeaders = { ...ctx.responseHeaders, 'x-post': 'yes' };
      }),
      postResponse: step('postResponse', () => { log('postResponse'); }),
      onError: step('onError', (ctx, err) => {
        log('onError:' + err.message);
        if (ctx.req.headers['x-onerror'] === 'throw') throw new Error('onError failed too');
      }),
    };
  },
};`,
);

// Records, from a microtask queued in a sync preHandler, whether the response had already been written: with
// only synchronous stages it has (nothing in the pipeline waited for a promise).
writeFileSync(
  join(dir, 'probe.mjs'),
  `
export default {
  name: 'probe', version: '1.0.0',
  init() {
    return {
      preHandler(ctx) {
        const res = ctx.res;
        queueMicrotask(() => (globalThis.__probe ??= []).push(res.headersSent));
      },
    };
  },
};`,
);

const g = globalThis as Record<string, unknown>;
const log = (): string[] => (g.__pipelineLog as string[] | undefined) ?? [];
const reset = (): void => {
  g.__pipelineLog = [];
  g.__probe = [];
};

let gw: RunningGateway;
beforeAll(async () => {
  reset();
  gw = await startGateway({
    // the failing hooks below log "request failed" by design; the answers and hook order are what is asserted
    logging: { level: 'silent' },
    pluginDirs: [dir],
    plugins: [{ name: 'mix' }],
    routes: [
      { path: '/static', methods: ['GET'], response: { body: 'static' } },
      { path: '/handled', methods: ['GET'], handler: 'mixed' },
      { path: '/value', methods: ['GET'], handler: 'returns-value' },
      { path: '/probe', methods: ['GET'], response: { body: 'probed' }, plugins: [{ name: 'probe' }] },
    ],
  });
});
afterAll(() => gw.close());

const ALL = ['preRoute', 'preHandler', 'handler', 'postHandler', 'postResponse', 'onError'];
const mixes: Array<[string, string[]]> = [
  ['all sync', []],
  ['all async', ALL],
  ['async preRoute only', ['preRoute']],
  ['async handler only', ['handler']],
  ['async postHandler only', ['postHandler']],
  ['sync pre-stages, async post-stages', ['postHandler', 'postResponse']],
];

/**
 * postResponse runs after the answer is out. The server counts a request out of flight only after its
 * postResponse stage finished (release → metrics), so in-flight 0 means every hook of the answered requests ran.
 */
async function settled(): Promise<void> {
  await until(() => gw.gateway.metrics.inFlight === 0, {
    timeoutMs: 5000,
    message: () => `requests finished their pipeline (in flight: ${gw.gateway.metrics.inFlight}, log ${JSON.stringify(log())})`,
  });
}

describe('sync-first pipeline', () => {
  for (const [name, asyncHooks] of mixes) {
    it(`keeps the hook order with ${name} hooks`, async () => {
      reset();
      const r = await request(`${gw.url}/handled`, { headers: { 'x-async': asyncHooks.join(',') } });
      expect(r.status).toBe(200);
      expect(r.body).toBe('handled');
      expect(r.headers['x-post']).toBe('yes');
      await settled();
      expect(log()).toEqual(['preRoute', 'preHandler', 'handler', 'postHandler:200', 'postResponse']);
    });

    it(`a throwing hook goes to onError with ${name} hooks`, async () => {
      for (const where of ['preHandler', 'handler', 'postHandler']) {
        reset();
        const r = await request(`${gw.url}/handled`, { headers: { 'x-async': asyncHooks.join(','), 'x-throw': where } });
        expect(r.status).toBe(500);
        expect(r.body).not.toContain('failed');
        expect(r.headers['x-post']).toBeUndefined();
        await settled();
        const expected = ['preRoute', 'preHandler'];
        if (where !== 'preHandler') expected.push('handler');
        if (where === 'postHandler') expected.push('postHandler:200');
        expected.push(`onError:${where} failed`, 'postResponse');
        expect(log()).toEqual(expected);
      }
    });
  }

  it('a preRoute hook that answers skips matching and the later pre-send stages, sync or async', async () => {
    for (const asyncHooks of ['', 'preRoute']) {
      reset();
      const r = await request(`${gw.url}/handled`, { headers: { 'x-async': asyncHooks, 'x-halt': 'preRoute' } });
      expect(r.status).toBe(418);
      expect(r.body).toBe('halted early');
      await settled();
      // No route was matched, so there is no route-level postResponse either.
      expect(log()).toEqual(['preRoute']);
    }
  });

  it('a preHandler hook that answers skips the handler and postHandler; postResponse still runs', async () => {
    for (const asyncHooks of ['', 'preHandler', 'preHandler,postHandler']) {
      reset();
      const r = await request(`${gw.url}/handled`, { headers: { 'x-async': asyncHooks, 'x-halt': 'preHandler' } });
      expect(r.status).toBe(401);
      expect(r.body).toBe('no');
      expect(r.headers['x-post']).toBeUndefined();
      await settled();
      expect(log()).toEqual(['preRoute', 'preHandler', 'postResponse']);
    }
  });

  it('an onError hook that throws or rejects is counted and the original error answer is sent', async () => {
    // copied: the export hands out the live counters
    const stats = (): { calls: number; errors: number } => ({
      ...(gw.gateway.exportMetrics().sections.plugins as Record<string, { hooks: Record<string, { calls: number; errors: number }> }>).mix!.hooks.onError!,
    });
    for (const asyncHooks of ['', 'onError']) {
      const before = stats();
      const r = await request(`${gw.url}/handled`, { headers: { 'x-async': asyncHooks, 'x-throw': 'handler', 'x-onerror': 'throw' } });
      expect(r.status).toBe(500);
      const after = stats();
      expect(after.calls - before.calls).toBe(1);
      expect(after.errors - before.errors).toBe(1);
    }
  });

  it('a handler returning a value that is not a promise still answers', async () => {
    const r = await request(`${gw.url}/value`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('value');
  });

  it('counts every synchronous hook call and its time', async () => {
    const hooks = (): Record<string, { calls: number; totalMs: number }> =>
      structuredClone(
        (gw.gateway.exportMetrics().sections.plugins as Record<string, { hooks: Record<string, { calls: number; totalMs: number }> }>).mix!.hooks,
      );
    const before = hooks();
    for (let i = 0; i < 5; i++) expect((await request(`${gw.url}/static`)).status).toBe(200);
    await settled();
    const after = hooks();
    for (const h of ['preRoute', 'preHandler', 'postHandler', 'postResponse']) {
      expect(after[h]!.calls - before[h]!.calls).toBe(5);
      expect(after[h]!.totalMs).toBeGreaterThan(before[h]!.totalMs);
    }
  });

  it('with only synchronous stages the answer is written before any microtask runs', async () => {
    reset();
    const r = await request(`${gw.url}/probe`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('probed');
    expect(g.__probe).toEqual([true]);
    // An async stage suspends the pipeline: the probe's microtask then runs before the answer is written.
    reset();
    const slow = await request(`${gw.url}/probe`, { headers: { 'x-async': 'postHandler' } });
    expect(slow.status).toBe(200);
    expect(g.__probe).toEqual([false]);
  });
});
