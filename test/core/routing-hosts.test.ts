import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { request } from '../support/http.js';
import { exchange } from '../support/raw.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';

/**
 * Route selection by host and `match` conditions, and the gateway's redirects, on real sockets through both server
 * engines. One precedence rule per test; the README's table lists the same rows.
 */
const answer = (body: string): { response: { body: string } } => ({ response: { body } });

function routes(upstream: string): unknown[] {
  return [
    // precedence: exact host > wildcard host > no hosts
    { path: '/tier', hosts: ['api.example.com'], ...answer('exact') },
    { path: '/tier', hosts: ['*.example.com'], ...answer('wildcard') },
    { path: '/tier', ...answer('any') },
    // host tier beats path rank: a host's wildcard path wins over a static path without hosts
    { path: '/deep/*', hosts: ['api.example.com'], ...answer('host-wildcard-path') },
    { path: '/deep/static', ...answer('any-static') },
    // within a host tier, static > param > wildcard as today
    { path: '/p/me', hosts: ['shop.test'], ...answer('static') },
    { path: '/p/:id', hosts: ['shop.test'], ...answer('param') },
    { path: '/p/*', hosts: ['shop.test'], ...answer('wild') },
    // more match conditions first, then config order
    { path: '/m', match: { headers: [{ name: 'x-beta', value: '1' }] }, ...answer('one') },
    {
      path: '/m',
      match: {
        headers: [
          { name: 'X-Beta', value: '1' },
          { name: 'x-user', regex: '[a-z]+' },
        ],
      },
      ...answer('two'),
    },
    { path: '/m', ...answer('none') },
    { path: '/order', match: { query: [{ name: 'v', present: true }] }, ...answer('first') },
    { path: '/order', match: { query: [{ name: 'v', regex: '\\d+' }] }, ...answer('second') },
    // conditions that fail fall through to the next-best path
    { path: '/f/exact', match: { headers: [{ name: 'x-canary', value: 'yes' }] }, ...answer('canary') },
    { path: '/f/:any', ...answer('fallback') },
    { path: '/absent', match: { headers: [{ name: 'authorization', present: false }] }, ...answer('anonymous') },
    { path: '/absent', ...answer('signed') },
    { path: '/q', match: { query: [{ name: 'lang', value: 'fr fr' }] }, ...answer('french') },
    { path: '/ip', hosts: ['[::1]', '127.0.0.1'], ...answer('literal') },
    // redirects
    { path: '/old/*', redirect: { status: 301, prefix: '/new' } },
    { path: '/moved', redirect: { scheme: 'https', host: 'secure.example.com', path: '/here' } },
    { path: '/port', redirect: { status: 308, port: 8443 } },
    // regex rewrite beside the :param template
    { path: '/svc/*', upstream, rewrite: { regex: '/svc/(?<name>[^/]+)/(.*)', replacement: '/$<name>/v2/$2' } },
    { path: '/tpl/:id', upstream, rewrite: '/items/:id' },
  ];
}

for (const engine of ['node-http', 'own'] as const) {
  describe(`route selection on ${engine}`, () => {
    let gw: RunningGateway;
    let up: RecordingUpstream;
    beforeAll(async () => {
      up = await startUpstream('svc', (req, res) => res.end(req.url));
      gw = await startGateway({ variants: { server: engine }, upstreams: { svc: { targets: [up.url] } }, routes: routes('svc') });
    });
    afterAll(async () => {
      await gw.close();
      up.server.close();
    });

    const get = (path: string, host: string, headers: Record<string, string> = {}): Promise<string> =>
      request(`${gw.url}${path}`, { headers: { host, ...headers } }).then((r) => r.body);

    it('prefers an exact host to a wildcard host to none; case, port and a trailing dot aside', async () => {
      expect(await get('/tier', 'api.example.com')).toBe('exact');
      expect(await get('/tier', 'API.Example.COM.:8080')).toBe('exact');
      expect(await get('/tier', 'www.example.com')).toBe('wildcard');
      expect(await get('/tier', 'example.com')).toBe('any');
      // a wildcard label is exactly one label
      expect(await get('/tier', 'a.b.example.com')).toBe('any');
      expect(await get('/tier', 'elsewhere.test')).toBe('any');
    });

    it('ranks the host before the path', async () => {
      expect(await get('/deep/static', 'api.example.com')).toBe('host-wildcard-path');
      expect(await get('/deep/static', 'other.test')).toBe('any-static');
    });

    it('keeps static > param > wildcard within a host', async () => {
      expect(await get('/p/me', 'shop.test')).toBe('static');
      expect(await get('/p/42', 'shop.test')).toBe('param');
      expect(await get('/p/a/b', 'shop.test')).toBe('wild');
      expect((await request(`${gw.url}/p/me`, { headers: { host: 'other.test' } })).status).toBe(404);
    });

    it('prefers the route with more conditions, then config order', async () => {
      expect(await get('/m', 'x', { 'x-beta': '1', 'x-user': 'ann' })).toBe('two');
      expect(await get('/m', 'x', { 'x-beta': '1', 'x-user': 'Ann' })).toBe('one');
      expect(await get('/m', 'x')).toBe('none');
      expect(await get('/order?v=3', 'x')).toBe('first');
    });

    it('falls back to the next-best path when no route on the best one holds', async () => {
      expect(await get('/f/exact', 'x', { 'x-canary': 'yes' })).toBe('canary');
      expect(await get('/f/exact', 'x')).toBe('fallback');
    });

    it('matches absence, decoded query values and IP literals', async () => {
      expect(await get('/absent', 'x')).toBe('anonymous');
      expect(await get('/absent', 'x', { authorization: 'Bearer t' })).toBe('signed');
      expect(await get('/q?lang=fr+fr', 'x')).toBe('french');
      expect(await get('/q?lang=fr%20fr', 'x')).toBe('french');
      expect((await request(`${gw.url}/q?lang=de`, { headers: { host: 'x' } })).status).toBe(404);
      expect(await get('/ip', '[0:0::1]:99')).toBe('literal');
      expect(await get('/ip', '127.0.0.1')).toBe('literal');
    });

    it('answers redirects itself, keeping the query', async () => {
      const a = await request(`${gw.url}/old/a/b?x=1`, { headers: { host: 'site.test:8080' } });
      expect(a.status).toBe(301);
      expect(a.headers.location).toBe('http://site.test:8080/new/a/b?x=1');
      const b = await request(`${gw.url}/moved?y`, { headers: { host: 'site.test:8080' } });
      expect(b.status).toBe(302);
      expect(b.headers.location).toBe('https://secure.example.com/here?y');
      const c = await request(`${gw.url}/port`, { headers: { host: 'site.test' } });
      expect(c.status).toBe(308);
      expect(c.headers.location).toBe('http://site.test:8443/port');
      expect(up.received.length).toBe(0);
    });

    it('rewrites with regex capture groups and with :params', async () => {
      expect(await get('/svc/users/list?a=1', 'x')).toBe('/users/v2/list?a=1');
      expect(await get('/tpl/7', 'x')).toBe('/items/7');
    });

    it('refuses two Host headers, odd Host bytes and an absolute-form target naming another host (400)', async () => {
      for (const head of [
        'GET /tier HTTP/1.1\r\nHost: api.example.com\r\nHost: api.example.com\r\n\r\n',
        'GET /tier HTTP/1.1\r\nHost: api.example.com\r\nhost: www.example.com\r\n\r\n',
        'GET /tier HTTP/1.1\r\nHost: api.example.com/x\r\n\r\n',
        'GET /tier HTTP/1.1\r\nHost: api example.com\r\n\r\n',
        'GET /tier HTTP/1.1\r\nHost: api.example.com@evil\r\n\r\n',
        'GET /tier HTTP/1.1\r\nHost: [::1\r\n\r\n',
        'GET http://www.example.com/tier HTTP/1.1\r\nHost: api.example.com\r\n\r\n',
      ]) {
        const ex = await exchange(gw.port, [head]);
        expect(ex.responses[0]?.status, head).toBe(400);
      }
      // absolute-form agreeing with Host routes by that host
      const ok = await exchange(gw.port, ['GET http://API.example.com/tier HTTP/1.1\r\nHost: api.example.com\r\n\r\n']);
      expect(ok.responses[0]?.body).toBe('exact');
    });
  });
}

describe('10,000 hosts', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    const many = Array.from({ length: 10_000 }, (_, i) => ({ path: '/who', hosts: [`h${i}.example.net`], response: { body: `h${i}` } }));
    gw = await startGateway({
      routes: [...many, { path: '/who', hosts: ['*.example.net'], response: { body: 'wild' } }, { path: '/who', response: { body: 'any' } }],
    });
  });
  afterAll(() => gw.close());

  it('selects each of them', async () => {
    for (const i of [0, 1, 4_999, 9_999]) expect((await request(`${gw.url}/who`, { headers: { host: `h${i}.example.net` } })).body).toBe(`h${i}`);
    expect((await request(`${gw.url}/who`, { headers: { host: 'h10000.example.net' } })).body).toBe('wild');
    expect((await request(`${gw.url}/who`, { headers: { host: 'localhost' } })).body).toBe('any');
  });
});

describe('hot reload and /config', () => {
  it('applies new hosts and match conditions, refuses a regex that could backtrack and keeps serving', async () => {
    // the refused reload logs by design (asserted on its result); the reloads set the level, so each config says it
    const logging = { level: 'silent' };
    const gw = await startGateway({ logging, routes: [{ path: '/r', response: { body: 'plain' } }] });
    try {
      const on = (host: string, headers: Record<string, string> = {}): Promise<string> =>
        request(`${gw.url}/r`, { headers: { host, ...headers } }).then((r) => r.body);
      expect(await on('a.test')).toBe('plain');
      const next = {
        logging,
        routes: [
          { path: '/r', hosts: ['a.test'], match: { headers: [{ name: 'x-v', regex: 'v[0-9]+' }] }, response: { body: 'a-v' } },
          { path: '/r', hosts: ['a.test'], response: { body: 'a' } },
          { path: '/r', response: { body: 'plain' } },
        ],
      };
      expect((await gw.gateway.reload(next)).ok).toBe(true);
      expect(await on('a.test', { 'x-v': 'v2' })).toBe('a-v');
      expect(await on('A.test')).toBe('a');
      expect(await on('b.test')).toBe('plain');

      const bad = structuredClone(next);
      bad.routes[0]!.match!.headers[0]!.regex = '(v+)+x';
      const refused = await gw.gateway.reload(bad);
      expect(refused.ok).toBe(false);
      expect(refused.errors[0]).toMatch(/^\/routes\/0\/match\/headers\/0\/regex: refused: nested repetition/);
      expect(await on('a.test', { 'x-v': 'v2' })).toBe('a-v');

      const shown = JSON.parse((await request(`${gw.adminUrl}/config`)).body) as { routes: Array<Record<string, unknown>> };
      expect(shown.routes[0]).toMatchObject({ hosts: ['a.test'], match: { headers: [{ name: 'x-v', regex: 'v[0-9]+' }] } });
    } finally {
      await gw.close();
    }
  });

  it('does not start on a regex that could backtrack', async () => {
    await expect(startGateway({ routes: [{ path: '/r', match: { query: [{ name: 'q', regex: '([a-z]+)*$' }] }, response: { body: '' } }] })).rejects.toThrow(
      /\/routes\/0\/match\/query\/0\/regex: refused/,
    );
  });
});

describe('HTTP/2', () => {
  it('selects by :authority', async () => {
    const gw = await startGateway({
      server: { http2: 'h2c' },
      routes: [
        { path: '/h', hosts: ['api.example.com'], response: { body: 'api' } },
        { path: '/h', response: { body: 'any' } },
      ],
    });
    const session = http2.connect(gw.url);
    session.on('error', () => undefined);
    const ask = (authority: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = session.request({ ':path': '/h', ':authority': authority });
        let body = '';
        s.on('data', (c: Buffer) => (body += c.toString()));
        s.on('end', () => resolve(body));
        s.on('error', reject);
        s.end();
      });
    try {
      expect(await ask('API.example.com:443')).toBe('api');
      expect(await ask('other.example.com')).toBe('any');
    } finally {
      session.close();
      await gw.close();
    }
  });
});

describe('CORS preflight per host', () => {
  it("answers a preflight with the host's own route and methods", async () => {
    const cors = (origin: string): unknown[] => [{ name: 'cors', options: { origins: [origin] } }];
    const gw = await startGateway({
      routes: [
        { path: '/c', methods: ['GET'], hosts: ['a.test'], response: { body: 'a' }, plugins: cors('https://a.example') },
        { path: '/c', methods: ['PUT'], hosts: ['b.test'], response: { body: 'b' }, plugins: cors('https://b.example') },
      ],
    });
    const preflight = (host: string, origin: string, method: string) =>
      request(`${gw.url}/c`, { method: 'OPTIONS', headers: { host, origin, 'access-control-request-method': method } });
    try {
      const a = await preflight('a.test', 'https://a.example', 'GET');
      expect(a.status).toBe(204);
      expect(a.headers['access-control-allow-methods']).toBe('GET, HEAD');
      const b = await preflight('b.test', 'https://b.example', 'PUT');
      expect(b.status).toBe(204);
      expect(b.headers['access-control-allow-methods']).toBe('PUT');
      expect((await preflight('b.test', 'https://a.example', 'PUT')).status).toBe(403);
      expect((await preflight('c.test', 'https://a.example', 'GET')).status).toBe(404);
      // the 405 of another method names only the host's own
      const wrong = await request(`${gw.url}/c`, { method: 'POST', headers: { host: 'a.test' } });
      expect(wrong.status).toBe(405);
      expect(wrong.headers.allow).toBe('GET, HEAD');
    } finally {
      await gw.close();
    }
  });
});
