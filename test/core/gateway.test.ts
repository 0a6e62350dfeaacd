import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/gateway.js';
import { rawPath, request } from '../support/http.js';

let gw: RunningGateway;

beforeAll(async () => {
  gw = await startGateway({
    routes: [
      { path: '/ping', methods: ['GET'], response: { status: 200, headers: { 'content-type': 'text/plain' }, body: 'pong' } },
      { path: '/json', methods: ['GET'], response: { status: 201, body: { a: 1 } } },
      { path: '/users/:id', methods: ['GET', 'PUT'], handler: 'echo' },
      { path: '/users/list', methods: ['GET'], response: { body: 'list' } },
      { path: '/flights/:from-:to', methods: ['GET'], handler: 'echo' },
      { path: '/orders/:id(\\d+)', methods: ['GET'], handler: 'echo' },
      { path: '/orders/:slug', methods: ['GET'], response: { body: 'slug' } },
      { path: '/api/*', methods: ['*'], handler: 'echo' },
      { path: '/only-post', methods: ['POST'], response: { body: 'posted' } },
      { path: '/head-too', methods: ['GET'], response: { body: 'body-for-get' } },
    ],
  });
});

afterAll(() => gw.close());

describe('direct responses and routing through the real server', () => {
  it('serves a static response with its headers', async () => {
    const r = await request(`${gw.url}/ping`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('pong');
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.headers['content-length']).toBe('4');
  });

  it('sends an object body as JSON with the right content-type', async () => {
    const r = await request(`${gw.url}/json`);
    expect(r.status).toBe(201);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(r.body)).toEqual({ a: 1 });
  });

  it('static beats param', async () => {
    expect((await request(`${gw.url}/users/list`)).body).toBe('list');
    expect(JSON.parse((await request(`${gw.url}/users/42`)).body).params).toEqual({ id: '42' });
  });

  it('extracts several params from one segment', async () => {
    expect(JSON.parse((await request(`${gw.url}/flights/LHR-JFK`)).body).params).toEqual({ from: 'LHR', to: 'JFK' });
  });

  it('honours regex constraints and falls back', async () => {
    expect(JSON.parse((await request(`${gw.url}/orders/123`)).body).params).toEqual({ id: '123' });
    expect((await request(`${gw.url}/orders/abc`)).body).toBe('slug');
  });

  it('captures the wildcard and ignores the query string', async () => {
    const r = JSON.parse((await request(`${gw.url}/api/v1/things?x=1&y=2`)).body);
    expect(r.params).toEqual({ '*': 'v1/things' });
    expect(r.query).toEqual({ x: '1', y: '2' });
    expect(r.path).toBe('/api/v1/things');
  });

  it('decodes params', async () => {
    expect(JSON.parse((await request(`${gw.url}/users/a%20b%2Fc`)).body).params).toEqual({ id: 'a b/c' });
  });

  it('answers 400 to a malformed percent-encoding', async () => {
    const r = await rawPath(gw.url, '/users/%E0%A4%A');
    expect(r.status).toBe(400);
  });

  it('answers 404 when no path matches', async () => {
    const r = await request(`${gw.url}/nothing/here`);
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body)).toEqual({ error: 'Not Found', statusCode: 404 });
  });

  it('answers 405 with Allow when only the method differs', async () => {
    const r = await request(`${gw.url}/only-post`);
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('POST');
    const u = await request(`${gw.url}/users/1`, { method: 'DELETE' });
    expect(u.status).toBe(405);
    expect(u.headers.allow!.split(', ').sort()).toEqual(['GET', 'HEAD', 'PUT']);
  });

  it('HEAD falls back to GET, without a body', async () => {
    const r = await request(`${gw.url}/head-too`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('');
    expect(r.headers['content-length']).toBe(String('body-for-get'.length));
  });

  it("'*' methods accept any method", async () => {
    const r = await request(`${gw.url}/api/x`, { method: 'PATCH', body: 'hi' });
    expect(JSON.parse(r.body).method).toBe('PATCH');
  });

  it('serves many keep-alive requests with pooled contexts and counts them', async () => {
    const before = gw.gateway.exportMetrics();
    for (let i = 0; i < 200; i++) await request(`${gw.url}/users/${i}`);
    const after = gw.gateway.exportMetrics();
    expect(after.requests - before.requests).toBe(200);
    const pool = after.sections.pool as { hits: number; size: number };
    expect(pool.hits).toBeGreaterThan(100);
  });
});
