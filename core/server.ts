import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ServerConfig } from './config/types.js';
import type { RequestContext } from './context.js';
import type { ObjectPool } from './contracts/pool.js';
import { RequestPipeline } from './http/pipeline.js';
import { overflowStatus, PerIpConnections, rawErrorResponse } from './limits.js';
import { ClientProtocols, rejectH2Connect } from './listeners.js';
import type { GatewayMetrics } from './metrics.js';
import { OverloadMonitor, overloadEnabled } from './overload.js';
import type { GatewayRuntime } from './runtime.js';

/**
 * While draining, keep-alive sockets whose last request finished are closed this often: Node offers no event
 * for "this connection just went idle", and 50 ms is short next to any drain deadline while costing nothing.
 */
const DRAIN_IDLE_SWEEP_MS = 50;

/** Retry-After (seconds) on a connection refused by the per-IP cap: the client's other connections close soon. */
const PER_IP_RETRY_AFTER_S = 1;

export interface GatewayServerOptions {
  server: ServerConfig;
  pool: ObjectPool<RequestContext>;
  metrics: GatewayMetrics;
  logger: Logger;
  accessLog: boolean;
}

/**
 * The data plane of one worker, connection side: the listener (core/listeners.ts), connection accounting, the
 * per-IP cap, `Expect: 100-continue`, parser errors, CONNECT, the runtime swap and the drain. Every request and
 * upgrade it accepts goes to the request pipeline (core/http/pipeline.ts), which writes through
 * core/http/response.ts.
 */
export class GatewayServer {
  /** the data-plane listener: node:http, https, or http2 (TLS with ALPN h2 + http/1.1, or h2c): see core/listeners.ts */
  readonly http: NetServer;
  readonly protocols: ClientProtocols;
  private readonly pipeline: RequestPipeline;
  private readonly sockets = new Set<Socket>();
  private readonly perIp: PerIpConnections | null;
  /** null when no overload threshold is configured: the request path then pays nothing for it */
  readonly overload: OverloadMonitor | null;

  constructor(
    runtime: GatewayRuntime,
    private readonly opts: GatewayServerOptions,
  ) {
    const s = opts.server;
    this.protocols = new ClientProtocols(s);
    this.http = this.protocols.server;
    this.perIp = s.maxConnectionsPerIp > 0 ? new PerIpConnections(s.maxConnectionsPerIp) : null;
    this.overload = overloadEnabled(s.overload) ? new OverloadMonitor(s.overload) : null;
    const pipeline = new RequestPipeline(runtime, opts.accessLog, {
      pool: opts.pool,
      metrics: opts.metrics,
      logger: opts.logger,
      limits: { maxUrlLength: s.maxUrlLength, maxHeaderCount: s.maxHeaderCount },
      overload: this.overload,
    });
    this.pipeline = pipeline;
    this.http.on('request', (req: IncomingMessage, res: ServerResponse) => pipeline.onRequest(req, res));
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => pipeline.onUpgrade(req, socket, head));
    this.http.on('connection', (socket: Socket) => this.onConnection(socket));
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket));
    this.http.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.onCheckContinue(req, res));
    // No route tunnels CONNECT: without a listener Node would drop the socket silently; answer instead.
    this.http.on('connect', (req: IncomingMessage, socket: Duplex) => {
      if (req.httpVersionMajor === 2) return rejectH2Connect(socket);
      socket.on('error', () => socket.destroy());
      socket.end(rawErrorResponse(405, 'Method Not Allowed'), () => socket.destroy());
    });
  }

  /** Connections refused by the per-IP cap, and the overload state (for /stats and /ready). */
  limitStats(): { perIpRefused: number; overload: ReturnType<OverloadMonitor['stats']> | null } {
    return { perIpRefused: this.perIp?.refused ?? 0, overload: this.overload?.stats() ?? null };
  }

  get currentRuntime(): GatewayRuntime {
    return this.pipeline.runtime;
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        const addr = this.http.address();
        resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
      });
    });
  }

  /** Swap in a new runtime: new requests use it at once; the old one is disposed after its in-flight requests. */
  swap(next: GatewayRuntime, accessLog: boolean): Promise<void> {
    const prev = this.pipeline.runtime;
    this.pipeline.runtime = next;
    this.pipeline.accessLog = accessLog;
    return prev.retire();
  }

  private onConnection(socket: Socket): void {
    const m = this.opts.metrics;
    m.activeConnections++;
    m.totalConnections++;
    this.sockets.add(socket);
    socket.once('close', () => {
      m.activeConnections--;
      this.sockets.delete(socket);
    });
    if (this.perIp !== null && !this.perIp.admit(socket)) {
      // Stop the parser reading first, so no request on this socket reaches the pipeline.
      socket.pause();
      socket.on('error', () => socket.destroy());
      // On a TLS listener this is the raw TCP socket: plaintext would only look like a broken handshake.
      if (this.opts.server.tls !== undefined) socket.destroy();
      else socket.end(rawErrorResponse(503, 'Service Unavailable', `retry-after: ${PER_IP_RETRY_AFTER_S}\r\n`), () => socket.destroy());
    }
  }

  /**
   * `Expect: 100-continue`: Node would answer 100 before the pipeline runs, inviting a body the gateway may
   * refuse (body-limit, auth, 404). The 100 goes out only when something starts reading the body; a request
   * answered without reading it (413, 401, ...) never gets one, so the client never sends the body.
   */
  private onCheckContinue(req: IncomingMessage, res: ServerResponse): void {
    let sent = false;
    const go = (): void => {
      if (sent) return;
      sent = true;
      req.off('newListener', onListener);
      if (!res.headersSent && !res.writableEnded) res.writeContinue();
    };
    const onListener = (event: string | symbol): void => {
      if (event === 'data' || event === 'readable') go();
    };
    req.on('newListener', onListener);
    req.once('resume', go);
    this.pipeline.onRequest(req, res);
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    // Node's parser rejected the bytes before any request object existed: answer and close, never forward.
    if (!socket.writable || err.code === 'ECONNRESET' || err.code === 'EPIPE') {
      socket.destroy();
      return;
    }
    const s = socket as HttpSocket;
    // llhttp stays in its error state and reports again on every later packet: answer once.
    if (s[kAnswered] === true) return;
    s[kAnswered] = true;
    socket.pause();
    let status = 400;
    if (err.code === 'HPE_HEADER_OVERFLOW') status = overflowStatus((err as { rawPacket?: unknown }).rawPacket, this.opts.server.maxUrlLength);
    else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') status = 408;
    else if (err.code === 'HPE_URI_TOO_LONG') status = 414;
    const answer = (): void => {
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      socket.end(rawErrorResponse(status, STATUS_CODES[status] ?? 'Bad Request'), () => socket.destroy());
    };
    const current = s._httpMessage;
    if (current === null || current === undefined) {
      answer();
      return;
    }
    const incoming = s.parser?.incoming;
    if (incoming !== null && incoming !== undefined && !incoming.complete) {
      // The bad bytes are the body of a request being answered (or a slow POST timed out): that exchange cannot
      // complete. A status line after a started response would corrupt it, so then the connection is just cut.
      if (current.headersSent) socket.destroy();
      else answer();
      return;
    }
    // The bad bytes follow complete pipelined requests still being answered: their responses go out first, in
    // order, then the error; answering now would hand the client the 400 as the answer to an earlier request.
    whenIdle(s, answer);
  }

  /**
   * Graceful drain: stop accepting, mark responses `Connection: close`, close idle keep-alive sockets, wait
   * for in-flight requests until the deadline, then close whatever is left. The wait ends when the last
   * in-flight request finishes (the pipeline resolves it), not at the next tick of a poll.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.pipeline.draining = true;
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.protocols.closeIdle();
    const idleSweep = setInterval(() => this.protocols.closeIdle(), DRAIN_IDLE_SWEEP_MS);
    let deadline: NodeJS.Timeout | undefined;
    await Promise.race([this.pipeline.whenIdle(), new Promise<void>((resolve) => (deadline = setTimeout(resolve, deadlineMs)))]);
    clearTimeout(deadline);
    clearInterval(idleSweep);
    this.overload?.close();
    this.protocols.closeAll();
    for (const s of this.sockets) s.destroy();
    await closed;
    await this.pipeline.runtime.dispose();
  }
}

const kAnswered = Symbol('clientErrorAnswered');

/** The parts of Node's http server socket state onClientError needs (internal but stable since Node 12). */
type HttpSocket = Duplex & {
  _httpMessage?: ServerResponse | null;
  parser?: { incoming?: IncomingMessage | null } | null;
  [kAnswered]?: boolean;
};

/** Calls `done` once every response queued on this keep-alive socket has finished (or the socket closed). */
function whenIdle(socket: HttpSocket, done: () => void): void {
  const current = socket._httpMessage;
  if (current === null || current === undefined || socket.destroyed) {
    done();
    return;
  }
  let fired = false;
  const next = (): void => {
    if (fired) return;
    fired = true;
    // Node assigns the next queued response to the socket in its own 'finish' listener; look again after it.
    setImmediate(() => whenIdle(socket, done));
  };
  current.once('finish', next);
  current.once('close', next);
}
