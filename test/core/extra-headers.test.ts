import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';

/**
 * ctx.addResponseHeader: headers a hook adds in preRoute reach whatever answer goes out (a static route, a 404,
 * an early answer from a later hook, an error), and the staged response's own header of the same name wins.
 */
const dir = writePlugins(
  {
    tagger: `export default { name: 'tagger', version: '1.0.0',
  init() { return {
    preRoute(ctx) {
      ctx.addResponseHeader('x-tag', 'from-hook');
      ctx.addResponseHeader('x-clash', 'from-hook');
      if (ctx.url.endsWith('?once')) ctx.addResponseHeader('x-once', 'yes');
    },
    preHandler(ctx) {
      if (ctx.url === '/early') ctx.send(429, { 'content-type': 'text/plain' }, 'slow down');
      if (ctx.url === '/boom') throw new Error('boom');
    },
  }; } };`,
  },
  'gw-extra-headers-',
);

let gw: RunningGateway;
beforeAll(async () => {
  gw = await startGateway({
    logging: { level: 'silent', accessLog: false },
    pluginDirs: [dir],
    plugins: [{ name: 'tagger' }],
    routes: [
      { path: '/static', methods: ['GET'], response: { body: 'hello', headers: { 'x-clash': 'from-route' } } },
      { path: '/early', methods: ['GET'], response: { body: 'never' } },
      { path: '/boom', methods: ['GET'], response: { body: 'never' } },
    ],
  });
});
afterAll(() => gw.close());

describe('hook-added response headers', () => {
  it('reach a static answer; the route header of the same name wins', async () => {
    const r = await request(`${gw.url}/static`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('hello');
    expect(r.headers['x-tag']).toBe('from-hook');
    expect(r.headers['x-clash']).toBe('from-route');
  });

  it('reach a 404, an early 429 and a 500', async () => {
    for (const [path, status] of [
      ['/nowhere', 404],
      ['/early', 429],
      ['/boom', 500],
    ] as const) {
      const r = await request(`${gw.url}${path}`);
      expect(r.status, path).toBe(status);
      expect(r.headers['x-tag'], path).toBe('from-hook');
    }
  });

  it('do not leak into the next request on the same pooled context', async () => {
    const a = await request(`${gw.url}/static?once`);
    const b = await request(`${gw.url}/static`);
    expect(a.headers['x-once']).toBe('yes');
    expect(b.headers['x-once']).toBeUndefined();
    expect(b.headers['x-tag']).toBe('from-hook');
  });
});
