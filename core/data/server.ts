import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { rawErrorResponse } from '../base/raw-http.js';
import type { ServerConfig, AccessLogConfig } from '../config/types.js';
import type { ObjectPool } from '../contracts/pool.js';
import type { ServerEngine, ServerEngineFactory, ServerRequest, ServerResponse } from '../contracts/server.js';
import { AccessLog } from '../observe/access-log.js';
import type { GatewayMetrics, ProtocolStats } from '../observe/metrics.js';
import { PerIpConnections } from './limits.js';
import { RedirectListener } from './listeners.js';
import { OverloadMonitor, overloadEnabled } from './overload.js';
import { RequestPipeline } from './pipeline.js';
import type { RequestState } from './request-state.js';
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
  /** the HTTP/1.1 engine (variants.server) */
  engine: ServerEngineFactory;
  pool: ObjectPool<RequestState>;
  metrics: GatewayMetrics;
  logger: Logger;
  accessLog: AccessLogConfig;
}

/** What a worker knows about itself when it answers the watchdog's PING: logged if it later freezes. */
export interface HeartbeatReport {
  /** requests in flight */
  inFlight: number;
  /** the request that has waited longest on plugin code (server.hookTimeoutMs watches those), if any */
  oldest: { route: string | null; plugin: string | null; hook: string; ageMs: number } | null;
}

/**
 * The data plane of one worker, connection side: the server engine (variants/server/, which owns the listener,
 * parsing, framing, `Expect: 100-continue` and parser errors), connection accounting, the per-IP cap, the
 * runtime swap and the drain. Every request and upgrade the engine accepts goes to the request pipeline
 * (core/data/pipeline.ts), which writes through core/data/response.ts.
 */
export class GatewayServer {
  /** the data-plane listener the engine built (net, tls, node:http, https or http2) */
  readonly http: NetServer;
  readonly engine: ServerEngine;
  readonly redirect: RedirectListener;
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
    this.perIp = s.maxConnectionsPerIp > 0 ? new PerIpConnections(s.maxConnectionsPerIp) : null;
    this.overload = overloadEnabled(s.overload) ? new OverloadMonitor(s.overload) : null;
    const pipeline = new RequestPipeline(runtime, openAccessLog(opts.accessLog, opts.logger), {
      pool: opts.pool,
      metrics: opts.metrics,
      logger: opts.logger,
      limits: { maxUrlLength: s.maxUrlLength, maxHeaderCount: s.maxHeaderCount },
      overload: this.overload,
    });
    this.pipeline = pipeline;
    this.engine = opts.engine(s, {
      request: (req: ServerRequest, res: ServerResponse) => pipeline.onRequest(req, res),
      upgrade: (req: ServerRequest, socket: Duplex, head: Buffer) => pipeline.onUpgrade(req, socket, head),
      connection: (socket: Socket) => this.onConnection(socket),
    });
    this.http = this.engine.listener;
    this.redirect = new RedirectListener(this.engine.kind);
  }

  /** Connections refused by the per-IP cap, and the overload state (for /stats and /ready). */
  limitStats(): { perIpRefused: number; overload: ReturnType<OverloadMonitor['stats']> | null } {
    return { perIpRefused: this.perIp?.refused ?? 0, overload: this.overload?.stats() ?? null };
  }

  /** What the watchdog's heartbeat reports (sent to the primary in core/control/messages.ts). */
  heartbeat(): HeartbeatReport {
    return { inFlight: this.opts.metrics.inFlight, oldest: this.pipeline.oldestWait(performance.now()) };
  }

  /** Writes plugins made through a context kept past its request, ignored (core/data/context.ts). */
  get lateContextWrites(): number {
    return this.pipeline.lateWrites.count;
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
  swap(next: GatewayRuntime, accessLog: AccessLogConfig): Promise<void> {
    const prev = this.pipeline.runtime;
    this.pipeline.runtime = next;
    this.setAccessLog(accessLog);
    return prev.retire();
  }

  /** A changed `logging.accessLog` takes effect at once (its file, if any, is closed and the new one opened). */
  private setAccessLog(config: AccessLogConfig): void {
    const current = this.pipeline.accessLog;
    if (JSON.stringify(current?.config ?? null) === JSON.stringify(config.enabled ? config : null)) return;
    this.pipeline.accessLog = openAccessLog(config, this.opts.logger);
    current?.close();
  }

  /** After logrotate moved the access log file: lines go to a new file at its path (no-op for stdout). */
  reopenAccessLog(): void {
    this.pipeline.accessLog?.reopen();
  }

  /** Listener counters for /stats: the engine's and the redirect listener's. */
  protocolStats(): ProtocolStats & { listener: ServerEngine['kind']; engine: string } {
    return { listener: this.engine.kind, engine: this.engine.name, ...this.engine.stats(), redirects: this.redirect.redirects };
  }

  /** Counts the connection; false when the per-IP cap refused it (answered 503 or cut here). */
  private onConnection(socket: Socket): boolean {
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
      m.countError('GW_ERR_TOO_MANY_CONNECTIONS');
      if (this.opts.server.tls !== undefined) socket.destroy();
      else socket.end(rawErrorResponse(503, 'Service Unavailable', { 'retry-after': PER_IP_RETRY_AFTER_S }), () => socket.destroy());
      return false;
    }
    return true;
  }

  /**
   * Graceful drain: stop accepting, mark responses `Connection: close`, close idle keep-alive sockets, wait
   * for in-flight requests until the deadline, then close whatever is left. The wait ends when the last
   * in-flight request finishes (the pipeline resolves it), not at the next tick of a poll.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.pipeline.draining = true;
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    const closeIdle = (): void => {
      this.engine.closeIdle();
      this.redirect.closeIdle();
    };
    closeIdle();
    const idleSweep = setInterval(closeIdle, DRAIN_IDLE_SWEEP_MS);
    let deadline: NodeJS.Timeout | undefined;
    await Promise.race([this.pipeline.whenIdle(), new Promise<void>((resolve) => (deadline = setTimeout(resolve, deadlineMs)))]);
    clearTimeout(deadline);
    clearInterval(idleSweep);
    this.overload?.close();
    this.engine.closeAll();
    this.redirect.closeAll();
    for (const s of this.sockets) s.destroy();
    await closed;
    await this.pipeline.runtime.dispose();
    this.pipeline.accessLog?.close();
  }
}

function openAccessLog(config: AccessLogConfig, logger: Logger): AccessLog | null {
  return config.enabled ? new AccessLog(config, logger) : null;
}
