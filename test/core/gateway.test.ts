import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { request } from '../support/http.js';

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
    const r = await request(gw.url, { path: '/users/%E0%A4%A', agent: false });
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

describe('hot reload in a single process', () => {
  const routes = (body: string): unknown[] => [{ path: '/r', methods: ['GET'], response: { body } }];
  const capture = (): { logger: Logger; lines: Array<Record<string, unknown>> } => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const logger: Logger = pino({ level: 'info' }, sink);
    return { logger, lines };
  };

  it('restart-only fields: a warning names them, their running values stay, the rest applies', async () => {
    const { logger, lines } = capture();
    const g = await startGateway({ routes: routes('a') }, { logger });
    try {
      const running = g.gateway.currentConfig;
      const r = await g.reload({
        routes: routes('b'),
        server: { contextPoolSize: running.server.contextPoolSize + 1, maxUrlLength: running.server.maxUrlLength + 1 },
        variants: { pool: 'none', metrics: 'ring', server: 'node-http' },
      });
      expect(r).toEqual({ ok: true, version: 2, errors: [] });
      expect((await request(`${g.url}/r`)).body).toBe('b');
      const warn = lines.find((l) => Array.isArray(l.restartRequired));
      expect(warn?.restartRequired).toEqual(['server.contextPoolSize', 'server.maxUrlLength', 'variants.pool', 'variants.metrics', 'variants.server']);
      expect(String(warn?.msg)).toContain('server.contextPoolSize, server.maxUrlLength, variants.pool, variants.metrics, variants.server');
      expect(g.gateway.currentConfig.variants.server).toBe('own');
      expect(lines.some((l) => l.msg === 'config applied')).toBe(false);
      expect(g.gateway.currentConfig.variants.pool).toBe(running.variants.pool);
      expect(g.gateway.currentConfig.server.contextPoolSize).toBe(running.server.contextPoolSize);

      // nothing restart-only changed: the plain message
      lines.length = 0;
      await g.reload({ routes: routes('c') });
      expect(lines.filter((l) => l.msg === 'config applied').length).toBe(1);
      expect(lines.some((l) => Array.isArray(l.restartRequired))).toBe(false);
    } finally {
      await g.close();
    }
  });

  it('overlapping reloads are applied in the order they arrive, each with its own version', async () => {
    const g = await startGateway({ routes: routes('a') }, { logger: capture().logger });
    try {
      const results = await Promise.all([g.reload({ routes: routes('b') }), g.reload({ routes: routes('c') })]);
      expect(results.map((r) => r.version)).toEqual([2, 3]);
      expect(g.gateway.version).toBe(3);
      expect((await request(`${g.url}/r`)).body).toBe('c');
    } finally {
      await g.close();
    }
  });
});
