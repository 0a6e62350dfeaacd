import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { loadPluginCatalog } from '../../core/plugins/loader.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { until } from '../support/wait.js';

/** Plugin modules are real files loaded from a plugin directory, as users ship them. */
const dir = writePlugins(
  {
    trace: `
export default {
  name: 'trace', version: '1.0.0',
  optionsSchema: { type: 'object', properties: { tag: { type: 'string', default: 'T' } }, additionalProperties: false },
  init(options, api) {
    // Looked up per call: the test swaps the array between cases.
    const log = { push: (s) => (globalThis.__traceLog ??= []).push(s) };
    log.push('init:' + options.tag);
    return {
      preRoute(ctx) { log.push(options.tag + ':preRoute:' + (ctx.route === null)); },
      async preHandler(ctx) { await new Promise((r) => setTimeout(r, 1)); log.push(options.tag + ':preHandler:' + JSON.stringify(ctx.params)); },
      postHandler(ctx) { log.push(options.tag + ':postHandler:' + ctx.statusCode); ctx.responseHeaders = { ...ctx.responseHeaders, ['x-' + options.tag]: 'seen' }; },
      postResponse(ctx) { log.push(options.tag + ':postResponse'); },
      onError(ctx, err) { log.push(options.tag + ':onError:' + err.message); },
      destroy() { log.push('destroy:' + options.tag); },
    };
  },
};`,
    boom: `
export default {
  name: 'boom', version: '0.1.0',
  init() {
    return {
      preHandler(ctx) { if (ctx.url.startsWith('/boom')) throw new Error('kaboom'); },
    };
  },
};`,
    guard: `
export default {
  name: 'guard', version: '1.2.3',
  init(options) {
    return {
      preHandler(ctx) {
        if (ctx.req.headers['x-key'] !== options.key) ctx.send(401, { 'www-authenticate': 'Key', 'content-type': 'text/plain' }, 'no');
      },
    };
  },
};`,
    'hello-handler': `
export default {
  name: 'hello-handler', version: '1.0.0',
  init(options, api) {
    api.registerHandler('hello', (ctx) => { ctx.statusCode = 200; ctx.responseHeaders = { 'content-type': 'text/plain' }; ctx.body = 'hello ' + ctx.params.name; });
    return {};
  },
};`,
    'bad-init': `
export default { name: 'bad-init', version: '1.0.0', init() { throw new Error('cannot start'); } };`,
  },
  'gw-plugins-',
);

const log = (): string[] => ((globalThis as Record<string, unknown>).__traceLog as string[]) ?? [];
const reset = (): void => void ((globalThis as Record<string, unknown>).__traceLog = []);

function config(globalPlugins: unknown[]): unknown {
  return {
    // the failing hooks and refused reloads below are asserted on answers and results, not on log lines
    logging: { level: 'silent' },
    pluginDirs: [dir],
    plugins: globalPlugins,
    routes: [
      { path: '/items/:id', methods: ['GET'], response: { body: 'item' } },
      { path: '/boom', methods: ['GET'], response: { body: 'never' } },
      { path: '/guarded', methods: ['GET'], response: { body: 'secret' }, plugins: [{ name: 'guard', options: { key: 'k1' } }] },
      { path: '/override', methods: ['GET'], response: { body: 'o' }, plugins: [{ name: 'trace', options: { tag: 'R' } }] },
      { path: '/hello/:name', methods: ['GET'], handler: 'hello' },
    ],
  };
}

let gw: RunningGateway;
beforeAll(async () => {
  reset();
  gw = await startGateway(config([{ name: 'trace', options: { tag: 'G' } }, { name: 'boom' }, { name: 'hello-handler' }]));
});
afterAll(() => gw.close());

describe('plugin hooks', () => {
  it('run in the fixed order around the handler', async () => {
    reset();
    const r = await request(`${gw.url}/items/7`);
    expect(r.status).toBe(200);
    expect(r.headers['x-g']).toBe('seen');
    // postResponse runs after the answer went out: wait for it, then check the whole order
    await until(() => log().includes('G:postResponse'), { timeoutMs: 5000, message: () => `postResponse logged: ${JSON.stringify(log())}` });
    expect(log()).toEqual(['G:preRoute:true', 'G:preHandler:{"id":"7"}', 'G:postHandler:200', 'G:postResponse']);
  });

  it('a throwing hook goes to onError and yields a 500 for that request only', async () => {
    reset();
    const r = await request(`${gw.url}/boom`);
    expect(r.status).toBe(500);
    expect(r.body).not.toContain('kaboom');
    expect(log()).toContain('G:onError:kaboom');
    const next = await request(`${gw.url}/items/1`);
    expect(next.status).toBe(200);
  });

  it('a hook can answer the request itself', async () => {
    const denied = await request(`${gw.url}/guarded`);
    expect(denied.status).toBe(401);
    expect(denied.headers['www-authenticate']).toBe('Key');
    const allowed = await request(`${gw.url}/guarded`, { headers: { 'x-key': 'k1' } });
    expect(allowed.status).toBe(200);
    expect(allowed.body).toBe('secret');
  });

  it("a route's entry overrides the global one of the same name", async () => {
    reset();
    const r = await request(`${gw.url}/override`);
    expect(r.headers['x-r']).toBe('seen');
    expect(r.headers['x-g']).toBeUndefined();
  });

  it('plugins can register handlers', async () => {
    const r = await request(`${gw.url}/hello/ada`);
    expect(r.body).toBe('hello ada');
  });

  it('counts calls, errors and time per plugin and hook', async () => {
    const stats = gw.gateway.exportMetrics().sections.plugins as Record<string, { hooks: Record<string, { calls: number; errors: number; totalMs: number }> }>;
    expect(stats.trace!.hooks.preHandler!.calls).toBeGreaterThan(0);
    expect(stats.trace!.hooks.preHandler!.totalMs).toBeGreaterThan(0);
    expect(stats.boom!.hooks.preHandler!.errors).toBe(1);
  });

  it('enable/disable by reload, old instances destroyed', async () => {
    reset();
    const off = await gw.reload(config([{ name: 'trace', enabled: false, options: { tag: 'G' } }, { name: 'hello-handler' }]));
    expect(off.ok).toBe(true);
    const r = await request(`${gw.url}/items/1`);
    expect(r.headers['x-g']).toBeUndefined();
    expect((await request(`${gw.url}/boom`)).status).toBe(200);
    await until(() => log().includes('destroy:G'), { timeoutMs: 5000, message: () => `the disabled instance destroyed: ${JSON.stringify(log())}` });
    const on = await gw.reload(config([{ name: 'trace', options: { tag: 'G' } }, { name: 'hello-handler' }]));
    expect(on.ok).toBe(true);
    expect((await request(`${gw.url}/items/1`)).headers['x-g']).toBe('seen');
  });

  it('rejects invalid plugin options and failing init, keeping the old config', async () => {
    const bad = await gw.reload(config([{ name: 'trace', options: { tag: 5 } }, { name: 'hello-handler' }]));
    expect(bad.ok).toBe(false);
    expect(bad.errors).toContain('/plugins/0/options/tag: must be string');
    const init = await gw.reload(config([{ name: 'bad-init' }, { name: 'hello-handler' }]));
    expect(init.ok).toBe(false);
    expect(init.errors[0]).toContain('/plugins/0: plugin "bad-init" init failed: cannot start');
    const unknown = await gw.reload(config([{ name: 'nope' }]));
    expect(unknown.errors[0]).toMatch(/^\/plugins\/0\/name: unknown plugin "nope"/);
    expect((await request(`${gw.url}/items/1`)).headers['x-g']).toBe('seen');
  });
});

describe('plugin directory entries that are not files', () => {
  it('a FIFO named like a module is refused by name, never imported (import() of it would wait forever)', async () => {
    const fifoDir = writePlugins({ good: `export default { name: 'good', version: '1.0.0', init() { return {}; } };` }, 'gw-fifo-plugins-');
    execFileSync('mkfifo', [join(fifoDir, 'stuck.mjs')]);
    const r = await loadPluginCatalog([fifoDir]);
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.errors).toEqual([`${join(fifoDir, 'stuck.mjs')}: failed to load: not a regular file`]);
  });
});
