import type { IncomingHttpHeaders } from 'node:http';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders as H2Headers, type OutgoingHttpHeaders } from 'node:http2';
import type { UpstreamConfig } from '../config/types.js';
import {
  BODY_TRAILERS,
  UpstreamClientError,
  classifyErrorCode,
  isReplayable,
  type TrailerCarrier,
  type UpstreamClient,
  type UpstreamClientOptions,
  type UpstreamErrorKind,
  type UpstreamRequestOptions,
  type UpstreamResponse,
} from '../contracts/upstream.js';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_FLAG_END_STREAM } = http2.constants;

/**
 * The HTTP/2 upstream client (upstream `protocol: "h2"` over TLS with ALPN, or `"h2c"` cleartext with prior
 * knowledge). It keeps the UpstreamClient contract (core/contracts/upstream.ts) the HTTP/1.1 variants keep, so
 * balancing, retries, breaker, health and timeouts in core/proxy/upstream.ts work unchanged; only the wire differs:
 *
 * - One target has up to `maxSockets` sessions. A stream goes to the first session with a free slot under the
 *   peer's SETTINGS_MAX_CONCURRENT_STREAMS; when every session is full another one is opened, and past
 *   `maxSockets` sessions requests wait in line (bounded by their headers timeout).
 * - A session that sent GOAWAY takes no new stream; those in flight finish on it. A stream the peer refused
 *   (REFUSED_STREAM, or above a GOAWAY's last stream id) was never processed (RFC 9113 §8.7), so it is sent again
 *   on another session whatever its method, as long as no byte of its request body was consumed.
 * - A PING goes out every `pingIntervalMs`; a session whose ack does not come within `pingTimeoutMs` is dead and
 *   destroyed (its streams fail, new ones go elsewhere). A session without streams for `idleMs` is closed.
 * - Flow control is node:http2's: a response body nobody reads stops being consumed, so its window stops opening
 *   and the upstream stops sending; a request body is piped with backpressure into the stream's window.
 * - A response body complete by the time the frames already read are processed (a small answer, usually in the
 *   head's read) is handed over whole as a Buffer, no trailers following: the proxy then writes head and body at
 *   once instead of piping a stream.
 * - Any other response body is the HTTP/2 stream itself (destroying it resets the stream with CANCEL). Its trailers
 *   are kept on it as they arrive (BODY_TRAILERS) and handed to the proxy's trailer relay (`trailers()`). An answer that ended with its HEADERS frame (a gRPC trailers-only
 *   answer) is handed over as an empty Buffer.
 */
export interface H2ClientOptions extends UpstreamClientOptions {
  /** h2c: cleartext with prior knowledge; otherwise TLS with ALPN h2 (`tls` applies) */
  cleartext: boolean;
  pingIntervalMs: number;
  pingTimeoutMs: number;
}

/** Stream and connection windows we grant the upstream: large enough for bulk bodies at loopback speed. */
const STREAM_WINDOW = 1 << 20;
const SESSION_WINDOW = 32 << 20;
/** Response head we accept: beyond it the stream is reset (a hostile upstream costs only that request). */
const MAX_HEADER_LIST_SIZE = 64 * 1024;
/** A refused stream is sent again at most this many times (each time on a session that did not refuse it). */
const MAX_REFUSED_RETRIES = 3;
/** Concurrent streams assumed for a peer that sets no limit (RFC 9113 recommends allowing at least 100). */
const UNLIMITED_STREAMS = 1000;

const EMPTY = Buffer.alloc(0);

/** Fields that must not be sent on HTTP/2 (RFC 9113 §8.2.2); Host becomes :authority. */
const NOT_ON_H2: Record<string, true> = Object.assign(Object.create(null) as Record<string, true>, {
  connection: true,
  'keep-alive': true,
  'proxy-connection': true,
  'transfer-encoding': true,
  upgrade: true,
  host: true,
  te: true,
});

function noop(): void {}

/** One HTTP/2 session to the target and the streams it carries. */
class H2Connection {
  readonly session: ClientHttp2Session;
  /** streams open on it */
  active = 0;
  /** the peer's first SETTINGS frame arrived: streams may start (up to `limit`) */
  ready = false;
  /** the peer's SETTINGS_MAX_CONCURRENT_STREAMS (capped) */
  limit = 0;
  /** exchanges started on it (a request on a session that served others may meet a peer closing it idle) */
  used = 0;
  /** GOAWAY received (or sent), or broken: no new streams */
  closing = false;
  /** it could not be opened (reported to the client once) */
  failed = false;
  /** ms spent connecting; reported on the first exchange only */
  connectMs = -1;
  private readonly startedAt = performance.now();
  private connectTimer: NodeJS.Timeout | null;
  private pingTimer: NodeJS.Timeout | null = null;
  /** a PING is out, its ack awaited */
  private checking = false;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly client: H2UpstreamClient,
    authority: string,
    private readonly opts: H2ClientOptions,
  ) {
    const settings = { enablePush: false, initialWindowSize: STREAM_WINDOW, maxHeaderListSize: MAX_HEADER_LIST_SIZE };
    this.session = http2.connect(authority, {
      settings,
      maxHeaderListPairs: 256,
      // unacknowledged PINGs: beyond it node:http2 ends the session
      maxOutstandingPings: 10,
      ...(opts.cleartext ? {} : { ...opts.tls, ALPNProtocols: ['h2'] }),
    });
    const s = this.session;
    this.connectTimer = setTimeout(() => this.fail('connect-timeout', `connect timed out after ${opts.connectTimeoutMs} ms`), opts.connectTimeoutMs);
    s.once('connect', () => {
      if (this.connectTimer !== null) clearTimeout(this.connectTimer);
      this.connectTimer = null;
      this.connectMs = performance.now() - this.startedAt;
      s.setLocalWindowSize(SESSION_WINDOW);
    });
    s.on('remoteSettings', (remote) => {
      const first = !this.ready;
      const max = remote.maxConcurrentStreams;
      this.limit = max === undefined || max > UNLIMITED_STREAMS ? UNLIMITED_STREAMS : max;
      // a peer may announce 0 (no streams for now): kept as "not usable" until it raises it
      if (first) {
        this.ready = true;
        this.startPings();
        this.client.connected();
      }
      this.client.slotsChanged();
    });
    s.on('goaway', () => {
      this.closing = true;
      this.client.slotsChanged();
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      // before the session was usable the waiting requests learn why; after, each stream gets its own error
      if (!this.ready) this.client.connectFailed(this, new UpstreamClientError(classifyFailure(err), err.message, err));
    });
    s.on('close', () => {
      this.closing = true;
      this.clearTimers();
      if (!this.ready) this.client.connectFailed(this, new UpstreamClientError('connect', 'session closed before it was ready'));
      this.client.removed(this);
    });
    s.unref();
  }

  /** Whether a new stream may start here now. */
  get free(): boolean {
    return this.ready && !this.closing && this.active < this.limit;
  }

  private fail(kind: UpstreamErrorKind, message: string): void {
    const err = new UpstreamClientError(kind, message);
    if (!this.ready) this.client.connectFailed(this, err);
    this.closing = true;
    this.session.destroy();
  }

  private startPings(): void {
    const interval = this.opts.pingIntervalMs;
    if (interval <= 0) return;
    const tick = (): void => {
      this.pingTimer = null;
      this.check(() => {
        if (!this.session.destroyed) this.pingTimer = setTimeout(tick, interval).unref();
      });
    };
    this.pingTimer = setTimeout(tick, interval).unref();
  }

  /**
   * PINGs the peer; without an ack within pingTimeoutMs the session is dead and destroyed (its streams fail). Also
   * run when a stream times out waiting for its head: a session node:http2 gave up on (it answered a malformed
   * frame with GOAWAY but keeps the socket) would otherwise keep taking streams that never leave.
   */
  check(then?: () => void): void {
    if (this.checking || this.session.destroyed) return;
    this.checking = true;
    const deadline = setTimeout(() => this.fail('reset', `no PING ack within ${this.opts.pingTimeoutMs} ms`), this.opts.pingTimeoutMs);
    deadline.unref();
    const acked = (): void => {
      this.checking = false;
      clearTimeout(deadline);
      then?.();
    };
    try {
      if (!this.session.ping((err) => (err === null ? acked() : undefined))) acked();
    } catch {
      acked();
    }
  }

  opened(): void {
    this.active++;
    this.used++;
    if (this.idleTimer !== null) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
  }

  closed(): void {
    this.active--;
    if (this.active === 0 && !this.closing) {
      this.idleTimer = setTimeout(() => {
        this.closing = true;
        this.session.close();
      }, this.opts.idleMs);
      this.idleTimer.unref();
    } else if (this.active === 0 && this.closing && !this.session.closed) {
      this.session.close();
    }
  }

  private clearTimers(): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    if (this.pingTimer !== null) clearTimeout(this.pingTimer);
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.connectTimer = this.pingTimer = this.idleTimer = null;
  }
}

function classifyFailure(err: NodeJS.ErrnoException): UpstreamErrorKind {
  const kind = classifyErrorCode(err.code);
  // ALPN settled on something else than h2: the upstream does not speak HTTP/2 on TLS
  if (err.code === 'ERR_HTTP2_ERROR' || err.code === 'ERR_HTTP2_SESSION_ERROR') return 'protocol';
  return kind;
}

/** One request: waits for a slot, sends, resolves at the response head; sent again when refused unprocessed. */
class H2Exchange {
  private settled = false;
  private readonly headersTimer: NodeJS.Timeout;
  private stream: ClientHttp2Stream | null = null;
  private conn: H2Connection | null = null;
  private refusedRetries = 0;
  /** a byte of the request body was consumed: the request can no longer be sent again */
  private bodyTouched = false;
  /** the peer closed the idle session as we reused it: one more try on a fresh one (replayable requests) */
  private mayRetryReset: boolean;
  /** the response head, once it arrived */
  private head: UpstreamResponse | null = null;
  /** the body's chunks while it is gathered (see onResponse), else null */
  private chunks: Buffer[] | null = null;

  constructor(
    private readonly client: H2UpstreamClient,
    private readonly o: UpstreamRequestOptions,
    private readonly resolve: (r: UpstreamResponse) => void,
    private readonly reject: (e: unknown) => void,
  ) {
    this.mayRetryReset = isReplayable(o.method, o.body !== null);
    this.headersTimer = setTimeout(() => {
      this.conn?.check();
      this.fail(new UpstreamClientError('headers-timeout', `no response headers within ${o.headersTimeoutMs} ms`));
    }, o.headersTimeoutMs);
    o.abort = () => this.fail(new UpstreamClientError('aborted', 'request aborted'));
    if (o.body !== null) {
      // paused until a stream takes it (pipe resumes it): a body read by nobody must not flow away
      o.body.pause();
      o.body.once('data', () => {
        this.bodyTouched = true;
      });
    }
  }

  /** Called by the client with a session that has a free slot. */
  run(conn: H2Connection): void {
    if (this.settled) return;
    const o = this.o;
    let stream: ClientHttp2Stream;
    try {
      stream = conn.session.request(h2RequestHeaders(o, this.client.scheme, this.client.host), { endStream: o.body === null });
    } catch (err) {
      this.fail(new UpstreamClientError('protocol', (err as Error).message, err));
      return;
    }
    const reused = conn.used > 0;
    conn.opened();
    this.client.inFlight++;
    this.stream = stream;
    this.conn = conn;
    stream.on('response', (headers, flags) => this.onResponse(stream, conn, headers, flags));
    stream.once('trailers', (trailers: H2Headers) => {
      (stream as TrailerCarrier)[BODY_TRAILERS] = trailers as IncomingHttpHeaders;
      // the proxy relays trailers from the stream (before its 'end'): a Buffer body could not carry them
      this.streamBody();
    });
    // stays attached for the stream's life: a late error (mid-body) must never be unhandled; the body's reader sees it
    stream.on('error', noop);
    stream.once('close', () => {
      conn.closed();
      this.client.inFlight--;
      this.client.slotsChanged();
      if (!this.settled && this.stream === stream) this.closedEarly(stream, conn, reused);
    });
    if (o.body !== null) o.body.pipe(stream);
  }

  /** The stream closed before its response head. */
  private closedEarly(stream: ClientHttp2Stream, conn: H2Connection, reused: boolean): void {
    this.stream = null;
    this.conn = null;
    const o = this.o;
    if (o.body !== null) o.body.unpipe(stream);
    const untouched = !this.bodyTouched && (o.body === null || !o.body.readableEnded);
    if (stream.rstCode === NGHTTP2_REFUSED_STREAM && untouched && this.refusedRetries < MAX_REFUSED_RETRIES) {
      this.refusedRetries++;
      // never processed: the session that refused it takes no more streams from us for now
      conn.closing = true;
      this.client.acquire(this);
      return;
    }
    if (reused && this.mayRetryReset && untouched) {
      this.mayRetryReset = false;
      conn.closing = true;
      this.client.acquire(this);
      return;
    }
    this.fail(new UpstreamClientError('reset', `stream closed before response headers (code ${stream.rstCode ?? 'none'})`));
  }

  private onResponse(stream: ClientHttp2Stream, conn: H2Connection, h2: H2Headers, flags: number): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.headersTimer);
    this.o.abort = null;
    const statusCode = Number(h2[':status']);
    const headers = Object.create(null) as IncomingHttpHeaders;
    for (const name in h2) {
      if (name.charCodeAt(0) === 58 /* : */) continue;
      headers[name] = h2[name] as string | string[];
    }
    const connectMs = conn.connectMs;
    // reported once: later exchanges on the session did not pay for it
    conn.connectMs = 0;
    this.head = {
      statusCode,
      headers,
      body: EMPTY,
      connectMs: connectMs < 0 ? 0 : connectMs,
      trailers: () => trailerPairs((stream as TrailerCarrier)[BODY_TRAILERS]),
    };
    if ((flags & NGHTTP2_FLAG_END_STREAM) !== 0) {
      this.resolve(this.head);
      return;
    }
    const type = headers['content-type'];
    if (typeof type === 'string' && type.startsWith('application/grpc')) {
      // a gRPC answer always ends in trailers, which travel on the stream: gathering would only delay it
      const idleMs = this.o.idleTimeoutMs;
      stream.setTimeout(idleMs, () => stream.destroy(new UpstreamClientError('headers-timeout', `response body idle for ${idleMs} ms`)));
      this.head.body = stream;
      this.resolve(this.head);
      return;
    }
    // The body's DATA usually came in the same read as the head: it is gathered until the client's next pass
    // (flushGathered) and handed over whole as a Buffer, which spares the proxy a stream pipe for the response.
    this.chunks = [];
    stream.on('data', this.gather);
    stream.once('end', this.gathered);
    this.client.gatherUntilFlush(this);
  }

  /** A chunk of a body still being gathered. */
  private readonly gather = (chunk: Buffer): void => {
    this.chunks!.push(chunk);
  };

  /** The whole body came with the head: handed over as one Buffer (its trailers too would need the stream). */
  private readonly gathered = (): void => {
    const chunks = this.chunks!;
    const head = this.head!;
    this.chunks = null;
    this.stream!.removeListener('data', this.gather);
    head.body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    this.resolve(head);
  };

  /**
   * The body is still coming (or it carries trailers, which the proxy relays from the stream): the stream is
   * handed over as the body, with what was gathered put back in front.
   */
  streamBody(): void {
    const chunks = this.chunks;
    if (chunks === null) return;
    this.chunks = null;
    const stream = this.stream!;
    stream.removeListener('data', this.gather);
    stream.removeListener('end', this.gathered);
    stream.pause();
    if (chunks.length > 0 && !stream.destroyed) stream.unshift(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    const idleMs = this.o.idleTimeoutMs;
    stream.setTimeout(idleMs, () => stream.destroy(new UpstreamClientError('headers-timeout', `response body idle for ${idleMs} ms`)));
    const head = this.head!;
    head.body = stream;
    this.resolve(head);
  }

  fail(err: UpstreamClientError): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.headersTimer);
    this.o.abort = null;
    this.client.dequeue(this);
    const stream = this.stream;
    if (stream !== null) {
      if (this.o.body !== null) this.o.body.unpipe(stream);
      if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
    }
    this.reject(err);
  }

  /** The session chosen for this request could not be opened. */
  connectFailed(err: UpstreamClientError): void {
    this.fail(err);
  }
}

/** A trailer section as name, value pairs as received (the proxy filters them, core/proxy/trailers.ts). */
function trailerPairs(t: IncomingHttpHeaders | undefined): readonly string[] | null {
  if (t === undefined) return null;
  const out: string[] = [];
  for (const name in t) {
    const v = t[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.push(name, x);
    else out.push(name, v);
  }
  return out.length === 0 ? null : out;
}

/** The request head on HTTP/2: pseudo-headers first, connection-specific fields dropped (RFC 9113 §8.2.2, §8.3.1). */
function h2RequestHeaders(o: UpstreamRequestOptions, scheme: string, authority: string): OutgoingHttpHeaders {
  const src = o.headers;
  const host = src.host;
  const out: OutgoingHttpHeaders = {
    ':method': o.method,
    ':path': o.path,
    ':scheme': scheme,
    ':authority': typeof host === 'string' ? host : (host?.[0] ?? authority),
  };
  for (const name in src) {
    if (NOT_ON_H2[name] === true) continue;
    out[name] = src[name];
  }
  // gRPC servers require it (the one TE value HTTP/2 allows): the gateway relays trailers
  const ct = src['content-type'];
  if (typeof ct === 'string' && ct.startsWith('application/grpc')) out.te = 'trailers';
  return out;
}

export class H2UpstreamClient implements UpstreamClient {
  inFlight = 0;
  readonly scheme: string;
  /** host[:port] of the origin: :authority when the request carries no Host */
  readonly host: string;
  private readonly authority: string;
  private readonly conns: H2Connection[] = [];
  /** requests waiting for a slot, oldest first */
  private readonly queue: H2Exchange[] = [];
  /** sessions opened but not yet usable */
  private pending = 0;
  /** exchanges whose response body is being gathered until the next flushGathered */
  private gathering: H2Exchange[] = [];
  private readonly flushGathered = (): void => {
    const list = this.gathering;
    this.gathering = [];
    for (let i = 0; i < list.length; i++) list[i]!.streamBody();
  };
  private closed = false;

  constructor(
    origin: URL,
    private readonly opts: H2ClientOptions,
  ) {
    this.scheme = opts.cleartext ? 'http' : 'https';
    this.host = origin.host;
    this.authority = `${this.scheme}://${origin.host}`;
  }

  request(o: UpstreamRequestOptions): Promise<UpstreamResponse> {
    if (this.closed) return Promise.reject(new UpstreamClientError('connect', 'client closed'));
    return new Promise((resolve, reject) => this.acquire(new H2Exchange(this, o, resolve, reject)));
  }

  /** Runs the exchange on a session with a free slot, or queues it (opening a session when allowed). */
  acquire(x: H2Exchange): void {
    const conns = this.conns;
    for (let i = 0; i < conns.length; i++) {
      const c = conns[i]!;
      if (c.free) {
        x.run(c);
        return;
      }
    }
    this.queue.push(x);
    this.grow();
  }

  /** Opens sessions while requests wait and no opening one will take them (bounded by maxSockets). */
  private grow(): void {
    if (this.closed) return;
    // a session being opened is expected to take at least the queue's first 100 requests (RFC 9113 §6.5.2)
    if (this.queue.length <= this.pending * 100) return;
    let live = 0;
    for (const c of this.conns) if (!c.closing) live++;
    if (live >= this.opts.maxSockets) return;
    this.pending++;
    this.conns.push(new H2Connection(this, this.authority, this.opts));
  }

  /** A slot was freed, a session became usable or changed its limits: hand waiting requests over. */
  slotsChanged(): void {
    const q = this.queue;
    if (q.length === 0) return;
    for (const c of this.conns) {
      while (q.length > 0 && c.free) q.shift()!.run(c);
    }
    if (q.length > 0) this.grow();
  }

  /**
   * Holds an answer's body until every frame already read has been processed (setImmediate runs after the poll
   * phase's reads): a body complete by then is handed over whole, any other as the stream.
   */
  gatherUntilFlush(x: H2Exchange): void {
    if (this.gathering.push(x) === 1) setImmediate(this.flushGathered);
  }

  dequeue(x: H2Exchange): void {
    const i = this.queue.indexOf(x);
    if (i !== -1) this.queue.splice(i, 1);
  }

  /** A session failed before it was usable: with no other one on the way, the waiting requests fail with it. */
  connectFailed(c: H2Connection, err: UpstreamClientError): void {
    // reported once per session
    if (c.ready || c.failed) return;
    c.failed = true;
    this.pending--;
    if (this.pending > 0) return;
    const waiting = this.queue.splice(0);
    for (const x of waiting) x.connectFailed(err);
  }

  /** A session became usable. */
  connected(): void {
    this.pending--;
  }

  removed(c: H2Connection): void {
    const i = this.conns.indexOf(c);
    if (i !== -1) this.conns.splice(i, 1);
    this.slotsChanged();
  }

  /** Sessions and streams, for tests and stats. */
  sessions(): Array<{ active: number; limit: number; closing: boolean }> {
    return this.conns.map((c) => ({ active: c.active, limit: c.limit, closing: c.closing }));
  }

  async close(): Promise<void> {
    this.closed = true;
    const closing: Array<Promise<void>> = [];
    for (const c of this.conns) {
      c.closing = true;
      if (c.session.closed) continue;
      closing.push(new Promise((r) => c.session.close(r)));
    }
    await Promise.all(closing);
  }
}

export function createH2UpstreamClient(origin: URL, opts: H2ClientOptions): H2UpstreamClient {
  return new H2UpstreamClient(origin, opts);
}

/**
 * A protocol must fit its targets' scheme: `h2` negotiates HTTP/2 by ALPN, so over TLS (https://, or dns+srv://
 * with a `tls` block); `h2c` is cleartext (http://, or dns+srv:// without `tls`).
 */
export function upstreamProtocolErrors(upstreams: Record<string, UpstreamConfig>): string[] {
  const errors: string[] = [];
  for (const [name, u] of Object.entries(upstreams)) {
    if (u.protocol === 'http1') continue;
    const at = `/upstreams/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    u.targets.forEach((t, i) => {
      const secure = t.url.startsWith('https:') || (t.url.startsWith('dns+srv:') && u.tls !== undefined);
      if (u.protocol === 'h2' && !secure) {
        errors.push(`${at}/targets/${i}: protocol "h2" needs an https:// target (HTTP/2 is negotiated by TLS ALPN); use "h2c" for cleartext`);
      } else if (u.protocol === 'h2c' && secure) {
        errors.push(`${at}/targets/${i}: protocol "h2c" is cleartext HTTP/2 and needs an http:// target; use "h2" for TLS`);
      }
    });
  }
  return errors;
}
