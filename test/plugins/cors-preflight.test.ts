import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { request, type SimpleResponse } from '../support/http.js';
import { gatewayFor } from './helpers.js';

/**
 * A browser sends a preflight (OPTIONS + Origin + Access-Control-Request-Method) before a non-simple request.
 * On a route that accepts only GET it must still be answered by the route's cors entry, advertising only the
 * methods the route accepts.
 */
let gw: RunningGateway;

beforeAll(async () => {
  gw = await gatewayFor({
    plugins: [{ name: 'cors', options: { origins: ['https://global.example'] } }],
    routes: [
      { path: '/only-get', methods: ['GET'], response: { body: 'g' }, plugins: [{ name: 'cors', options: { origins: ['https://app.example'] } }] },
      { path: '/items/:id', methods: ['GET'], response: { body: 'i' }, plugins: [{ name: 'cors', options: { origins: ['https://app.example'] } }] },
      { path: '/items/:id', methods: ['DELETE'], response: { body: 'd' } },
      { path: '/global-get', methods: ['GET', 'POST'], response: { body: 'gg' } },
      { path: '/no-cors', methods: ['GET'], response: { body: 'n' }, plugins: [{ name: 'cors', enabled: false }] },
    ],
  });
});
afterAll(() => gw.close());

const preflight = (path: string, origin: string, method: string): Promise<SimpleResponse> =>
  request(`${gw.url}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'x-custom' },
  });

describe('cors preflight on routes that do not accept OPTIONS', () => {
  it("a route entry answers the preflight on a GET-only route, advertising only the route's methods", async () => {
    const r = await preflight('/only-get', 'https://app.example', 'GET');
    expect(r.status).toBe(204);
    expect(r.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(r.headers['access-control-allow-methods']).toBe('GET, HEAD');
    expect(r.headers['access-control-allow-headers']).toBe('x-custom');
  });

  it('refuses a preflight for a method the route does not accept, like a disallowed origin', async () => {
    const r = await preflight('/only-get', 'https://app.example', 'PUT');
    expect(r.status).toBe(403);
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    expect(r.headers['access-control-allow-methods']).toBeUndefined();
    expect((await preflight('/only-get', 'https://evil.example', 'GET')).status).toBe(403);
  });

  it("the route's own entry replaces the global one for preflights too", async () => {
    expect((await preflight('/only-get', 'https://global.example', 'GET')).status).toBe(403);
  });

  it('advertises the methods of every route on the path (params included)', async () => {
    const r = await preflight('/items/42', 'https://app.example', 'DELETE');
    expect(r.status).toBe(204);
    expect(r.headers['access-control-allow-methods']).toBe('GET, HEAD, DELETE');
  });

  it('a global entry answers preflights with the methods of the route they target', async () => {
    const r = await preflight('/global-get', 'https://global.example', 'POST');
    expect(r.status).toBe(204);
    expect(r.headers['access-control-allow-methods']).toBe('GET, HEAD, POST');
    expect((await preflight('/global-get', 'https://global.example', 'DELETE')).status).toBe(403);
  });

  it('an OPTIONS that is not a preflight still gets the 405 with the Allow of the path', async () => {
    const r = await request(`${gw.url}/only-get`, { method: 'OPTIONS', headers: { origin: 'https://app.example' } });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, HEAD');
    // and the added OPTIONS entry does not show up in another method's 405
    const del = await request(`${gw.url}/only-get`, { method: 'DELETE' });
    expect(del.status).toBe(405);
    expect(del.headers.allow).toBe('GET, HEAD');
  });

  it('a route whose cors entry is disabled keeps the 405', async () => {
    const r = await preflight('/no-cors', 'https://global.example', 'GET');
    expect(r.status).toBe(405);
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
  });
});
