import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { validHost } from '../../core/data/host.js';
import { variantNames } from '../../core/variants.js';
import { gatewayFor } from '../plugins/helpers.js';
import { exchange } from '../support/raw.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';

/**
 * Cache poisoning through Host: the cache used to key on Host and URL joined with nothing between, and both
 * engines accepted `/` in a Host, so `GET /ping` with `Host: gw/api` (answered by the static /ping route) was
 * stored as `/api/ping` for everyone. A Host that is not `uri-host [":" port]` is now a 400 on every engine and on
 * HTTP/2, before any route or the cache sees it.
 */

/** A raw HTTP/1.1 request (nothing normalised by a client library), on its own connection. */
function raw(port: number, head: string): Promise<{ status: number; body: string }> {
  return exchange(port, [head]).then((x) => {
    const r = x.responses.find((res) => res.status >= 200);
    return r === undefined ? { status: 0, body: '' } : { status: r.status, body: r.body };
  });
}

const get = (path: string, host: string): string => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;

describe.each(variantNames('server'))('Host validation, %s engine', (engine) => {
  let gw: RunningGateway;
  let up: RecordingUpstream;
  let port: number;
  let h2gw: RunningGateway;

  beforeAll(async () => {
    up = await startUpstream('up', (req, res) => {
      const body = `upstream ${req.url}`;
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    const config = {
      variants: { server: engine },
      upstreams: { up: { targets: [up.url] } },
      plugins: [{ name: 'cache', options: {} }],
      routes: [
        { path: '/ping', methods: ['GET'], response: { body: 'pong-static', headers: { 'cache-control': 'max-age=60' } } },
        { path: '/api/*', methods: ['GET'], upstream: 'up' },
      ],
    };
    gw = await gatewayFor(config);
    port = Number(new URL(gw.url).port);
    h2gw = await gatewayFor({ ...config, server: { http2: 'h2c' } });
  });
  afterAll(async () => {
    await gw?.close();
    await h2gw?.close();
    await up?.close();
  });

  it('a Host carrying a path is refused, so it cannot plant the static /ping answer under /api/ping', async () => {
    const host = `127.0.0.1:${port}`;
    const planted = await raw(port, get('/ping', `${host}/api`));
    expect(planted.status).toBe(400);
    const victim = await raw(port, get('/api/ping', host));
    expect(victim.status).toBe(200);
    expect(victim.body).toBe('upstream /api/ping');
  });

  it.each([
    ['a path', 'example.com/api'],
    ['a query', 'example.com?x'],
    ['a fragment', 'example.com#x'],
    ['userinfo', 'user@example.com'],
    ['a space', 'exa mple.com'],
    ['a backslash', 'example.com\\api'],
    ['a second colon', 'example.com:80:81'],
    ['a port that is not a number', 'example.com:http'],
    ['a port above 65535', 'example.com:65536'],
    ['an IPv6 address without brackets', '::1'],
    ['an unclosed IP literal', '[::1'],
    ['an IPv6 zone id', '[fe80::1%25eth0]'],
    ['a broken percent-escape', 'exa%2'],
    ['an empty value', ''],
    ['a non-ASCII byte', 'exämple.com'],
  ])('Host with %s is a 400 before any route answers', async (_what, host) => {
    up.reset();
    const r = await raw(port, get('/api/x', host));
    expect(r.status).toBe(400);
    expect(up.received).toHaveLength(0);
  });

  it.each([
    ['a name', 'example.com'],
    ['a name and port', 'Example.COM:8080'],
    ['an IPv4 address and port', '127.0.0.1:80'],
    ['an IPv6 literal and port', '[::1]:8080'],
    ['sub-delims and a percent-escape', "a-b_c~d!$&'()*+,;=%41"],
    ['an empty port (the default)', 'example.com:'],
  ])('Host with %s is served', async (_what, host) => {
    const r = await raw(port, get('/api/ok', host));
    expect(r.status).toBe(200);
  });

  it('two Host fields are a 400, even when they agree', async () => {
    const r = await raw(port, `GET /api/x HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\nConnection: close\r\n\r\n`);
    expect(r.status).toBe(400);
  });

  it('an absolute-form target whose authority differs from Host is a 400', async () => {
    const r = await raw(port, `GET http://a.example/api/ping HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n`);
    expect(r.status).toBe(400);
  });

  it('HTTP/2: an :authority carrying a path, or a Host that names another authority, is a 400', async () => {
    const session = http2.connect(h2gw.url);
    session.on('error', () => undefined);
    const ask = (headers: http2.OutgoingHttpHeaders): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const s = session.request(headers);
        let body = '';
        let status = 0;
        s.on('response', (h) => (status = Number(h[':status'])));
        s.on('data', (c: Buffer) => (body += c.toString()));
        s.on('end', () => resolve({ status, body }));
        // nghttp2 itself resets some malformed requests (RST_STREAM PROTOCOL_ERROR): refused before any route too
        s.on('error', (err: Error & { code?: string }) => (err.code === 'ERR_HTTP2_STREAM_ERROR' ? resolve({ status: 0, body: '' }) : reject(err)));
        s.end();
      });
    try {
      const authority = new URL(h2gw.url).host;
      up.reset();
      for (const bad of [`${authority}/api`, `${authority}?x`, 'user@example.com', 'example.com:80:81', '::1']) {
        expect([0, 400], bad).toContain((await ask({ ':path': '/api/ping', ':authority': bad })).status);
      }
      expect((await ask({ ':path': '/api/ping', ':authority': authority, host: 'other.example' })).status).toBe(400);
      expect(up.received).toHaveLength(0);
      const ok = await ask({ ':path': '/api/ping', ':authority': authority });
      expect(ok.status).toBe(200);
      expect(ok.body).toBe('upstream /api/ping');
    } finally {
      session.close();
    }
  });
});

describe('validHost', () => {
  it('accepts the RFC 3986 forms and nothing else', () => {
    for (const ok of ['a', 'a.b', 'A.B:1', '1.2.3.4', '[::1]', '[v1.x:y]', 'a:', 'a:65535', '%41%42']) expect(validHost(ok), ok).toBe(true);
    for (const bad of ['', ':80', '[]', '[::1]x', '[::1]:x', 'a:-1', 'a:123456', 'a/b', 'a%zz', 'a%4', '[v.x]', 'a b']) expect(validHost(bad), bad).toBe(false);
  });
});
