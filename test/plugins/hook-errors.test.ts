import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { captureLogger, gatewayFor } from './helpers.js';

/**
 * A careless plugin's throwing hook must be findable from the log: the 'request failed' line names the plugin
 * and the hook (and the route). Plugins are real modules loaded from a plugin directory.
 */
const dir = writePlugins(
  {
    careless: `
export default {
  name: 'careless', version: '0.0.1',
  init() {
    return {
      preHandler(ctx) {
        if (ctx.url === '/sync') throw new Error('kaboom');
        if (ctx.url === '/not-an-error') throw 'just a string';
        if (ctx.url === '/teapot') throw Object.assign(new Error('short and stout'), { statusCode: 418 });
      },
      async postHandler(ctx) {
        if (ctx.url === '/async') throw new TypeError('late kaboom');
      },
      onError(ctx, err) {
        // onError hooks see the hook's own error, not the wrapper that names it
        ctx.addResponseHeader('x-seen-error', err instanceof Error ? err.constructor.name + ':' + err.message : String(err));
      },
    };
  },
};`,
    // Reads ctx.requestId after request-id has run: the field the access log reads.
    'reqid-reader': `
export default {
  name: 'reqid-reader', version: '0.0.1',
  init() {
    return { postHandler(ctx) { ctx.addResponseHeader('x-ctx-request-id', ctx.requestId === '' ? '(none)' : ctx.requestId); } };
  },
};`,
  },
  'gw-hook-errors-',
);

const log = captureLogger();
let gw: RunningGateway;

beforeAll(async () => {
  gw = await gatewayFor(
    {
      pluginDirs: [dir],
      routes: [
        { name: 'sync-route', path: '/sync', methods: ['GET'], response: { body: 's' }, plugins: [{ name: 'careless' }] },
        { path: '/async', methods: ['GET'], response: { body: 'a' }, plugins: [{ name: 'careless' }] },
        { path: '/not-an-error', methods: ['GET'], response: { body: 'n' }, plugins: [{ name: 'careless' }] },
        { path: '/teapot', methods: ['GET'], response: { body: 't' }, plugins: [{ name: 'careless' }] },
        { path: '/with-id', methods: ['GET'], response: { body: 'w' }, plugins: [{ name: 'request-id', options: { log: false } }, { name: 'reqid-reader' }] },
        { path: '/without-id', methods: ['GET'], response: { body: 'w' }, plugins: [{ name: 'reqid-reader' }] },
      ],
    },
    log.logger,
  );
});
afterAll(async () => {
  await gw.close();
  rmSync(dir, { recursive: true, force: true });
});

const failures = (url: string): Array<Record<string, unknown>> => log.lines().filter((l) => l.msg === 'request failed' && l.url === url);

describe('a throwing hook', () => {
  it('is logged with the plugin, the hook and the route; the client gets a plain 500', async () => {
    const r = await request(`${gw.url}/sync`);
    expect(r.status).toBe(500);
    expect(JSON.parse(r.body)).toEqual({ error: 'Internal Server Error', statusCode: 500 });
    expect(r.headers['x-seen-error']).toBe('Error:kaboom');
    const [line] = failures('/sync');
    expect(line).toBeDefined();
    const err = line!.err as Record<string, unknown>;
    expect(err).toMatchObject({ type: 'PluginHookError', plugin: 'careless', hook: 'preHandler', route: 'sync-route', scope: 'sync-route' });
    // the original message and stack travel with it
    expect(err.message).toBe('plugin "careless" preHandler hook failed: kaboom');
    expect(String(err.stack)).toMatch(/caused by: Error: kaboom/);
  });

  it('an async hook that rejects is named too', async () => {
    const r = await request(`${gw.url}/async`);
    expect(r.status).toBe(500);
    expect(r.headers['x-seen-error']).toBe('TypeError:late kaboom');
    const [line] = failures('/async');
    expect(line!.err).toMatchObject({ plugin: 'careless', hook: 'postHandler', route: 'GET /async' });
  });

  it('something thrown that is not an Error still shows in the line', async () => {
    expect((await request(`${gw.url}/not-an-error`)).status).toBe(500);
    const [line] = failures('/not-an-error');
    expect(line!.err).toMatchObject({ plugin: 'careless', hook: 'preHandler', message: 'plugin "careless" preHandler hook failed: threw \'just a string\'' });
  });

  it('an error carrying its own status is the answer the plugin chose: unchanged, not logged as a failure', async () => {
    const r = await request(`${gw.url}/teapot`);
    expect(r.status).toBe(418);
    expect(failures('/teapot')).toEqual([]);
  });
});

describe('ctx.requestId', () => {
  it('holds the id request-id assigned, and is empty on the next request without it (pooled context reset)', async () => {
    const a = await request(`${gw.url}/with-id`);
    expect(a.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.headers['x-ctx-request-id']).toBe(a.headers['x-request-id']);
    const given = await request(`${gw.url}/with-id`, { headers: { 'x-request-id': 'client-chosen-1' } });
    expect(given.headers['x-ctx-request-id']).toBe('client-chosen-1');
    const b = await request(`${gw.url}/without-id`);
    expect(b.headers['x-ctx-request-id']).toBe('(none)');
  });
});
