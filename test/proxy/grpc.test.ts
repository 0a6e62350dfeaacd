import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { callPath, echoClient, grpc, startEchoServer, unary, type EchoClientT, type GrpcServer, type Msg } from '../support/grpc.js';
import { closedPortUrl } from '../support/upstream.js';
import { until } from '../support/wait.js';
import { h2UpstreamClient } from './helpers.js';

/**
 * gRPC end to end with real peers: a @grpc/grpc-js client talks HTTP/2 to the gateway (cleartext h2c listener),
 * which forwards to a @grpc/grpc-js server over an `h2c` upstream. Every call kind, trailers with binary metadata,
 * deadlines and cancellation from both sides, a 10 MB message, 1,000 concurrent calls on one connection, an
 * upstream killed mid-stream, and every answer the gateway makes itself read by the client as a gRPC status.
 */

type Streaming = grpc.ClientReadableStream<Msg> & grpc.ClientWritableStream<Msg>;
const call = (client: EchoClientT, method: string, ...args: unknown[]): Streaming =>
  (client as unknown as Record<string, (...a: unknown[]) => Streaming>)[method]!.call(client, ...args);

/** Collects a server-streaming or bidi call's messages and final status. */
function collect(stream: grpc.ClientReadableStream<Msg>): Promise<{ messages: Msg[]; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    const messages: Msg[] = [];
    stream.on('data', (m: Msg) => messages.push(m));
    stream.on('error', () => {});
    stream.on('status', (status: grpc.StatusObject) => resolve({ messages, status }));
  });
}

const SECRET_KEY = 'k-grpc';
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

describe('gRPC through the gateway (h2c listener, h2c upstream)', () => {
  let svc: GrpcServer;
  let limited: GrpcServer;
  let gw: RunningGateway;
  let client: EchoClientT;
  let gatewayAddress: string;

  beforeAll(async () => {
    svc = await startEchoServer();
    limited = await startEchoServer(undefined, { 'grpc.max_concurrent_streams': 100 });
    const dead = await closedPortUrl();
    gw = await startGateway({
      server: { host: '127.0.0.1', http2: 'h2c', http2Limits: { maxConcurrentStreams: 1000 } },
      admin: { enabled: false },
      logging: { level: 'silent', accessLog: false },
      plugins: [
        { name: 'request-id', options: {} },
        { name: 'tracing', options: { exporter: 'memory', serviceName: 'gw-grpc' } },
      ],
      upstreams: {
        echo: { targets: [svc.url], protocol: 'h2c' },
        // sessions kept while the test counts them
        limited: { targets: [limited.url], protocol: 'h2c', keepAlive: { idleMs: 120_000 } },
        dead: { targets: [dead], protocol: 'h2c', retries: { count: 0 }, circuitBreaker: { minRequests: 2, failureRatio: 0.5, openMs: 60_000 } },
        slow: { targets: [svc.url], protocol: 'h2c', timeouts: { headersMs: 150 } },
      },
      routes: [
        // the same service under several prefixes, each with the gateway feature under test in front of it
        { path: '/limited/*', upstream: 'limited', stripPrefix: '/limited' },
        { path: '/dead/*', upstream: 'dead', stripPrefix: '/dead' },
        { path: '/slow/*', upstream: 'slow', stripPrefix: '/slow' },
        {
          path: '/auth/*',
          upstream: 'echo',
          stripPrefix: '/auth',
          plugins: [{ name: 'auth', options: { apiKey: { header: 'x-api-key', keys: [sha(SECRET_KEY)] } } }],
        },
        { path: '/rate/*', upstream: 'echo', stripPrefix: '/rate', plugins: [{ name: 'rate-limit', options: { limit: 1, windowMs: 60_000 } }] },
        { path: '/cors/*', upstream: 'echo', stripPrefix: '/cors', plugins: [{ name: 'cors', options: { origins: ['https://app.example'] } }] },
        { path: '/gzip/*', upstream: 'echo', stripPrefix: '/gzip', plugins: [{ name: 'compression', options: { thresholdBytes: 0 } }] },
        { path: '/gwtest.Echo/*', upstream: 'echo' },
      ],
    });
    gatewayAddress = `127.0.0.1:${gw.port}`;
    client = echoClient(gatewayAddress);
  });
  afterAll(async () => {
    client?.close();
    await gw?.close();
    await svc?.close();
    await limited?.close();
  });

  it('unary: the answer and its trailers', async () => {
    const r = await unary(client, { text: 'hi' });
    expect(r.msg.text).toBe('echo:hi');
    expect(r.trailers.get('x-trailer')).toEqual(['unary']);
  });

  it('a status from the service, with its message and -bin metadata, reaches the client', async () => {
    const err = (await unary(client, { status: grpc.status.NOT_FOUND }).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    expect(err.details).toBe('status 5 as asked');
    expect(err.metadata.get('x-detail')).toEqual(['from the service']);
    expect(err.metadata.get('x-detail-bin')).toEqual([Buffer.from([0, 1, 2, 255])]);
  });

  it('server streaming', async () => {
    const r = await collect(call(client, 'serverStream', { text: 's', count: 50 }));
    expect(r.status.code).toBe(grpc.status.OK);
    expect(r.messages.map((m) => m.text)).toEqual(Array.from({ length: 50 }, (_, i) => `s#${i}`));
  });

  it('server streaming that ends in an error status after messages', async () => {
    const r = await collect(call(client, 'serverStream', { text: 's', count: 3, status: grpc.status.ABORTED }));
    expect(r.messages).toHaveLength(3);
    expect(r.status.code).toBe(grpc.status.ABORTED);
    expect(r.status.metadata.get('x-detail-bin')).toEqual([Buffer.from([0, 1, 2, 255])]);
  });

  it('client streaming', async () => {
    const answer = await new Promise<Msg>((resolve, reject) => {
      const s = call(client, 'clientStream', (err: grpc.ServiceError | null, m: Msg) => (err ? reject(err) : resolve(m)));
      for (let i = 0; i < 20; i++) s.write({ text: String(i), data: Buffer.alloc(1000) });
      s.end();
    });
    expect(answer.text).toBe(Array.from({ length: 20 }, (_, i) => String(i)).join(','));
    expect(answer.count).toBe(20_000);
  });

  it('bidirectional: each message answered in turn, with backpressure (64 MB through a 1 MB-windowed hop)', async () => {
    const s = call(client, 'bidi');
    const done = collect(s);
    const chunk = Buffer.alloc(1 << 20, 7);
    let answered = 0;
    s.on('data', () => answered++);
    // one message at a time: the next goes when the last came back, so the test reads the flow, not a burst
    for (let i = 0; i < 64; i++) {
      s.write({ text: String(i), data: chunk });
      await until(() => answered > i, { timeoutMs: 20_000, message: `message ${i} never came back` });
    }
    s.end();
    const r = await done;
    expect(r.status.code).toBe(grpc.status.OK);
    expect(r.messages.map((m) => m.text)).toEqual(Array.from({ length: 64 }, (_, i) => `echo:${i}`));
    expect(r.messages.every((m) => m.data!.length === 1 << 20)).toBe(true);
  });

  it('backpressure: a client that stops reading stops the service writing (flow control across both hops)', async () => {
    svc.record.flowWritten = 0;
    const c = echoClient(gatewayAddress);
    try {
      const s = call(c, 'serverStream', { text: 'flow', count: 2000, data: Buffer.alloc(64 * 1024) });
      s.on('error', () => {});
      await new Promise<void>((r) => s.once('data', () => r()));
      s.pause();
      // the service fills every window and buffer on the way, then waits: the count settles far below 2,000
      let last = -1;
      await until(
        async () => {
          const now = svc.record.flowWritten;
          const settled = now === last;
          last = now;
          if (!settled) await new Promise((r) => setTimeout(r, 300));
          return settled;
        },
        { timeoutMs: 20_000, message: 'the service never stopped writing' },
      );
      // without backpressure all 2,000 (128 MB) would be written at once; the windows and buffers on the way hold MBs
      expect(svc.record.flowWritten).toBeLessThan(600);
      const before = svc.record.flowWritten;
      s.resume();
      await until(() => svc.record.flowWritten > before + 50, { timeoutMs: 20_000, message: 'reading again did not resume the service' });
      s.cancel();
    } finally {
      c.close();
    }
  });

  it('a 10 MB message each way', async () => {
    const data = Buffer.alloc(10 << 20);
    for (let i = 0; i < data.length; i += 4096) data[i] = i & 0xff;
    const r = await unary(client, { text: 'big', data });
    expect(r.msg.data!.length).toBe(data.length);
    expect(Buffer.compare(r.msg.data!, data)).toBe(0);
  });

  it('1,000 concurrent calls on one client connection, to an upstream allowing 100 streams per connection', async () => {
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    try {
      const results = await Promise.all(
        Array.from({ length: 1000 }, (_, i) => rawUnary(session, '/limited/gwtest.Echo/Unary', { text: String(i), delayMs: 50 })),
      );
      expect(results.filter((r) => r.status === '0')).toHaveLength(1000);
      const h2 = h2UpstreamClient(gw, 'limited');
      // the peer's limit held: its 1,000 streams needed at least ten sessions, none refused
      expect(h2.sessions().length).toBeGreaterThanOrEqual(10);
      expect(h2.sessions().every((s) => s.limit === 100)).toBe(true);
    } finally {
      session.close();
    }
  });

  it('the client deadline: DEADLINE_EXCEEDED, and the service sees the call cancelled', async () => {
    const before = svc.record.cancelled;
    const err = (await unary(client, { text: 'late', delayMs: 3000 }, { deadlineMs: 200 }).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await until(() => svc.record.cancelled > before, { message: 'the service never saw the cancellation' });
  });

  it('grpc-timeout is the upstream deadline: the gateway ends the call with DEADLINE_EXCEEDED itself', async () => {
    // a raw HTTP/2 client with no timer of its own: only the gateway can end this call
    const unaryR = await rawUnary(gw.port, '/gwtest.Echo/Unary', { text: 'late', delayMs: 5000 }, { 'grpc-timeout': '200m' });
    // the gateway's own answer (the service would enforce the deadline too, a moment later)
    expect(unaryR).toMatchObject({ status: String(grpc.status.DEADLINE_EXCEEDED), message: 'GW_ERR_UPSTREAM_TIMEOUT', trailersOnly: true });
    const streamR = await rawUnary(gw.port, '/gwtest.Echo/ServerStream', { text: 's', count: 100, delayMs: 50 }, { 'grpc-timeout': '300m' });
    expect(streamR.status).toBe(String(grpc.status.DEADLINE_EXCEEDED));
    expect(streamR.frames).toBeGreaterThan(0);
  });

  it('the client cancels a stream: the service sees it cancelled', async () => {
    const before = svc.record.cancelled;
    const s = call(client, 'serverStream', { text: 'c', count: 10_000, delayMs: 10 });
    s.on('error', () => {});
    await new Promise<void>((r) => s.once('data', () => r()));
    s.cancel();
    await until(() => svc.record.cancelled > before, { message: 'the service never saw the cancellation' });
  });

  it('the upstream killed mid-stream: the client gets UNAVAILABLE, nothing hangs', async () => {
    const doomed = await startEchoServer();
    const g = await startGateway({
      server: { host: '127.0.0.1', http2: 'h2c' },
      admin: { enabled: false },
      logging: { level: 'silent', accessLog: false },
      upstreams: { echo: { targets: [doomed.url], protocol: 'h2c' } },
      routes: [{ path: '/gwtest.Echo/*', upstream: 'echo' }],
    });
    const c = echoClient(`127.0.0.1:${g.port}`);
    try {
      const s = call(c, 'serverStream', { text: 'k', count: 100_000, delayMs: 5 });
      const done = collect(s);
      await new Promise<void>((r) => s.once('data', () => r()));
      doomed.kill();
      const r = await done;
      expect(r.status.code).toBe(grpc.status.UNAVAILABLE);
      // and the next call, with the service gone, is refused the same way
      const err = (await unary(c, { text: 'x' }).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      c.close();
      await g.close();
    }
  });

  describe('answers the gateway makes itself are gRPC statuses (trailers-only), never an HTTP body', () => {
    it('no route: UNIMPLEMENTED', async () => {
      const r = await rawUnary(gw.port, '/nowhere.Svc/Call', { text: 'x' });
      expect(r).toMatchObject({ httpStatus: 200, status: String(grpc.status.UNIMPLEMENTED), message: 'GW_ERR_NO_ROUTE', trailersOnly: true, frames: 0 });
    });

    it('upstream down: UNAVAILABLE; then the breaker opens: UNAVAILABLE', async () => {
      const first = await rawUnary(gw.port, '/dead/gwtest.Echo/Unary', { text: 'x' });
      expect(first).toMatchObject({ status: String(grpc.status.UNAVAILABLE), message: 'GW_ERR_UPSTREAM_CONNECT', trailersOnly: true });
      await rawUnary(gw.port, '/dead/gwtest.Echo/Unary', { text: 'x' });
      const open = await rawUnary(gw.port, '/dead/gwtest.Echo/Unary', { text: 'x' });
      expect(open).toMatchObject({ status: String(grpc.status.UNAVAILABLE), message: 'GW_ERR_UPSTREAM_UNAVAILABLE', trailersOnly: true });
    });

    it('upstream timeout: DEADLINE_EXCEEDED', async () => {
      const r = await rawUnary(gw.port, '/slow/gwtest.Echo/Unary', { text: 'x', delayMs: 2000 });
      expect(r).toMatchObject({ status: String(grpc.status.DEADLINE_EXCEEDED), message: 'GW_ERR_UPSTREAM_TIMEOUT', trailersOnly: true });
    });

    it('unauthenticated: UNAUTHENTICATED; with the key the call goes through', async () => {
      const r = await rawUnary(gw.port, '/auth/gwtest.Echo/Unary', { text: 'x' });
      expect(r).toMatchObject({ status: String(grpc.status.UNAUTHENTICATED), trailersOnly: true, frames: 0 });
      const ok = await rawUnary(gw.port, '/auth/gwtest.Echo/Unary', { text: 'x' }, { 'x-api-key': SECRET_KEY });
      expect(ok.status).toBe('0');
    });

    it('rate limited: RESOURCE_EXHAUSTED', async () => {
      expect((await rawUnary(gw.port, '/rate/gwtest.Echo/Unary', { text: 'x' })).status).toBe('0');
      const r = await rawUnary(gw.port, '/rate/gwtest.Echo/Unary', { text: 'x' });
      expect(r).toMatchObject({ status: String(grpc.status.RESOURCE_EXHAUSTED), trailersOnly: true, frames: 0 });
      expect(r.headers['retry-after']).toBeDefined();
    });

    it('grpc-js reads them as statuses', async () => {
      const err = await callPath(gatewayAddress, grpc.credentials.createInsecure(), '/nowhere.Svc/Call');
      expect(err!.code).toBe(grpc.status.UNIMPLEMENTED);
      expect(err!.details).toBe('GW_ERR_NO_ROUTE');
    });
  });

  describe('the gateway features keep working on gRPC routes', () => {
    it('request-id and tracing reach the service and the client', async () => {
      const r = await rawUnary(gw.port, '/gwtest.Echo/Unary', { text: 'id' });
      expect(r.status).toBe('0');
      expect(r.headers['x-request-id']).toMatch(/.+/);
      const md = svc.record.metadata.at(-1)!;
      expect(md.get('x-request-id')).toEqual([r.headers['x-request-id']]);
      expect(String(md.get('traceparent')[0])).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    });

    it('compression leaves gRPC answers alone (gRPC compresses per message)', async () => {
      const r = await rawUnary(gw.port, '/gzip/gwtest.Echo/Unary', { text: 'x'.repeat(2000) }, { 'accept-encoding': 'gzip' });
      expect(r.status).toBe('0');
      expect(r.headers['content-encoding']).toBeUndefined();
    });

    it('CORS headers on a gRPC answer', async () => {
      const r = await rawUnary(gw.port, '/cors/gwtest.Echo/Unary', { text: 'x' }, { origin: 'https://app.example' });
      expect(r.status).toBe('0');
      expect(r.headers['access-control-allow-origin']).toBe('https://app.example');
    });
  });
});

/** A length-prefixed gRPC message of the Echo Msg (text, data, count, delay_ms), encoded by hand. */
function encodeMsg(m: Msg): Buffer {
  const parts: Buffer[] = [];
  const varint = (n: number): Buffer => {
    const out: number[] = [];
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
    return Buffer.from(out);
  };
  const bytesField = (tag: number, b: Buffer): void => void parts.push(Buffer.from([(tag << 3) | 2]), varint(b.length), b);
  const intField = (tag: number, n: number): void => void parts.push(Buffer.from([tag << 3]), varint(n));
  if (m.text !== undefined) bytesField(1, Buffer.from(m.text));
  if (m.data !== undefined) bytesField(2, m.data);
  if (m.count !== undefined) intField(3, m.count);
  if (m.delayMs !== undefined) intField(4, m.delayMs);
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

interface RawAnswer {
  httpStatus: number;
  headers: http2.IncomingHttpHeaders;
  /** grpc-status, from the trailers or (trailers-only) the head */
  status: string | undefined;
  message: string | undefined;
  /** the head ended the stream: a trailers-only answer */
  trailersOnly: boolean;
  /** DATA bytes received */
  frames: number;
}

/**
 * One gRPC call without a client library (what is on the wire is what is asserted), on a fresh HTTP/2 connection
 * to the port or on the given session.
 */
function rawUnary(to: number | http2.ClientHttp2Session, path: string, m: Msg, extra: Record<string, string> = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const own = typeof to === 'number';
    const session = own ? http2.connect(`http://127.0.0.1:${to}`) : to;
    if (own) session.on('error', reject);
    const s = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra });
    const out: RawAnswer = { httpStatus: 0, headers: {}, status: undefined, message: undefined, trailersOnly: false, frames: 0 };
    s.on('response', (h, flags) => {
      out.httpStatus = Number(h[':status']);
      out.headers = h;
      out.trailersOnly = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      if (out.trailersOnly) {
        out.status = h['grpc-status'] as string;
        out.message = h['grpc-message'] as string;
      }
    });
    s.on('trailers', (t) => {
      out.status = t['grpc-status'] as string;
      out.message = t['grpc-message'] as string;
    });
    s.on('data', (d: Buffer) => (out.frames += d.length));
    s.on('error', reject);
    s.on('close', () => {
      if (own) session.close();
      resolve(out);
    });
    s.end(encodeMsg(m));
  });
}
