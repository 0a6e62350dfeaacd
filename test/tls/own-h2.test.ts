import { randomBytes } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { needService } from '../support/services.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { until } from '../support/wait.js';
import { TestCa, sha256 } from './certs.js';
import { closeSession, h1, h2, h2session, handshake } from './clients.js';

/**
 * The own engine on a TLS listener with HTTP/2 on (the default with server.tls): HTTP/1.1 stays on the own
 * connection, a socket that negotiated ALPN h2 is handed to node:http2. The suites of h2.test.ts and tls.test.ts
 * run on both engines; this file checks what only the hand-off can get wrong: both protocols on one port, bodies
 * through the handed-over session, its stats, a client's close, and the drain.
 */
const openssl = needService('openssl');

interface TlsStats {
  engine: string;
  listener: string;
  h2Sessions: number;
  h2ActiveSessions: number;
  handlerErrors: number;
}

/** Upstream answer: what arrived (method, protocol-independent framing, body length and digest). */
function echoDigest(req: http.IncomingMessage, res: http.ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.url!.startsWith('/api/slow')) {
      setTimeout(() => res.end('slow'), 300);
      return;
    }
    if (req.url!.startsWith('/api/hang')) return; // never answers: only the drain deadline ends it
    const body = Buffer.concat(chunks);
    const text = JSON.stringify({ method: req.method, url: req.url, bytes: body.length, sha: sha256(body), proto: req.headers['x-forwarded-proto'] });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
}

function ownConfig(upstreamUrl: string, tls: { cert: string; key: string }, extra: Record<string, unknown> = {}) {
  return {
    variants: { server: 'own' },
    server: { host: '127.0.0.1', tls },
    upstreams: { api: { targets: [{ url: upstreamUrl }] } },
    routes: [
      { path: '/static', response: { status: 200, body: 'static' } },
      { path: '/api/*', upstream: 'api' },
    ],
    ...extra,
  };
}

function tlsStats(gw: RunningGateway): TlsStats {
  return gw.gateway.exportMetrics().sections.tls as unknown as TlsStats;
}

describe.skipIf(!openssl.available)('own engine, TLS listener with HTTP/2 (default config)', () => {
  let ca: TestCa;
  let up: RecordingUpstream;
  let gw: RunningGateway;
  let origin: string;

  beforeAll(async () => {
    ca = new TestCa();
    const leaf = ca.leaf('localhost');
    up = await startUpstream('api', echoDigest);
    gw = await startGateway(ownConfig(up.url, { cert: leaf.cert, key: leaf.key }));
    origin = `https://localhost:${gw.port}`;
  });

  afterAll(async () => {
    await gw?.close();
    await up?.close();
    ca?.cleanup();
  });

  it('answers an h2 client and an http/1.1 client on the same port, both proxied to the upstream', async () => {
    expect((await handshake(gw.port, { ca: ca.caPem, alpn: ['h2', 'http/1.1'] })).alpn).toBe('h2');
    expect((await handshake(gw.port, { ca: ca.caPem, alpn: ['http/1.1'] })).alpn).toBe('http/1.1');
    const before = gw.gateway.exportMetrics().protocols;
    up.reset();
    const s = await h2session(origin, ca.caPem);
    try {
      const viaH2 = await h2(s, '/api/who?p=h2');
      const viaH1 = await h1(`${origin}/api/who?p=h1`, ca.caPem);
      expect(viaH2.status).toBe(200);
      expect(viaH1.status).toBe(200);
      expect(JSON.parse(viaH2.body.toString())).toMatchObject({ method: 'GET', url: '/api/who?p=h2', bytes: 0, proto: 'https' });
      expect(JSON.parse(viaH1.body.toString())).toMatchObject({ method: 'GET', url: '/api/who?p=h1', bytes: 0, proto: 'https' });
      expect(up.requests.map((r) => r.url)).toEqual(['/api/who?p=h2', '/api/who?p=h1']);
      const after = gw.gateway.exportMetrics().protocols;
      expect(after.h2 - before.h2).toBe(1);
      expect(after.h1 - before.h1).toBe(1);
      const stats = tlsStats(gw);
      expect(stats).toMatchObject({ engine: 'own', listener: 'h2', h2ActiveSessions: 1, handlerErrors: 0 });
      expect(stats.h2Sessions).toBeGreaterThanOrEqual(1);
    } finally {
      await closeSession(s);
    }
  });

  it('proxies an h2 request body intact, with and without content-length, and many streams at once', async () => {
    const body = randomBytes(1024 * 1024 + 3);
    const s = await h2session(origin, ca.caPem);
    try {
      const withLength = await h2(s, '/api/put', { method: 'PUT', body, headers: { 'content-length': String(body.length) } });
      const unannounced = await h2(s, '/api/post', { method: 'POST', body });
      for (const r of [withLength, unannounced]) {
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body.toString())).toMatchObject({ bytes: body.length, sha: sha256(body) });
      }
      // 20 concurrent streams on one session, each with its own body: every answer belongs to its request
      const parts = Array.from({ length: 20 }, (_, i) => randomBytes(10_000 + i));
      const answers = await Promise.all(parts.map((p, i) => h2(s, `/api/many/${i}`, { method: 'POST', body: p })));
      answers.forEach((r, i) => expect(JSON.parse(r.body.toString())).toMatchObject({ url: `/api/many/${i}`, sha: sha256(parts[i]!) }));
    } finally {
      await closeSession(s);
    }
  });

  it('Expect: 100-continue over h2: 100 once the body is read, none when the answer comes without reading it', async () => {
    const s = await h2session(origin, ca.caPem);
    const ask = (path: string) =>
      new Promise<{ continued: boolean; status: number; body: string }>((resolve, reject) => {
        const stream = s.request({ ':method': 'POST', ':path': path, expect: '100-continue' });
        let continued = false;
        let status = 0;
        let body = '';
        stream.on('continue', () => {
          continued = true;
          stream.end('payload');
        });
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.on('data', (c: Buffer) => (body += c.toString()));
        stream.on('end', () => {
          stream.close();
          resolve({ continued, status, body });
        });
        stream.on('error', reject);
      });
    try {
      const proxied = await ask('/api/continue');
      expect(proxied).toMatchObject({ continued: true, status: 200 });
      expect(JSON.parse(proxied.body)).toMatchObject({ bytes: 7, sha: sha256(Buffer.from('payload')) });
      expect(await ask('/static')).toEqual({ continued: false, status: 200, body: 'static' });
    } finally {
      await closeSession(s);
    }
  });

  it('a session ends when its client closes it: GOAWAY, a TLS half-close (FIN), or a cut TCP connection', async () => {
    await until(() => tlsStats(gw).h2ActiveSessions === 0, { message: 'earlier sessions closed' });
    /** a session over a TLS socket the test holds, to end or cut under the session */
    const rawSession = async (): Promise<{ session: http2.ClientHttp2Session; socket: tls.TLSSocket }> => {
      let socket: tls.TLSSocket | undefined;
      const session = await h2session(origin, ca.caPem, {
        createConnection: () => (socket = tls.connect({ host: '127.0.0.1', port: gw.port, servername: 'localhost', ca: ca.caPem, ALPNProtocols: ['h2'] })),
      });
      session.on('error', () => undefined);
      return { session, socket: socket! };
    };
    const graceful = await h2session(origin, ca.caPem);
    const halfClosed = await rawSession();
    const cut = await rawSession();
    for (const s of [graceful, halfClosed.session, cut.session]) expect((await h2(s, '/static')).status).toBe(200);
    expect(tlsStats(gw).h2ActiveSessions).toBe(3);
    await closeSession(graceful);
    halfClosed.socket.end();
    cut.socket.destroy();
    await until(() => tlsStats(gw).h2ActiveSessions === 0, { message: () => `sessions still open: ${tlsStats(gw).h2ActiveSessions}` });
  });

  it('exports handlerErrors in /stats and as gateway_server_handler_errors_total in /metrics', async () => {
    const get = (path: string) =>
      new Promise<string>((resolve, reject) => {
        http
          .get(`${gw.adminUrl}${path}`, (res) => {
            let s = '';
            res.on('data', (c) => (s += c));
            res.on('end', () => resolve(s));
          })
          .on('error', reject);
      });
    const stats = JSON.parse(await get('/stats')) as { workers: { tls: TlsStats }[] };
    expect(stats.workers[0]!.tls).toMatchObject({ engine: 'own', handlerErrors: 0 });
    expect(await get('/metrics')).toMatch(/^gateway_server_handler_errors_total 0$/m);
  });
});

describe.skipIf(!openssl.available)('own engine: the drain closes HTTP/2 sessions', () => {
  let ca: TestCa;
  let up: RecordingUpstream;
  let gw: RunningGateway | null = null;

  beforeAll(async () => {
    ca = new TestCa();
    up = await startUpstream('api', echoDigest);
  });
  afterEach(async () => {
    await gw?.close();
    gw = null;
  });
  afterAll(async () => {
    await up?.close();
    ca?.cleanup();
  });

  async function start(): Promise<{ gw: RunningGateway; session: http2.ClientHttp2Session }> {
    const leaf = ca.leaf('localhost');
    gw = await startGateway(ownConfig(up.url, { cert: leaf.cert, key: leaf.key }, { admin: { enabled: false } }));
    const session = await h2session(`https://localhost:${gw.port}`, ca.caPem);
    session.on('error', () => undefined);
    return { gw, session };
  }

  it('sends GOAWAY, lets the stream in flight finish, then the session closes', async () => {
    const { gw: g, session } = await start();
    up.reset();
    const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    const inFlight = h2(session, '/api/slow');
    await until(() => up.received.some((r) => r.url === '/api/slow'), { message: 'the slow request reached the upstream' });
    const drained = g.close();
    gw = null;
    expect(await goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
    const r = await inFlight;
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('slow');
    await closed;
    await drained;
    expect(tlsStats(g).h2ActiveSessions).toBe(0);
  });

  it('cuts a session whose stream is still open at the drain deadline', async () => {
    const { gw: g, session } = await start();
    up.reset();
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    const stream = session.request({ ':path': '/api/hang' });
    stream.on('error', () => undefined);
    stream.end();
    let status: unknown;
    stream.on('response', (h) => (status = h[':status']));
    const streamClosed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    await until(() => up.received.some((r) => r.url === '/api/hang'), { message: 'the hanging request reached the upstream' });
    const t0 = Date.now();
    await g.close(); // RunningGateway.close: 1 s drain deadline
    gw = null;
    await closed;
    await streamClosed;
    // the stream never got an answer: the deadline cut it (a 502/503 would mean the gateway answered instead)
    expect(status).toBeUndefined();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(tlsStats(g).h2ActiveSessions).toBe(0);
  });
});
