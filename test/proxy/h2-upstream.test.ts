import http from 'node:http';
import http2, { type Http2Server, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../core/config/validator.js';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { frame, FrameType, headerBlock, settings, SETTINGS_INITIAL_WINDOW_SIZE, startRawH2, type RawH2Server } from '../support/h2-raw.js';
import { request } from '../support/http.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { until } from '../support/wait.js';
import { h2UpstreamClient } from './helpers.js';

/**
 * The HTTP/2 upstream client (`protocol: "h2c"`) against real node:http2 servers and hand-written hostile peers:
 * requests and trailers relayed, the peer's stream limit kept with more sessions opened, GOAWAY under load with
 * nothing lost, refused streams sent again, and every hostile peer costing only its own requests.
 */

interface H2Upstream {
  server: Http2Server;
  url: string;
  sessions: Set<ServerHttp2Session>;
  /** the most streams open at once on one session */
  peakPerSession: number;
  /** requests seen, by :path */
  paths: string[];
  close(): Promise<void>;
}

type Handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

async function startH2(handler: Handler, options: http2.ServerOptions = {}): Promise<H2Upstream> {
  const server = http2.createServer(options);
  const u: H2Upstream = {
    server,
    url: '',
    sessions: new Set(),
    peakPerSession: 0,
    paths: [],
    close: () =>
      new Promise<void>((r) => {
        for (const s of u.sessions) s.destroy();
        server.close(() => r());
      }),
  };
  const open = new Map<ServerHttp2Session, number>();
  server.on('session', (s) => {
    u.sessions.add(s);
    open.set(s, 0);
    s.on('close', () => u.sessions.delete(s));
    s.on('error', () => {});
  });
  server.on('stream', (stream, headers) => {
    const s = stream.session as ServerHttp2Session;
    const n = open.get(s)! + 1;
    open.set(s, n);
    if (n > u.peakPerSession) u.peakPerSession = n;
    stream.on('close', () => open.set(s, open.get(s)! - 1));
    stream.on('error', () => {});
    u.paths.push(headers[':path'] as string);
    handler(stream, headers);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  u.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return u;
}

/** Answers after `ms` with the request's method, path, authority and body. */
const echoAfter =
  (ms: number): Handler =>
  (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () =>
      setTimeout(() => {
        if (stream.destroyed) return;
        const body = JSON.stringify({
          method: headers[':method'],
          path: headers[':path'],
          authority: headers[':authority'],
          body: Buffer.concat(chunks).toString(),
        });
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(body);
      }, ms),
    );
  };

function gatewayFor(upstreams: Record<string, unknown>, extraRoutes: unknown[] = []): Promise<RunningGateway> {
  return startGateway({
    server: { host: '127.0.0.1' },
    admin: { enabled: false },
    logging: { level: 'silent', accessLog: false },
    upstreams,
    routes: [...extraRoutes, ...Object.keys(upstreams).map((name) => ({ path: `/${name}/*`, upstream: name, stripPrefix: `/${name}` }))],
  });
}

describe('HTTP/2 upstreams', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('relays requests, bodies and the authority; HTTP/1.1 client in front', async () => {
    const up = await startH2(echoAfter(0));
    const gw = await gatewayFor({ up: { targets: [up.url], protocol: 'h2c' } });
    cleanup.push(
      () => up.close(),
      () => gw.close(),
    );
    const r = await request(`${gw.url}/up/x?q=1`, { method: 'POST', body: 'hello', headers: { host: 'api.example' } });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ method: 'POST', path: '/x?q=1', authority: up.url.slice(7), body: 'hello' });
  });

  it('streams a body still coming after the head, the part that came with the head first', async () => {
    // the rest is sent only once the client has the first part: the gateway must stream, not wait for the end
    let sendRest: (() => void) | null = null;
    const up = await startH2((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.write('first;');
      sendRest = () => stream.end('rest');
    });
    const gw = await gatewayFor({ up: { targets: [up.url], protocol: 'h2c' } });
    cleanup.push(
      () => up.close(),
      () => gw.close(),
    );
    const got = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      http
        .get(`${gw.url}/up/s`, (res) => {
          let body = '';
          res.setEncoding('latin1');
          res.on('data', (d: string) => {
            body += d;
            if (body === 'first;') sendRest?.();
          });
          res.on('end', () => resolve({ status: res.statusCode!, body }));
          res.on('error', reject);
        })
        .on('error', reject);
    });
    expect(got).toEqual({ status: 200, body: 'first;rest' });
  });

  it('relays trailers to an HTTP/2 client, without the fields a trailer must not carry', async () => {
    // hand-written: node:http2 would not let a server send these trailer fields. Head, body and trailers in one
    // write, so they arrive in one read: the trailers are in before the proxy has the head in hand.
    const up = await startRawH2({
      onStream: (s) => {
        s.socket.cork();
        s.headers([[':status', '200']]);
        s.data(Buffer.from('body'));
        s.trailers([
          ['x-checksum', 'abc'],
          ['set-cookie', 'a=b'],
        ]);
        s.socket.uncork();
      },
    });
    const gw = await startGateway({
      server: { host: '127.0.0.1', http2: 'h2c' },
      admin: { enabled: false },
      logging: { level: 'silent', accessLog: false },
      upstreams: { up: { targets: [up.url], protocol: 'h2c' } },
      routes: [{ path: '/*', upstream: 'up' }],
    });
    cleanup.push(
      () => up.close(),
      () => gw.close(),
    );
    const session = http2.connect(gw.url);
    cleanup.push(async () => void session.close());
    const got = await new Promise<{ body: string; trailers: http2.IncomingHttpHeaders }>((resolve, reject) => {
      const s = session.request({ ':path': '/t' });
      let body = '';
      let trailers: http2.IncomingHttpHeaders = {};
      s.on('data', (d: Buffer) => (body += d.toString()));
      s.on('trailers', (t) => (trailers = t));
      s.on('end', () => resolve({ body, trailers }));
      s.on('error', reject);
    });
    expect(got.body).toBe('body');
    expect(got.trailers['x-checksum']).toBe('abc');
    expect(got.trailers['content-length']).toBeUndefined();
    expect(got.trailers['set-cookie']).toBeUndefined();
  });

  it("keeps within the peer's SETTINGS_MAX_CONCURRENT_STREAMS, opening more sessions", async () => {
    const up = await startH2(echoAfter(100), { settings: { maxConcurrentStreams: 5 } });
    const gw = await gatewayFor({ up: { targets: [up.url], protocol: 'h2c' } });
    cleanup.push(
      () => up.close(),
      () => gw.close(),
    );
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => request(`${gw.url}/up/${i}`)));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(up.peakPerSession).toBeLessThanOrEqual(5);
    expect(h2UpstreamClient(gw, 'up').sessions().length).toBeGreaterThanOrEqual(2);
  });

  it('GOAWAY under load: streams in flight finish, new ones go to a new session, nothing is lost', async () => {
    let answered = 0;
    let sentGoaway = false;
    const up: H2Upstream = await startH2((stream, headers) => {
      echoAfter(20)(stream, headers);
      stream.on('close', () => {
        answered++;
        if (answered === 50 && !sentGoaway) {
          sentGoaway = true;
          // graceful: every session says no more new streams (those it has finish)
          for (const s of up.sessions)
            s.goaway(http2.constants.NGHTTP2_NO_ERROR, (s as unknown as { state: { lastProcStreamID?: number } }).state.lastProcStreamID ?? 0);
        }
      });
    });
    const gw = await gatewayFor({ up: { targets: [up.url], protocol: 'h2c' } });
    cleanup.push(
      () => up.close(),
      () => gw.close(),
    );
    const statuses: number[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 300) {
        const i = next++;
        statuses.push((await request(`${gw.url}/up/${i}`, { method: i % 2 === 0 ? 'GET' : 'POST' })).status);
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));
    expect(sentGoaway).toBe(true);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(statuses).toHaveLength(300);
  });

  it('a refused stream (REFUSED_STREAM) is sent again, whatever its method', async () => {
    let refused = 0;
    const up = await startH2((stream, headers) => {
      if (refused < 2) {
        refused++;
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      echoAfter(0)(stream, headers);
    });
    const gw = await gatewayFor({ up: { targets: [up.url], protocol: 'h2c', retries: { count: 0 } } });
    cleanup.push(
      () => up.close(),
      () => gw.close(),
    );
    const r = await request(`${gw.url}/up/once`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(refused).toBe(2);
    expect(up.paths.filter((p) => p === '/once')).toHaveLength(3);
  });

  it('active health checks speak HTTP/2 to the target', async () => {
    const up = await startH2((stream, headers) => {
      stream.respond({ ':status': headers[':path'] === '/health' ? 503 : 200 });
      stream.end();
    });
    const gw = await gatewayFor({
      up: { targets: [up.url], protocol: 'h2c', healthCheck: { active: { path: '/health', intervalMs: 20, unhealthyThreshold: 1 } } },
    });
    cleanup.push(
      () => up.close(),
      () => gw.close(),
    );
    await until(() => up.paths.includes('/health'), { message: 'no health check arrived over HTTP/2' });
    await until(async () => (await request(`${gw.url}/up/x`)).status === 503, { message: 'the target never went out of rotation' });
  });

  it('over TLS is refused by config unless the target is https:// (and the reverse for h2c)', () => {
    const r = validateConfig({
      upstreams: { a: { targets: ['http://127.0.0.1:1'], protocol: 'h2' }, b: { targets: ['https://127.0.0.1:1'], protocol: 'h2c' } },
      routes: [],
    });
    expect(r.ok).toBe(false);
    const text = JSON.stringify(r);
    expect(text).toContain('/upstreams/a/targets/0: protocol \\"h2\\" needs an https:// target');
    expect(text).toContain('/upstreams/b/targets/0: protocol \\"h2c\\" is cleartext');
  });

  describe('hostile upstreams cost only their own requests', () => {
    let good: RecordingUpstream;
    beforeAll(async () => {
      good = await startUpstream('good');
    });
    afterAll(async () => {
      await good.close();
    });

    /** The hostile route fails with `status`; a healthy route of the same gateway answers meanwhile. */
    async function costsOnlyItsOwn(hostile: RawH2Server, expected: number, upstream: Record<string, unknown> = {}): Promise<void> {
      const gw = await gatewayFor({ bad: { targets: [hostile.url], protocol: 'h2c', retries: { count: 0 }, ...upstream }, good: { targets: [good.url] } });
      cleanup.push(
        () => hostile.close(),
        () => gw.close(),
      );
      const [bad, ok] = await Promise.all([request(`${gw.url}/bad/x`, { method: 'POST', body: 'payload' }), request(`${gw.url}/good/y`)]);
      expect(bad.status).toBe(expected);
      expect(ok.status).toBe(200);
      // and the gateway still serves the good one after
      expect((await request(`${gw.url}/good/z`)).status).toBe(200);
    }

    it('malformed frames', async () => {
      const hostile = await startRawH2({
        onStream: (s) => {
          // a DATA frame on stream 0 and a frame with a length its type cannot have
          s.socket.write(frame(FrameType.DATA, 0, 0, Buffer.from('x')));
          s.socket.write(frame(FrameType.RST_STREAM, 0, s.id, Buffer.from([1, 2])));
        },
      });
      // node:http2 answers with GOAWAY but keeps the socket: the stream's head never comes (504), and the PING
      // the timeout sends goes unanswered, so the session is dropped rather than kept taking streams
      await costsOnlyItsOwn(hostile, 504, { timeouts: { headersMs: 300 }, keepAlive: { pingTimeoutMs: 100 } });
      expect(hostile.streams).toBe(1);
    });

    it('a huge header list', async () => {
      const hostile = await startRawH2({
        onStream: (s) => {
          const fields: Array<[string, string]> = [[':status', '200']];
          for (let i = 0; i < 200; i++) fields.push([`x-h${i}`, 'v'.repeat(1000)]);
          const block = headerBlock(fields);
          // in 16 KB pieces: HEADERS then CONTINUATIONs
          const pieces: Buffer[] = [];
          for (let o = 0; o < block.length; o += 16_384) pieces.push(block.subarray(o, o + 16_384));
          pieces.forEach((p, i) => {
            const last = i === pieces.length - 1 ? 4 : 0;
            s.socket.write(frame(i === 0 ? FrameType.HEADERS : FrameType.CONTINUATION, last, s.id, p));
          });
        },
      });
      await costsOnlyItsOwn(hostile, 502);
    });

    it('trailers with forbidden fields: a pseudo-header resets the stream (the head is out: the client sees it cut)', async () => {
      const hostile = await startRawH2({
        onStream: (s) => {
          s.headers([[':status', '200']]);
          s.data(Buffer.from('partial'));
          s.trailers([
            [':status', '200'],
            ['x-ok', '1'],
          ]);
        },
      });
      const gw = await gatewayFor({ bad: { targets: [hostile.url], protocol: 'h2c', retries: { count: 0 } }, good: { targets: [good.url] } });
      cleanup.push(
        () => hostile.close(),
        () => gw.close(),
      );
      const bad = await request(`${gw.url}/bad/x`).catch((e: Error) => e);
      // the answer had started: cut, never presented as complete
      expect(bad instanceof Error || (bad as { status: number }).status === 502).toBe(true);
      expect((await request(`${gw.url}/good/y`)).status).toBe(200);
    });

    it('a SETTINGS flood', async () => {
      const hostile = await startRawH2({
        ackSettings: true,
        onStream: (s) => {
          const one = settings([[SETTINGS_INITIAL_WINDOW_SIZE, 65_535]]);
          s.socket.write(Buffer.concat(Array.from({ length: 20_000 }, () => one)));
        },
      });
      await costsOnlyItsOwn(hostile, 502);
    });

    it('a flow-control window never opened: the request times out, alone', async () => {
      const hostile = await startRawH2({ settings: settings([[SETTINGS_INITIAL_WINDOW_SIZE, 0]]), onStream: () => {} });
      await costsOnlyItsOwn(hostile, 504, { timeouts: { headersMs: 300 } });
    });

    it('a peer that stops answering PINGs: its session is dropped, the request fails, the next one reconnects', async () => {
      const hostile = await startRawH2({ ackPings: false, onStream: () => {} });
      await costsOnlyItsOwn(hostile, 502, { keepAlive: { pingIntervalMs: 50, pingTimeoutMs: 100 } });
    });
  });
});
