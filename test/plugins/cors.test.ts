import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { request } from '../support/http.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { gatewayFor } from './helpers.js';

let gw: RunningGateway;
let up: RecordingUpstream;

beforeAll(async () => {
  up = await startUpstream('up', (_req, res) => {
    res.setHeader('vary', 'Accept-Language');
    res.setHeader('access-control-allow-origin', 'https://upstream-says.example');
    res.end('up');
  });
  gw = await gatewayFor({
    upstreams: { up: { targets: [up.url] } },
    plugins: [
      {
        name: 'cors',
        options: {
          origins: ['https://app.example.com', '/https://[a-z]+\\.partner\\.example/'],
          credentials: true,
          maxAgeS: 300,
          exposedHeaders: ['X-Total'],
          allowedHeaders: ['Content-Type', 'Authorization'],
        },
      },
    ],
    routes: [
      { path: '/api', methods: ['GET', 'POST'], handler: 'echo' },
      { path: '/up', methods: ['GET'], upstream: 'up' },
      { path: '/public', methods: ['GET', 'OPTIONS'], handler: 'echo', plugins: [{ name: 'cors', options: { origins: ['*'] } }] },
    ],
  });
});
afterAll(async () => {
  await gw.close();
  await up.close();
});

const preflight = (origin: string, path = '/api', method = 'POST'): Promise<import('../support/http.js').SimpleResponse> =>
  request(`${gw.url}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'content-type' },
  });

describe('cors', () => {
  it('answers an allowed preflight itself with 204 and the policy', async () => {
    const r = await preflight('https://app.example.com');
    expect(r.status).toBe(204);
    expect(r.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(r.headers['access-control-allow-credentials']).toBe('true');
    // only what /api accepts (GET and POST; HEAD with GET), of the options' methods
    expect(r.headers['access-control-allow-methods']).toBe('GET, HEAD, POST');
    expect(r.headers['access-control-allow-headers']).toBe('Content-Type, Authorization');
    expect(r.headers['access-control-max-age']).toBe('300');
    expect(r.headers.vary).toMatch(/Origin/);
  });

  it('matches /regex/ origins', async () => {
    expect((await preflight('https://acme.partner.example')).status).toBe(204);
    expect((await preflight('https://acme.partner.example.evil.com')).status).toBe(403);
  });

  it('refuses a preflight from an unknown origin with 403 and no allow headers', async () => {
    const r = await preflight('https://evil.example');
    expect(r.status).toBe(403);
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('decorates actual requests, always with Vary: Origin', async () => {
    const r = await request(`${gw.url}/api`, { headers: { origin: 'https://app.example.com' } });
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(r.headers['access-control-allow-credentials']).toBe('true');
    expect(r.headers['access-control-expose-headers']).toBe('X-Total');
    expect(r.headers.vary).toBe('Origin');
    const other = await request(`${gw.url}/api`, { headers: { origin: 'https://evil.example' } });
    expect(other.status).toBe(200);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    expect(other.headers.vary).toBe('Origin');
  });

  it('merges Vary with the upstream one, and the gateway policy wins over the upstream CORS headers', async () => {
    const r = await request(`${gw.url}/up`, { headers: { origin: 'https://app.example.com' } });
    expect(r.status).toBe(200);
    expect(r.headers.vary).toBe('Accept-Language, Origin');
    expect(r.headers['access-control-allow-origin']).toBe('https://app.example.com');
  });

  it('decorates error answers too (404 without a route has none: preRoute only answers preflights)', async () => {
    const r = await request(`${gw.url}/api`, { method: 'DELETE', headers: { origin: 'https://app.example.com' } });
    expect(r.status).toBe(405);
  });

  it('a route entry with "*" answers with a wildcard origin', async () => {
    const r = await request(`${gw.url}/public`, { headers: { origin: 'https://anyone.example' } });
    expect(r.headers['access-control-allow-origin']).toBe('*');
    expect(r.headers['access-control-allow-credentials']).toBeUndefined();
    // preflights too: the route's entry answers them, not the global one
    const p = await preflight('https://anyone.example', '/public', 'GET');
    expect(p.status).toBe(204);
    expect(p.headers['access-control-allow-origin']).toBe('*');
  });

  it('a preflight for a path without a route gets the 404 (no route, no policy)', async () => {
    expect((await preflight('https://app.example.com', '/nowhere')).status).toBe(404);
  });
});
