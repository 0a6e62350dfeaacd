import net from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import {
  UpstreamClientError,
  isReplayable,
  type UpstreamClient,
  type UpstreamClientFactory,
  type UpstreamClientOptions,
  type UpstreamRequestOptions,
  type UpstreamResponse,
} from '../../../core/contracts/upstream.js';
import { Exchange, H1Connection, type ConnectionOwner } from './connection.js';
import { DeadlineList } from './deadlines.js';
import { HeadCache } from './parser.js';
import { InvalidRequestError, serializeRequestHead, type RequestHead } from './request-head.js';

/**
 * The abort hook for one exchange, built outside the promise executor on purpose: a closure created inside it
 * captures the executor's context (resolve, reject, the options), and with it in place V8 promoted ~450 KB per
 * scavenge to old space under load (measured with --trace-gc-nvp: 450 KB vs 28 KB, 30.7k vs 36.7k req/s).
 */
function abortHook(client: H1UpstreamClient, ex: Exchange): () => void {
  return () => client.abandon(ex, 'aborted', 'request aborted');
}

/**
 * The gateway's own HTTP/1.1 client: a LIFO pool of keep-alive sockets per target, a hand-written response
 * parser (./parser.ts), and no per-request stream, emitter or AbortSignal. A response whose whole body arrives
 * with its head (the common small API answer) is handed over as one Buffer; longer bodies stream with
 * backpressure. Exists because node:http's client and undici cost most of a proxied request's CPU
 * (see README "Performance" and reports/latest/upstream-clients).
 */
class H1UpstreamClient implements UpstreamClient, ConnectionOwner {
  inFlight = 0;
  /** a chunked request body ends with the proxy's trailer fields (connection.ts sendBody) */
  readonly sendsRequestTrailers = true;
  readonly connectTimeoutMs: number;
  private readonly origin: { host: string; port: number; secure: boolean; servername: string | undefined; tls: ConnectionOptions | undefined };
  /** idle connections, most recently used last (LIFO: the rest age out) */
  private readonly idle: H1Connection[] = [];
  /** exchanges waiting for a connection (maxSockets reached) */
  private readonly queue: Exchange[] = [];
  private total = 0;
  private sweeper: NodeJS.Timeout | null = null;
  private closing: (() => void) | null = null;
  private isClosed = false;
  /** shared by this target's connections */
  private readonly heads = new HeadCache();
  private readonly deadlines = new DeadlineList<Exchange>((ex) =>
    this.abandon(ex, 'headers-timeout', `no response headers within ${ex.o.headersTimeoutMs} ms`),
  );

  constructor(
    origin: URL,
    private readonly opts: UpstreamClientOptions,
  ) {
    const secure = origin.protocol === 'https:';
    // URL keeps IPv6 literals bracketed; net.connect wants them bare
    const host = origin.hostname.startsWith('[') ? origin.hostname.slice(1, -1) : origin.hostname;
    this.origin = {
      host,
      port: origin.port === '' ? (secure ? 443 : 80) : Number(origin.port),
      secure,
      servername: secure && net.isIP(host) === 0 ? host : undefined,
      tls: opts.tls,
    };
    this.connectTimeoutMs = opts.connectTimeoutMs;
  }

  request(o: UpstreamRequestOptions): Promise<UpstreamResponse> {
    let head: RequestHead;
    try {
      head = serializeRequestHead(o);
    } catch (err) {
      if (err instanceof InvalidRequestError) return Promise.reject(new UpstreamClientError('protocol', err.message, err));
      throw err;
    }
    if (this.isClosed) return Promise.reject(new UpstreamClientError('connect', 'upstream client closed'));
    return new Promise<UpstreamResponse>((resolve, reject) => {
      const ex = new Exchange(o, head, resolve, reject);
      this.inFlight++;
      this.deadlines.add(ex, Date.now() + o.headersTimeoutMs);
      o.abort = abortHook(this, ex);
      this.dispatch(ex, false);
    });
  }

  private dispatch(ex: Exchange, fresh: boolean): void {
    if (!fresh) {
      const idle = this.idle;
      while (idle.length > 0) {
        const c = idle.pop()!;
        if (c.alive) {
          c.begin(ex);
          return;
        }
      }
    }
    if (this.total < this.opts.maxSockets) {
      this.total++;
      new H1Connection(this, this.origin, this.opts.idleMs, this.heads).begin(ex);
      return;
    }
    this.queue.push(ex);
  }

  /** Timeout or abort before the response head: fail the exchange wherever it is (queue or connection). */
  abandon(ex: Exchange, kind: 'headers-timeout' | 'aborted', message: string): void {
    if (ex.settled) return;
    if (ex.conn !== null) {
      ex.conn.fail(kind, message);
      return;
    }
    const i = this.queue.indexOf(ex);
    if (i !== -1) this.queue.splice(i, 1);
    this.settleFailed(ex, new UpstreamClientError(kind, message));
  }

  failed(ex: Exchange, err: UpstreamClientError, nothingReceived: boolean): void {
    if (ex.settled) return;
    // keep-alive race: the upstream closed this idle connection as we reused it and nothing came back, so a
    // bodiless idempotent request is repeated once, on a new connection
    if (err.kind === 'reset' && ex.reused && nothingReceived && !ex.retried && ex.o.body === null && isReplayable(ex.o.method, false) && !this.isClosed) {
      ex.retried = true;
      this.dispatch(ex, true);
      return;
    }
    this.settleFailed(ex, err);
  }

  private settleFailed(ex: Exchange, err: UpstreamClientError): void {
    ex.settled = true;
    this.deadlines.remove(ex);
    ex.o.abort = null;
    this.exchangeDone(ex);
    ex.reject(err);
  }

  headArrived(ex: Exchange): void {
    this.deadlines.remove(ex);
  }

  exchangeDone(ex: Exchange): void {
    if (ex.done) return;
    ex.done = true;
    this.inFlight--;
  }

  release(conn: H1Connection): void {
    if (this.isClosed) {
      conn.socket.destroy();
      return;
    }
    const next = this.queue.shift();
    if (next !== undefined) {
      conn.begin(next);
      return;
    }
    if (this.idle.length >= this.opts.maxIdleSockets) {
      conn.socket.destroy();
      return;
    }
    conn.idleSince = Date.now();
    this.idle.push(conn);
    if (this.sweeper === null) this.startSweeper();
  }

  closed(conn: H1Connection): void {
    this.total--;
    const i = this.idle.lastIndexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
    // a slot freed up: a waiting exchange gets a new connection
    if (this.queue.length > 0 && !this.isClosed) this.dispatch(this.queue.shift()!, true);
    if (this.total === 0 && this.closing !== null) this.closing();
  }

  /** Close connections idle longer than their limit; one coarse timer per client, nothing per request. */
  private startSweeper(): void {
    const period = Math.max(25, Math.min(1000, this.opts.idleMs / 4));
    this.sweeper = setInterval(() => {
      const now = Date.now();
      const idle = this.idle;
      for (let i = idle.length - 1; i >= 0; i--) {
        const c = idle[i]!;
        if (now - c.idleSince >= c.idleLimitMs) c.socket.destroy();
      }
      if (idle.length === 0 && this.sweeper !== null) {
        clearInterval(this.sweeper);
        this.sweeper = null;
      }
    }, period);
    this.sweeper.unref();
  }

  close(): Promise<void> {
    this.isClosed = true;
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const ex of this.queue.splice(0)) this.settleFailed(ex, new UpstreamClientError('connect', 'upstream client closed'));
    for (const c of this.idle.splice(0)) c.socket.destroy();
    if (this.total === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.closing = resolve;
    });
  }
}

export const createUpstreamClient: UpstreamClientFactory = (origin, options) => new H1UpstreamClient(origin, options);
