import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_VARIANTS, rawExchange, request, startProxy, startUpstream, type GatewayUnderTest, type TestUpstream } from './helpers.js';

describe.each(CLIENT_VARIANTS)('proxy semantics (%s client)', (variant) => {
  let up: TestUpstream;
  let other: TestUpstream;
  let gw: GatewayUnderTest;
  let trustedGw: GatewayUnderTest;

  beforeAll(async () => {
    up = await startUpstream('up', (req, res) => {
      res.setHeader('content-type', 'text/plain');
      if (req.url === '/hop') {
        res.writeHead(200, {
          connection: 'close, x-upstream-hop',
          'x-upstream-hop': 'secret',
          'keep-alive': 'timeout=5',
          'proxy-connection': 'keep-alive',
          trailer: 'x-t',
          'x-end-to-end': 'yes',
          via: '1.0 origin-cache',
          'x-remove-me': '1',
        });
        res.end('hop');
        return;
      }
      res.end(JSON.stringify({ url: req.url, host: req.headers.host }));
    });
    other = await startUpstream('other');
    const routes = [
      {
        path: '/api/*',
        upstream: 'svc',
        stripPrefix: true,
        responseHeaders: { add: { 'x-gw': 'on' }, remove: ['x-remove-me'] },
        requestHeaders: { add: { 'x-added': 'a' }, remove: ['x-drop-me'] },
      },
      { path: '/keep/*', upstream: 'svc' },
      { path: '/users/:id', upstream: 'svc', rewrite: '/v2/people/:id' },
      { path: '/files/*', upstream: 'svc', rewrite: '/store/*' },
      { path: '/host/*', upstream: 'svc', preserveHost: true, stripPrefix: '/host' },
      { path: '/*', upstream: 'svc' },
    ];
    gw = await startProxy(variant, { svc: { targets: [up.url] } }, routes);
    trustedGw = await startProxy(variant, { svc: { targets: [up.url] } }, routes, { trustedProxies: ['10.0.0.0/8', '127.0.0.1'] });
  });
  afterAll(async () => {
    await gw?.close();
    await trustedGw?.close();
    await up?.close();
    await other?.close();
  });

  const last = () => up.received[up.received.length - 1]!;

  it('strips hop-by-hop request headers (incl. those named by Connection) and applies edits', async () => {
    const r = await request(gw.url, {
      path: '/api/x',
      headers: {
        connection: 'keep-alive, x-client-hop',
        'x-client-hop': 'h',
        'keep-alive': 'timeout=9',
        'proxy-connection': 'keep-alive',
        te: 'trailers',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        upgrade: 'h2c',
        'x-end': 'e',
        'x-drop-me': 'd',
      },
    });
    expect(r.status).toBe(200);
    const h = last().headers;
    for (const name of ['x-client-hop', 'keep-alive', 'proxy-connection', 'te', 'proxy-authorization', 'upgrade', 'x-drop-me', 'trailer']) {
      expect(h[name], name).toBeUndefined();
    }
    // the upstream connection is the gateway's own: whatever Connection it carries is not the client's
    expect(h.connection ?? '').not.toContain('x-client-hop');
    expect(h['x-end']).toBe('e');
    expect(h['x-added']).toBe('a');
    expect(last().url).toBe('/x');
  });

  it('strips hop-by-hop response headers and adds Via', async () => {
    const r = await request(gw.url, { path: '/api/hop' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('hop');
    expect(r.headers['x-upstream-hop']).toBeUndefined();
    expect(r.headers['proxy-connection']).toBeUndefined();
    expect(r.headers.trailer).toBeUndefined();
    expect(r.headers['keep-alive'] ?? '').not.toContain('timeout=5');
    expect(r.headers.connection ?? '').not.toContain('x-upstream-hop');
    expect(r.headers['x-end-to-end']).toBe('yes');
    expect(r.headers['x-remove-me']).toBeUndefined();
    expect(r.headers['x-gw']).toBe('on');
    expect(r.headers.via).toBe('1.0 origin-cache, 1.1 ts-gateway');
  });

  it('sets Via, X-Forwarded-* and Forwarded; spoofed forwarding headers from an untrusted peer are replaced', async () => {
    await request(gw.url, {
      path: '/api/fwd',
      headers: {
        host: 'public.example',
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'evil.example',
        forwarded: 'for=6.6.6.6',
        via: '1.1 client-proxy',
      },
    });
    const h = last().headers;
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-forwarded-host']).toBe('public.example');
    expect(h.forwarded).toBe('for=127.0.0.1;host=public.example;proto=http');
    expect(h.via).toBe('1.1 client-proxy, 1.1 ts-gateway');
    expect(h.host).toBe(up.url.slice('http://'.length));
  });

  it('a trusted peer’s forwarding headers are kept and appended to', async () => {
    await request(trustedGw.url, {
      path: '/api/fwd',
      headers: {
        host: 'gw.example:8443',
        'x-forwarded-for': '203.0.113.7, 10.1.2.3',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'shop.example',
        forwarded: 'for=203.0.113.7;proto=https',
      },
    });
    const h = last().headers;
    expect(h['x-forwarded-for']).toBe('203.0.113.7, 10.1.2.3, 127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('https');
    expect(h['x-forwarded-host']).toBe('shop.example');
    expect(h.forwarded).toBe('for=203.0.113.7;proto=https, for=127.0.0.1;host="gw.example:8443";proto=http');
  });

  it('preserveHost forwards the client Host; default uses the target host', async () => {
    await request(gw.url, { path: '/host/a', headers: { host: 'client.example' } });
    expect(last().headers.host).toBe('client.example');
    expect(last().url).toBe('/a');
    await request(gw.url, { path: '/keep/a', headers: { host: 'client.example' } });
    expect(last().headers.host).toBe(`127.0.0.1:${up.port}`);
    expect(last().url).toBe('/keep/a');
  });

  it('rewrite templates use route params and keep the query string', async () => {
    await request(gw.url, { path: '/users/42?full=1&x=%20' });
    expect(last().url).toBe('/v2/people/42?full=1&x=%20');
    await request(gw.url, { path: '/files/a/b%20c.txt?v=2' });
    expect(last().url).toBe('/store/a/b%20c.txt?v=2');
    await request(gw.url, { path: '/api/deep/path/?q=1' });
    expect(last().url).toBe('/deep/path/?q=1');
  });

  it('absolute-form and //host request targets never change the destination', async () => {
    const before = other.received.length;
    const abs = await rawExchange(
      gw.port,
      `GET http://127.0.0.1:${other.port}/api/abs?z=1 HTTP/1.1\r\nHost: 127.0.0.1:${other.port}\r\nConnection: close\r\n\r\n`,
    );
    expect(abs).toMatch(/^HTTP\/1\.1 (200|400|404)/);
    if (abs.startsWith('HTTP/1.1 200')) expect(last().url).toBe('/abs?z=1');
    const dbl = await rawExchange(gw.port, `GET //127.0.0.1:${other.port}/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    expect(dbl).toMatch(/^HTTP\/1\.1 (200|400|404)/);
    if (dbl.startsWith('HTTP/1.1 200')) {
      // the upstream gets an origin-form path that cannot be read as an authority
      expect(last().url.startsWith('//')).toBe(false);
      expect(last().url).toBe(`/127.0.0.1:${other.port}/x`);
    }
    expect(other.received.length).toBe(before);
  });

  it('traversal cannot escape the route prefix (.., %2e%2e, %2f); harmless dots are resolved', async () => {
    const count = up.received.length;
    for (const p of [
      '/keep/../admin',
      '/keep/%2e%2e/admin',
      '/keep/.%2E/admin',
      '/keep/a/..%2f..%2fadmin',
      '/keep/..%5cadmin',
      '/files/..%2f..%2fetc',
      '/users/..',
      '/api/../../x',
    ]) {
      const r = await request(gw.url, { path: p });
      expect([400, 404], p).toContain(r.status);
    }
    expect(up.received.length).toBe(count);
    await request(gw.url, { path: '/keep/a/./b/../c' });
    expect(last().url).toBe('/keep/a/c');
    await request(gw.url, { path: '/keep/a%2fb' });
    expect(last().url).toBe('/keep/a%2fb');
  });
});
