import net from 'node:net';
import { Readable } from 'node:stream';
import tls, { type ConnectionOptions } from 'node:tls';
import {
  UpstreamClientError,
  classifyErrorCode,
  type UpstreamErrorKind,
  type UpstreamRequestOptions,
  type UpstreamResponse,
} from '../../../core/contracts/upstream.js';
import type { Deadline } from './deadlines.js';
import { Framing, ParseError, ResponseParser, type HeadCache, type ParsedHead, type ResponseSink } from './parser.js';
import { INVALID_VALUE, TOKEN, type RequestHead } from './request-head.js';

const EMPTY = Buffer.alloc(0);

function noop(): void {}

/**
 * One read buffer for every plain-TCP upstream connection of the process: a read's callback runs to completion
 * before the next read is issued, so the bytes are always consumed (or copied) before they can be overwritten.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** What a connection needs from its pool. */
export interface ConnectionOwner {
  readonly connectTimeoutMs: number;
  /** the exchange is over (response complete, failed or abandoned): count it out */
  exchangeDone(ex: Exchange): void;
  /** the response head arrived: the headers deadline no longer applies */
  headArrived(ex: Exchange): void;
  /** the connection finished its exchange cleanly and may serve another */
  release(conn: H1Connection): void;
  /**
   * The exchange failed before its response head. `nothingReceived`: not one response byte had arrived (with a
   * reused connection, the keep-alive race).
   */
  failed(ex: Exchange, err: UpstreamClientError, nothingReceived: boolean): void;
  /** the socket closed (called once per connection) */
  closed(conn: H1Connection): void;
}

/** One request/response over the pool: waits in the queue, is written on a connection, streams its answer. */
export class Exchange implements Deadline {
  /** response-head deadline (ms epoch) and its links in the client's DeadlineList */
  deadline = 0;
  prev: Exchange | null = null;
  next: Exchange | null = null;
  linked = false;
  conn: H1Connection | null = null;
  /** the promise is settled (headers arrived or it failed) */
  settled = false;
  /** counted out of the client's in-flight requests */
  done = false;
  /** written on a connection that had served an earlier request (keep-alive race candidate) */
  reused = false;
  retried = false;
  body: H1Body | null = null;

  constructor(
    readonly o: UpstreamRequestOptions,
    readonly head: RequestHead,
    readonly resolve: (r: UpstreamResponse) => void,
    readonly reject: (e: unknown) => void,
  ) {}
}

/** A streamed response body: the socket's bytes with its backpressure; destroying it early kills the connection. */
export class H1Body extends Readable {
  /** the trailer section after a chunked body (name, value pairs), set before the body ends */
  trailerFields: string[] | null = null;

  constructor(
    private readonly conn: H1Connection,
    private readonly ex: Exchange,
  ) {
    super();
    // the consumer attaches its listeners a microtask after the head: an error in the same packet must wait for them
    this.on('error', noop);
  }

  override _read(): void {
    this.conn.resumeFor(this.ex);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.conn.bodyDestroyed(this.ex);
    cb(err);
  }
}

/**
 * A request's trailer section (without the blank line that ends it). The fields come filtered from the proxy
 * (core/proxy/trailers.ts: token names, values node:http would write); checked again here because nothing
 * else stands between them and the upstream's socket.
 */
function trailerSection(pairs: readonly string[]): string {
  let text = '';
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const name = pairs[i]!;
    const value = pairs[i + 1]!;
    if (!TOKEN.test(name) || INVALID_VALUE.test(value)) continue;
    text += `${name}: ${value}\r\n`;
  }
  return text;
}

/**
 * One keep-alive connection to the upstream: writes a request, feeds the socket's bytes to the response parser
 * and reports the outcome to its pool. Serves one exchange at a time (no pipelining).
 */
export class H1Connection implements ResponseSink {
  readonly socket: net.Socket;
  private readonly parser: ResponseParser;
  exchange: Exchange | null = null;
  /** false once the upstream said close, the socket ended, or the exchange ended out of step */
  reusable = true;
  served = 0;
  /** ms epoch when it went idle in the pool */
  idleSince = 0;
  /** longest idle time before the pool closes it (lowered by a Keep-Alive: timeout hint) */
  idleLimitMs: number;
  private connectTimer: NodeJS.Timeout | null = null;
  /** performance.now() when the connection was opened, then ms it took to connect (what the access log reports) */
  private connectMs = performance.now();
  /** the request body being sent, if any */
  private sending: { body: Readable; onData: (d: Buffer) => void; onEnd: () => void; onClose: () => void } | null = null;
  private gone = false;
  /** reads land in the shared READ_BUFFER: anything kept past the read callback must be copied */
  private volatile = false;

  constructor(
    private readonly owner: ConnectionOwner,
    origin: { host: string; port: number; secure: boolean; servername: string | undefined; tls: ConnectionOptions | undefined },
    idleMs: number,
    heads: HeadCache,
  ) {
    this.parser = new ResponseParser(this, heads);
    this.idleLimitMs = idleMs;
    if (origin.secure) {
      this.socket = tls.connect({ host: origin.host, port: origin.port, servername: origin.servername, ALPNProtocols: ['http/1.1'], ...origin.tls });
      this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    } else {
      // Plain TCP reads straight into a shared buffer: no Readable push/'data' per read. Bytes kept beyond the
      // callback are copied (see `volatile`).
      this.volatile = true;
      this.socket = net.connect({
        host: origin.host,
        port: origin.port,
        onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => this.onRead(n, buf) },
      });
    }
    const s = this.socket;
    s.setNoDelay(true);
    s.setKeepAlive(true, 30_000);
    this.connectTimer = setTimeout(() => {
      this.connectTimer = null;
      this.fail('connect-timeout', `connect timed out after ${owner.connectTimeoutMs} ms`);
    }, owner.connectTimeoutMs);
    s.once(origin.secure ? 'secureConnect' : 'connect', () => {
      this.connectMs = performance.now() - this.connectMs;
      if (this.connectTimer !== null) clearTimeout(this.connectTimer);
      this.connectTimer = null;
    });
    s.on('end', () => this.onEof());
    s.on('error', (err: NodeJS.ErrnoException) => this.fail(classifyErrorCode(err.code), err.message, err));
    s.on('close', () => this.onClose());
    s.on('timeout', () => this.fail('reset', `response body idle for ${this.exchange?.o.idleTimeoutMs ?? 0} ms`));
    s.on('drain', () => {
      if (this.sending !== null) this.sending.body.resume();
    });
  }

  get alive(): boolean {
    return !this.gone && this.reusable;
  }

  /** Write the exchange's request; its answer arrives through the parser callbacks. */
  begin(ex: Exchange): void {
    this.exchange = ex;
    ex.conn = this;
    ex.reused = this.served > 0;
    this.served++;
    this.parser.start(ex.o.method === 'HEAD');
    this.socket.write(ex.head.text, 'latin1');
    if (ex.o.body !== null) this.sendBody(ex.o.body, ex.head.chunked);
  }

  private sendBody(body: Readable, chunked: boolean): void {
    const s = this.socket;
    const onData = (d: Buffer): void => {
      if (d.length === 0) return;
      let ok: boolean;
      if (chunked) {
        s.write(`${d.length.toString(16)}\r\n`, 'latin1');
        s.write(d);
        ok = s.write('\r\n', 'latin1');
      } else {
        ok = s.write(d);
      }
      if (!ok) body.pause();
    };
    const onEnd = (): void => {
      if (chunked) {
        const trailers = this.exchange?.o.trailers?.() ?? null;
        s.write(trailers === null ? '0\r\n\r\n' : `0\r\n${trailerSection(trailers)}\r\n`, 'latin1');
      }
      this.stopSending();
    };
    // the client's request ended before its body did: the upstream would wait for bytes that never come
    const onClose = (): void => {
      if (this.sending !== null && this.sending.body === body) this.fail('reset', 'the client request body ended early');
    };
    this.sending = { body, onData, onEnd, onClose };
    // stays attached: the client's request may error (reset) long after this exchange let go of it
    if (body.listenerCount('error') === 0) body.on('error', noop);
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('close', onClose);
  }

  private stopSending(): void {
    const snd = this.sending;
    if (snd === null) return;
    this.sending = null;
    snd.body.removeListener('data', snd.onData);
    snd.body.removeListener('end', snd.onEnd);
    snd.body.removeListener('close', snd.onClose);
  }

  private onRead(n: number, buf: Uint8Array): boolean {
    this.onData((buf as Buffer).subarray(0, n));
    return true;
  }

  private onData(chunk: Buffer): void {
    if (this.exchange === null) {
      // bytes nobody asked for (or a close notice) on an idle connection: it is out of step
      this.reusable = false;
      this.socket.destroy();
      return;
    }
    try {
      this.parser.execute(chunk);
    } catch (err) {
      if (err instanceof ParseError) this.fail('protocol', `invalid upstream response: ${err.message}`, err);
      else throw err;
    }
  }

  onHead(head: ParsedHead, wholeBody: Buffer | null): void {
    const ex = this.exchange!;
    // keepAlive is also false after a HEAD answer or a bodiless status announcing a body (parser.ts parseHead):
    // bytes the upstream might still write would be read as the next exchange's answer
    if (!head.keepAlive || this.parser.reuseForbidden) this.reusable = false;
    if (head.keepAliveHintMs >= 0) {
      // the upstream announced when it closes idle connections: stop reusing a second before that
      const limit = head.keepAliveHintMs - 1000;
      if (limit <= 0) this.reusable = false;
      else if (limit < this.idleLimitMs) this.idleLimitMs = limit;
    }
    ex.settled = true;
    this.owner.headArrived(ex);
    ex.o.abort = null;
    let body: Readable | Buffer;
    if (wholeBody !== null) body = this.volatile ? Buffer.from(wholeBody) : wholeBody;
    else if (head.framing === Framing.None) body = EMPTY;
    else {
      const b = new H1Body(this, ex);
      ex.body = b;
      this.socket.setTimeout(ex.o.idleTimeoutMs);
      body = b;
      // only a chunked body can end with a trailer section
      if (head.framing === Framing.Chunked) {
        ex.resolve({ statusCode: head.statusCode, headers: head.headers, body, connectMs: ex.reused ? 0 : this.connectMs, trailers: () => b.trailerFields });
        return;
      }
    }
    ex.resolve({ statusCode: head.statusCode, headers: head.headers, body, connectMs: ex.reused ? 0 : this.connectMs });
  }

  onBody(chunk: Buffer): void {
    const b = this.exchange!.body!;
    // net.Socket#pause/resume also stop and restart reads in onread mode
    if (!b.push(this.volatile ? Buffer.from(chunk) : chunk)) this.socket.pause();
  }

  onEnd(trailing: boolean): void {
    const ex = this.exchange!;
    this.exchange = null;
    ex.conn = null;
    // still sending the request body, or bytes after the response: the connection cannot carry another exchange
    if (trailing || this.sending !== null) this.reusable = false;
    this.stopSending();
    if (ex.body !== null) {
      this.socket.setTimeout(0);
      ex.body.trailerFields = this.parser.trailerFields;
      ex.body.push(null);
    }
    this.owner.exchangeDone(ex);
    if (this.reusable && !this.gone) {
      // a lagging body consumer may have paused the socket in the read that also ended the response: what is
      // left of the body is in its Readable now, and the next exchange's answer must be read
      if (this.socket.isPaused()) this.socket.resume();
      this.owner.release(this);
    } else this.socket.destroy();
  }

  /** the body's consumer wants more */
  resumeFor(ex: Exchange): void {
    if (this.exchange === ex && this.socket.isPaused()) this.socket.resume();
  }

  /** The body was destroyed: before its end that abandons the exchange and the connection with it. */
  bodyDestroyed(ex: Exchange): void {
    if (this.exchange !== ex) return;
    this.exchange = null;
    ex.conn = null;
    this.parser.halt();
    this.stopSending();
    this.reusable = false;
    this.owner.exchangeDone(ex);
    this.socket.destroy();
  }

  /** The exchange in progress failed (timeout, abort, socket error, protocol error): the connection goes too. */
  fail(kind: UpstreamErrorKind, message: string, cause?: unknown): void {
    const ex = this.exchange;
    const nothingReceived = !this.parser.started;
    this.exchange = null;
    this.parser.halt();
    this.stopSending();
    this.reusable = false;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.socket.destroy();
    if (ex === null) return;
    ex.conn = null;
    const err = new UpstreamClientError(kind, message, cause);
    if (ex.body !== null) {
      // after the head: the streamed body breaks off (the proxy then aborts the client's response)
      this.owner.exchangeDone(ex);
      ex.body.destroy(err);
      return;
    }
    this.owner.failed(ex, err, nothingReceived);
  }

  private onEof(): void {
    this.reusable = false;
    if (this.exchange !== null && this.parser.finishAtEof()) return;
    if (this.exchange !== null) {
      const received = this.parser.started;
      this.fail('reset', received ? 'upstream closed the connection mid-response' : 'upstream closed the connection before responding');
    }
  }

  private onClose(): void {
    if (this.gone) return;
    this.gone = true;
    this.fail('reset', 'upstream connection closed');
    this.owner.closed(this);
  }
}
