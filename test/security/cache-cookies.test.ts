import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { gatewayFor } from '../plugins/helpers.js';
import { request } from '../support/http.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';

/**
 * A request with cookies is usually a session: its answer is personal even when the upstream forgets
 * `Cache-Control: private`. Like Varnish's built-in policy, such requests bypass the cache unless a route opts in:
 * `cacheCookies` (cookies do not matter here) or `keyCookies` (these cookies select the entry).
 */
describe('requests with cookies', () => {
  let up: RecordingUpstream;
  let gw: RunningGateway;

  beforeAll(async () => {
    up = await startUpstream('up', (req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
      res.end(`${req.url} for ${req.headers.cookie ?? 'nobody'}`);
    });
    gw = await gatewayFor({
      upstreams: { up: { targets: [up.url] } },
      routes: [
        { path: '/default/*', methods: ['GET'], upstream: 'up', plugins: [{ name: 'cache', options: {} }] },
        { path: '/ignored/*', methods: ['GET'], upstream: 'up', plugins: [{ name: 'cache', options: { cacheCookies: true } }] },
        { path: '/keyed/*', methods: ['GET'], upstream: 'up', plugins: [{ name: 'cache', options: { keyCookies: ['session'] } }] },
      ],
    });
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
  });

  const get = (path: string, cookie?: string) => request(`${gw.url}${path}`, { headers: cookie === undefined ? {} : { cookie } });

  it('bypass the cache by default: neither stored nor served', async () => {
    expect((await get('/default/a', 'session=alice')).body).toBe('/default/a for session=alice');
    const anonymous = await get('/default/a');
    expect(anonymous.body).toBe('/default/a for nobody');
    expect(anonymous.headers['x-cache']).toBe('MISS');
    expect((await get('/default/a')).headers['x-cache']).toBe('HIT');
    const bob = await get('/default/a', 'session=bob');
    expect(bob.body).toBe('/default/a for session=bob');
    expect(bob.headers['x-cache']).toBeUndefined();
  });

  it('cacheCookies: true caches them, cookies ignored', async () => {
    await get('/ignored/a', 'session=alice');
    const bob = await get('/ignored/a', 'session=bob');
    expect(bob.headers['x-cache']).toBe('HIT');
    expect(bob.body).toBe('/ignored/a for session=alice');
  });

  it('keyCookies: one entry per value of the named cookies, other cookies ignored', async () => {
    expect((await get('/keyed/a', 'session=alice; tracking=1')).body).toBe('/keyed/a for session=alice; tracking=1');
    const aliceAgain = await get('/keyed/a', 'tracking=2; session=alice');
    expect(aliceAgain.headers['x-cache']).toBe('HIT');
    const bob = await get('/keyed/a', 'session=bob');
    expect(bob.headers['x-cache']).toBe('MISS');
    expect(bob.body).toBe('/keyed/a for session=bob');
    // without the named cookie: the anonymous entry, never alice's or bob's
    const other = await get('/keyed/a', 'tracking=3');
    expect(other.body).toBe('/keyed/a for tracking=3');
    expect((await get('/keyed/a')).body).toBe('/keyed/a for tracking=3');
  });
});

describe('cookie options are validated', () => {
  const start = (options: Record<string, unknown>) =>
    gatewayFor({ plugins: [{ name: 'cache', options }], routes: [{ path: '/', methods: ['GET'], response: { body: 'x' } }] });

  it('a keyCookies entry that is not a cookie name is refused with its path', async () => {
    await expect(start({ keyCookies: ['a=b'] })).rejects.toThrow(/\/plugins\/0\/options\/keyCookies\/0/);
  });

  it('cacheCookies and keyCookies together are refused', async () => {
    await expect(start({ cacheCookies: true, keyCookies: ['session'] })).rejects.toThrow(/cacheCookies .* cannot be combined/);
  });
});
