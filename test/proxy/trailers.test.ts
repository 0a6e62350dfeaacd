import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import type { UpstreamManager } from '../../core/proxy/index.js';
import { filterTrailers } from '../../core/proxy/trailers.js';
import { until } from '../support/wait.js';
import { CLIENT_VARIANTS, rawExchange, startRawServer, startUpstream, type TestUpstream } from './helpers.js';

/**
 * Trailer fields through the proxy (core/proxy/trailers.ts), both ways, on both server engines and every
 * upstream client: the peers are node:http (llhttp) on both sides, so what arrives is what a real client or
 * upstream reads.
 */

const ENGINES = ['node-http', 'own'];

function upstreamStats(gw: RunningGateway): Record<string, unknown> {
  return (gw.gateway.server.currentRuntime.upstreams as UpstreamManager).stats();
}

/** What the upstream sends after its chunked body: allowed fields, and one of each kind that must never pass. */
const RESPONSE_TRAILERS: Array<[string, string]> = [
  ['X-Checksum', 'sha256=abc'],
  ['Server-Timing', 'db;dur=53'],
  ['Server-Timing', 'app;dur=47'],
  ['Transfer-Encoding', 'chunked'],
  ['Set-Cookie', 'session=evil'],
  ['Location', '/elsewhere'],
  ['X-Hop', 'listed in Connection'],
  ['Via', '1.1 forged'],
];

/** Allowed, forbidden, and a name the route vouches for itself (requestHeaders.add) */
const REQUEST_TRAILERS: Array<[string, string]> = [
  ['X-Digest', 'crc32=1234'],
  ['Host', 'evil.example'],
  ['Authorization', 'Bearer stolen'],
  ['X-Forwarded-For', '10.6.6.6'],
  ['X-Route-Tag', 'forged'],
];

interface Seen {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  rawTrailers: string[];
}

async function startTrailerUpstream(): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      seen.push({ url: req.url!, headers: req.headers, body: Buffer.concat(parts).toString(), rawTrailers: req.rawTrailers });
      if (req.url === '/plain') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('no trailers');
        return;
      }
      // chunked, announced trailers; Connection names X-Hop, which makes it hop-by-hop for this message
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'keep-alive, X-Hop', trailer: 'X-Checksum' });
      if (req.url !== '/empty') res.write('hello ');
      if (req.url !== '/empty') res.write('world');
      res.addTrailers(RESPONSE_TRAILERS);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface Got {
  status: number;
  body: string;
  rawTrailers: string[];
}

/** node:http's client (llhttp reads the trailers); with `trailers`, a chunked request body ending with them. */
function send(port: number, path: string, trailers: Array<[string, string]> | null, method = 'POST'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path, agent: false, headers: trailers === null ? {} : { 'transfer-encoding': 'chunked' } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts).toString(), rawTrailers: res.rawTrailers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (trailers !== null) {
      req.write('payload');
      req.addTrailers(trailers);
    }
    req.end();
  });
}

function pairs(raw: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return out;
}

const FORWARDED_RESPONSE = [
  ['x-checksum', 'sha256=abc'],
  ['server-timing', 'db;dur=53'],
  ['server-timing', 'app;dur=47'],
];

describe.each(ENGINES)('trailers through the proxy (engine %s)', (engine) => {
  describe.each(CLIENT_VARIANTS)('upstream client %s', (client) => {
    let up: Awaited<ReturnType<typeof startTrailerUpstream>>;
    let gw: RunningGateway;
    const stats = (): Record<string, number> => ({ ...(upstreamStats(gw).api as { trailers: Record<string, number> }).trailers });
    beforeAll(async () => {
      up = await startTrailerUpstream();
      gw = await startGateway({
        server: { host: '127.0.0.1' },
        admin: { enabled: false },
        logging: { level: 'silent', accessLog: false },
        variants: { upstream: client, server: engine },
        upstreams: { api: { targets: [{ url: up.url }] } },
        routes: [{ path: '/*', upstream: 'api', requestHeaders: { add: { 'x-route-tag': 'gateway' } } }],
      });
    });
    afterAll(async () => {
      await gw?.close();
      await up?.close();
    });

    it('forwards the upstream response trailers to an HTTP/1.1 client, without the forbidden and hop-by-hop ones', async () => {
      const before = stats();
      const r = await send(gw.port, '/down', null, 'GET');
      expect(r.status).toBe(200);
      expect(r.body).toBe('hello world');
      expect(pairs(r.rawTrailers)).toEqual(FORWARDED_RESPONSE);
      const after = stats();
      expect(after.responseForwarded! - before.responseForwarded!).toBe(3);
      expect(after.responseDropped! - before.responseDropped!).toBe(5);
    });

    it('forwards trailers after an empty chunked body', async () => {
      const r = await send(gw.port, '/empty', null, 'GET');
      expect(r.body).toBe('');
      expect(pairs(r.rawTrailers)).toEqual(FORWARDED_RESPONSE);
    });

    it('forwards the client request trailers to the upstream when the client can carry them', async () => {
      const before = stats();
      const r = await send(gw.port, '/up', REQUEST_TRAILERS);
      expect(r.status).toBe(200);
      const s = up.seen.find((x) => x.url === '/up')!;
      expect(s.body).toBe('payload');
      // the gateway's own header values are untouched by the forged trailers
      expect(s.headers['x-route-tag']).toBe('gateway');
      expect(s.headers['x-forwarded-for']).toBe('127.0.0.1');
      const after = stats();
      if (client === 'undici') {
        // undici's HTTP/1.1 writer has no trailer section: every field is dropped and counted
        expect(s.rawTrailers).toEqual([]);
        expect(after.requestDropped! - before.requestDropped!).toBe(5);
      } else {
        expect(pairs(s.rawTrailers)).toEqual([['x-digest', 'crc32=1234']]);
        expect(after.requestForwarded! - before.requestForwarded!).toBe(1);
        expect(after.requestDropped! - before.requestDropped!).toBe(4);
      }
    });

    it('sends an HTTP/1.0 client no trailer section (its body ends with the close) and counts them dropped', async () => {
      const before = stats();
      const raw = await rawExchange(gw.port, 'GET /down HTTP/1.0\r\nHost: x\r\n\r\n');
      expect(raw).toMatch(/^HTTP\/1\.1 200 /);
      const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
      expect(body).toBe('hello world');
      expect(raw).not.toMatch(/x-checksum/i);
      const after = stats();
      expect(after.responseDropped! - before.responseDropped!).toBe(8);
      expect(after.responseForwarded).toBe(before.responseForwarded);
    });

    it('a response without a trailer section gets none', async () => {
      const r = await send(gw.port, '/plain', null, 'GET');
      expect(r.body).toBe('no trailers');
      expect(r.rawTrailers).toEqual([]);
    });
  });
});

function startGw(engine: string, client: string, upstreamUrl: string, server: Record<string, unknown> = {}): Promise<RunningGateway> {
  return startGateway({
    server: { host: '127.0.0.1', ...server },
    admin: { enabled: false },
    logging: { level: 'silent', accessLog: false },
    variants: { upstream: client, server: engine },
    upstreams: { api: { targets: [{ url: upstreamUrl }] } },
    routes: [{ path: '/*', upstream: 'api' }],
  });
}

describe.each(ENGINES)('HTTP/2 clients and HTTP/1.1 upstreams (engine %s, h2c)', (engine) => {
  let up: Awaited<ReturnType<typeof startTrailerUpstream>>;
  let gw: RunningGateway;
  beforeAll(async () => {
    up = await startTrailerUpstream();
    gw = await startGw(engine, 'h1', up.url, { http2: 'h2c' });
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
  });

  it('relays the h2 request trailers to the upstream and its chunked trailers back as an HTTP/2 trailer block', async () => {
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    try {
      const got = await new Promise<{ status: number; body: string; trailers: http2.IncomingHttpHeaders }>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': '/h2' }, { waitForTrailers: true });
        let status = 0;
        let trailers: http2.IncomingHttpHeaders = {};
        const parts: Buffer[] = [];
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.on('trailers', (t) => (trailers = t));
        stream.on('data', (c: Buffer) => parts.push(c));
        stream.on('end', () => resolve({ status, body: Buffer.concat(parts).toString(), trailers }));
        stream.on('error', reject);
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-digest': 'crc32=99', authorization: 'Bearer stolen', host: 'evil' }));
        stream.end('from h2');
      });
      expect(got.status).toBe(200);
      expect(got.body).toBe('hello world');
      expect(got.trailers['x-checksum']).toBe('sha256=abc');
      expect(got.trailers['server-timing']).toBe('db;dur=53, app;dur=47');
      expect(got.trailers['set-cookie']).toBeUndefined();
      expect(got.trailers['location']).toBeUndefined();
      const s = up.seen.find((x) => x.url === '/h2')!;
      expect(s.body).toBe('from h2');
      expect(pairs(s.rawTrailers)).toEqual([['x-digest', 'crc32=99']]);
    } finally {
      session.close();
    }
  });

  it('an h2 request with a Content-Length goes upstream framed by it: its trailers are dropped and counted', async () => {
    const trailersOf = (): Record<string, number> => ({ ...(upstreamStats(gw).api as { trailers: Record<string, number> }).trailers });
    const before = trailersOf();
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': '/h2-length', 'content-length': '7' }, { waitForTrailers: true });
        let st = 0;
        stream.on('response', (h) => (st = Number(h[':status'])));
        stream.on('end', () => resolve(st));
        stream.on('error', reject);
        stream.resume();
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-digest': 'crc32=7' }));
        stream.end('framed!');
      });
      expect(status).toBe(200);
      const s = up.seen.find((x) => x.url === '/h2-length')!;
      expect([s.body, s.headers['content-length'], s.rawTrailers]).toEqual(['framed!', '7', []]);
      const after = trailersOf();
      expect(after.requestDropped! - before.requestDropped!).toBe(1);
      expect(after.requestForwarded).toBe(before.requestForwarded);
    } finally {
      session.close();
    }
  });
});

/** A raw upstream answering each path with a chunked body whose trailer section is `TRAILER_SECTIONS[path]`. */
const HOSTILE_UPSTREAM_TRAILERS: Record<string, string> = {
  '/content-length': 'Content-Length: 5\r\n',
  '/nul': 'X-A: a\0b\r\n',
  '/bare-lf': 'X-A: 1\nX-B: 2\r\n',
  '/obs-fold': 'X-A: 1\r\n folded\r\n',
  '/huge': `X-Huge: ${'h'.repeat(70 * 1024)}\r\n`,
  '/ok': 'X-Ok: 1\r\n',
};

describe.each(CLIENT_VARIANTS)('hostile upstream trailer sections (client %s)', (client) => {
  let raw: Awaited<ReturnType<typeof startRawServer>>;
  let gw: RunningGateway;
  beforeAll(async () => {
    raw = await startRawServer((s) => {
      let head = '';
      s.on('data', (c: Buffer) => {
        head += c.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        const path = /^[A-Z]+ (\S+)/.exec(head)![1]!;
        head = head.slice(end + 4);
        // head and body first, the trailer section in a later write: the gateway has forwarded the head by then
        s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
        setTimeout(() => s.write(`0\r\n${HOSTILE_UPSTREAM_TRAILERS[path] ?? ''}\r\n`), 30);
      });
    });
    gw = await startGw('node-http', client, raw.url);
  });
  afterAll(async () => {
    await gw?.close();
    await raw?.close();
  });

  /** What a client sees: a complete response with its trailers, or a response cut off (error or 'aborted'). */
  function fetchOutcome(path: string): Promise<{ complete: boolean; body: string; rawTrailers: string[] }> {
    return new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: gw.port, path, agent: false }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ complete: res.complete, body: Buffer.concat(parts).toString(), rawTrailers: res.rawTrailers }));
        res.on('aborted', () => resolve({ complete: false, body: Buffer.concat(parts).toString(), rawTrailers: [] }));
        res.on('error', () => resolve({ complete: false, body: Buffer.concat(parts).toString(), rawTrailers: [] }));
      });
      req.on('error', () => resolve({ complete: false, body: '', rawTrailers: [] }));
      req.end();
    });
  }

  it.each(['/content-length', '/nul', '/bare-lf', '/obs-fold', '/huge'])(
    '%s: the client never gets a complete answer, and the next request is served',
    async (path) => {
      const r = await fetchOutcome(path);
      expect(r.complete).toBe(false);
      expect(r.rawTrailers).toEqual([]);
      const ok = await fetchOutcome('/ok');
      expect(ok).toEqual({ complete: true, body: 'hello', rawTrailers: ['x-ok', '1'] });
    },
  );
});

describe.each(ENGINES)('hostile request trailer sections (engine %s)', (engine) => {
  let up: TestUpstream;
  let gw: RunningGateway;
  beforeAll(async () => {
    up = await startUpstream();
    gw = await startGw(engine, 'h1', up.url);
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
  });

  const HEAD = 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n';

  it.each([
    ['Content-Length (a smuggling shape)', 'Content-Length: 40\r\n', 400],
    ['Transfer-Encoding', 'Transfer-Encoding: chunked\r\n', 400],
    ['NUL in a value', 'X-A: a\0b\r\n', 400],
    ['a bare LF', 'X-A: 1\nX-B: 2\r\n', 400],
    ['obs-fold', 'X-A: 1\r\n folded\r\n', 400],
    ['more than maxHeaderSize', `X-Huge: ${'h'.repeat(17 * 1024)}\r\n`, 431],
  ])('%s in one packet with the request: refused, and not one byte reaches the upstream', async (_name, section, status) => {
    up.reset();
    const out = await rawExchange(gw.port, `${HEAD}${section}\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n`);
    expect(out).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    // the pipelined request after it is never answered: the connection closes with the refusal
    expect(out.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(up.bytes).toBe(0);
  });

  it('a bad trailer section arriving after the head was forwarded: the upstream never sees the request end', async () => {
    up.reset();
    const s = net.connect(gw.port, '127.0.0.1');
    s.on('error', () => undefined);
    let answer = '';
    s.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    s.write(HEAD);
    await until(() => up.received.length === 1, { message: 'the request head never reached the upstream' });
    s.write('Content-Length: 0\r\n\r\n');
    await closed;
    // the gateway could not answer yet (the upstream was waiting for the body): the client gets the refusal
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    await until(() => up.received[0]!.aborted, { message: 'the upstream request never broke off' });
    expect(up.received[0]!.complete).toBe(false);
    // the last-chunk the gateway would have written ends with an empty line: none was sent
    expect(up.data()).not.toContain('0\r\n\r\n');
  });
});

describe('the trailer filter (core/proxy/trailers.ts)', () => {
  it('keeps ordinary fields, repeated ones as arrays; drops every category RFC 9110 6.5.1 names and what the gateway owns', () => {
    const forbidden = ['Content-Length', 'Transfer-Encoding', 'Trailer', 'Host', 'Cache-Control', 'Expect', 'Max-Forwards', 'Pragma', 'Range', 'TE'];
    const more = ['If-Match', 'If-None-Match', 'If-Modified-Since', 'If-Unmodified-Since', 'If-Range', 'Accept', 'Accept-Encoding', 'Accept-Language'];
    const auth = ['Authorization', 'Proxy-Authorization', 'WWW-Authenticate', 'Proxy-Authenticate', 'Cookie', 'Set-Cookie'];
    const control = ['Age', 'Date', 'Expires', 'Location', 'Retry-After', 'Vary', 'Warning', 'Content-Encoding', 'Content-Type', 'Content-Range'];
    const hop = ['Connection', 'Keep-Alive', 'Proxy-Connection', 'Upgrade', 'X-Listed', ':status'];
    const own = ['Via', 'Forwarded', 'X-Forwarded-For', 'X-Forwarded-Proto', 'X-Forwarded-Host', 'X-Edited', 'X-User-Id'];
    const raw: string[] = ['X-Checksum', 'abc', 'x-checksum', 'def', 'Server-Timing', 'db;dur=1'];
    for (const name of [...forbidden, ...more, ...auth, ...control, ...hop, ...own]) raw.push(name, 'v');
    // bad bytes: a name that is no token, values node:http would refuse to write
    raw.push('Bad Name', 'v', 'X-Nul', 'a\0b', 'X-Lf', 'a\nb', 'X-Del', 'a\x7fb', 'X-Obs', 'caf\xe9');
    const { fields, kept, dropped } = filterTrailers(raw, 'keep-alive, X-Listed', new Set(['x-edited']), ['x-user-id', '1']);
    expect({ ...fields }).toEqual({ 'x-checksum': ['abc', 'def'], 'server-timing': 'db;dur=1', 'x-obs': 'caf\xe9' });
    expect(kept).toBe(4);
    expect(dropped).toBe(raw.length / 2 - 4);
  });
});
