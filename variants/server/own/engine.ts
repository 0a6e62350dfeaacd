import net, { type Server as NetServer, type Socket } from 'node:net';
import tls, { type Server as TlsServer, type TLSSocket } from 'node:tls';
import { listenerKind } from '../../../core/base/listener-kind.js';
import { hstsValue, loadTlsMaterial, TlsContexts } from '../../../core/base/tls.js';
import type { ListenerKind, ListenerReload, ServerConfig, ServerEngine, ServerEngineHandlers, ServerEngineStats } from '../../../core/contracts/server.js';
import type { BufferPool } from '../../pool/buffer/index.js';
import { compatClasses, type ListenerState } from '../shared/h2-compat.js';
import { engineStats, H2HandOff } from '../shared/h2-sessions.js';
import { Connection, type ConnectionHost } from './connection.js';

export interface OwnEngineOptions {
  /**
   * Serialise each response head (joined to a small body) into a slab of this pool instead of a latin1 string.
   * Off by default: issue 18 measured it (README "BufferPool") and keeps it only where it wins.
   */
  headPool?: BufferPool;
  /**
   * Plain-TCP reads go straight into one buffer shared by the engine's connections (user-buffer.ts) instead of
   * a Buffer per read through the socket's Readable. On by default; false reads 'data' events (for A/B runs).
   */
  userBufferReads?: boolean;
}

/** A read takes at most this much: the size node's stream reads use */
const READ_BUFFER_BYTES = 64 * 1024;

/** node:http's `Keep-Alive: timeout=N` (whole seconds, rounded down), sent with every `Connection: keep-alive`. */
function keepAliveLine(s: ServerConfig): string {
  return s.keepAliveTimeoutMs > 0 ? `Keep-Alive: timeout=${Math.floor(s.keepAliveTimeoutMs / 1000)}\r\n` : '';
}

function hstsLine(s: ServerConfig): string {
  const v = hstsValue(s);
  return v === null ? '' : `Strict-Transport-Security: ${v}\r\n`;
}

/** Timeouts are checked this often at most: a keep-alive timeout then closes within a quarter of itself late. */
function sweepInterval(s: ServerConfig): number {
  const keepAlive = s.keepAliveTimeoutMs > 0 ? Math.max(10, Math.ceil(s.keepAliveTimeoutMs / 4)) : Infinity;
  return Math.max(1, Math.min(s.connectionsCheckingIntervalMs, keepAlive));
}

/** What the TLS listener offers in ALPN, by listener kind. */
const ALPN: Record<'https' | 'h2', string[]> = { https: ['http/1.1'], h2: ['h2', 'http/1.1'] };

/**
 * The own HTTP/1.1 engine: a net.Server (or tls.Server) whose connections (connection.ts) parse with
 * RequestParser and answer through OwnResponse. Timeouts are one sweep over the live connections per interval
 * (like node:http's connectionsCheckingInterval) instead of a timer per socket: a keep-alive answer then costs
 * one Date.now(), not a timer re-arm.
 *
 * HTTP/2 is node:http2's (issue 18): on an `h2` listener a TLS socket that negotiated ALPN `h2` is handed to a
 * non-listening http2 server (../shared/h2-sessions.ts, the session bookkeeping node-http uses too); one that
 * negotiated `http/1.1`, or nothing, stays here. On an `h2c` listener every connection is handed over (prior
 * knowledge: there is no HTTP/1.1 to serve, as on node-http's h2c listener).
 */
export class OwnEngine implements ServerEngine, ConnectionHost {
  readonly name = 'own';
  readonly kind: ListenerKind;
  readonly listener: NetServer;
  maxHeaderSize: number;
  keepAliveLine: string;
  hstsLine: string;
  readonly headPool: BufferPool | null;
  readonly readBuffer: Buffer | null;
  /** handler exceptions that cut their connection or HTTP/2 stream (the pipeline should never throw; counted if it does) */
  handlerErrors = 0;
  private config: ServerConfig;
  private readonly tls: TlsContexts | null;
  private readonly connections = new Set<Connection>();
  private sweepTimer: NodeJS.Timeout | null = null;
  private tlsHandshakeErrors = 0;
  /** node:http2 for the sockets of an h2 or h2c listener that speak HTTP/2; null on HTTP/1.1 listeners */
  private readonly h2: H2HandOff | null;
  /** what the HTTP/2 compat responses read per answer (HSTS) and the rapid-reset guard per reset */
  private readonly h2State: ListenerState | null;

  constructor(
    config: ServerConfig,
    readonly handlers: ServerEngineHandlers,
    options: OwnEngineOptions = {},
  ) {
    this.headPool = options.headPool ?? null;
    this.readBuffer = options.userBufferReads === false ? null : Buffer.allocUnsafe(READ_BUFFER_BYTES);
    const kind = listenerKind(config);
    this.kind = kind;
    this.config = config;
    this.maxHeaderSize = config.maxHeaderSize;
    this.keepAliveLine = keepAliveLine(config);
    this.hstsLine = hstsLine(config);
    if (kind === 'h2' || kind === 'h2c') {
      const state = { hsts: hstsValue(config), maxResets: config.http2Limits.rapidReset.maxResets, resetWindowMs: config.http2Limits.rapidReset.windowMs };
      this.h2State = state;
      this.h2 = new H2HandOff(config, state, compatClasses(state), handlers, () => this.onHandlerError());
    } else {
      this.h2State = null;
      this.h2 = null;
    }
    const h2 = this.h2;
    if (kind === 'https' || kind === 'h2') {
      const contexts = new TlsContexts(loadTlsMaterial(config.tls!));
      this.tls = contexts;
      // allowHalfOpen: what a client's FIN means is decided by the connection (connection.ts), not by net's auto-end
      const server = tls.createServer({
        ...contexts.defaultOptions,
        SNICallback: contexts.sniCallback,
        ALPNProtocols: ALPN[kind],
        allowHalfOpen: true,
        noDelay: true,
      });
      // the raw TCP socket, before TLS: the per-IP cap refuses it there (the handler destroys it)
      server.on('connection', (socket: Socket) => {
        handlers.connection(socket);
      });
      server.on('secureConnection', (socket: TLSSocket) => {
        if (h2 !== null && socket.alpnProtocol === 'h2') this.handOff(h2, socket);
        else this.accept(socket);
      });
      server.on('tlsClientError', (_err: Error, socket: TLSSocket) => {
        this.tlsHandshakeErrors++;
        socket.destroy();
      });
      this.listener = server;
    } else if (h2 !== null) {
      this.tls = null;
      // node's own h2c server is a plain net.Server (no half-open): the session owns the socket from the start
      const server = net.createServer({ noDelay: true });
      server.on('connection', (socket: Socket) => {
        if (handlers.connection(socket)) this.handOff(h2, socket);
      });
      this.listener = server;
    } else {
      this.tls = null;
      const server = net.createServer({ allowHalfOpen: true, noDelay: true });
      server.on('connection', (socket: Socket) => {
        if (handlers.connection(socket)) this.accept(socket);
      });
      this.listener = server;
    }
    this.listener.on('close', () => this.stopSweep());
  }

  /** The socket speaks HTTP/2: node:http2 owns it from here (its session, its timeouts, its close). */
  private handOff(h2: H2HandOff, socket: Socket): void {
    if (socket.destroyed) return;
    // node's secure h2 server does not keep sockets half-open: a client's FIN must end the session's socket too
    // (kept half-open, a session whose client sent GOAWAY + FIN stayed open: test/tls/own-h2.test.ts)
    socket.allowHalfOpen = false;
    h2.serve(socket);
  }

  private accept(socket: Socket): void {
    if (socket.destroyed) return;
    this.connections.add(new Connection(this, socket, Date.now()));
    if (this.sweepTimer === null) this.startSweep();
  }

  forget(conn: Connection): void {
    this.connections.delete(conn);
  }

  onHandlerError(): void {
    this.handlerErrors++;
  }

  private startSweep(): void {
    this.sweepTimer = setInterval(() => this.sweep(), sweepInterval(this.config));
    this.sweepTimer.unref();
  }

  private stopSweep(): void {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  /** headersTimeoutMs and requestTimeoutMs → 408 and close; keepAliveTimeoutMs idle → close quietly. */
  private sweep(): void {
    if (this.connections.size === 0) {
      this.stopSweep();
      return;
    }
    const now = Date.now();
    const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = this.config;
    for (const conn of this.connections) {
      if (conn.headStart !== 0 && headersTimeoutMs > 0 && now - conn.headStart >= headersTimeoutMs) conn.fail(408);
      else if (conn.requestStart !== 0) {
        if (requestTimeoutMs > 0 && now - conn.requestStart >= requestTimeoutMs) conn.fail(408);
      } else if (conn.idleSince !== 0 && keepAliveTimeoutMs > 0 && now - conn.idleSince >= keepAliveTimeoutMs) conn.destroy();
    }
  }

  prepareReload(next: ServerConfig): ListenerReload {
    const kept: string[] = [];
    if (listenerKind(next) !== this.kind) kept.push(`listener protocol stays ${this.kind} until restart`);
    const tls = this.tls?.prepareReload(next) ?? null;
    if (tls !== null && tls.errors.length > 0) return { errors: tls.errors, kept, commit: () => undefined };
    return {
      errors: [],
      kept,
      commit: () => {
        const interval = sweepInterval(this.config);
        // timeouts apply to every connection from the next sweep; maxHeaderSize to new connections
        this.config = next;
        this.maxHeaderSize = next.maxHeaderSize;
        this.keepAliveLine = keepAliveLine(next);
        if (this.tls !== null) {
          this.hstsLine = hstsLine(next);
          if (this.h2State !== null) this.h2State.hsts = hstsValue(next);
        }
        tls?.apply(this.listener as TlsServer);
        // rapid-reset limits at once; SETTINGS and the idle timeout for sessions opened from now
        this.h2?.sessions.reload(next, this.h2.server);
        if (this.sweepTimer !== null && sweepInterval(next) !== interval) {
          this.stopSweep();
          this.startSweep();
        }
      },
    };
  }

  /** Drain step: idle HTTP/1.1 connections closed; HTTP/2 sessions get GOAWAY (streams in flight finish). */
  closeIdle(): void {
    for (const conn of this.connections) if (conn.idle) conn.destroy();
    this.h2?.sessions.closeIdle();
  }

  closeAll(): void {
    for (const conn of this.connections) conn.destroy();
    this.h2?.sessions.closeAll();
  }

  stats(): ServerEngineStats {
    return engineStats(this.tlsHandshakeErrors, this.h2?.sessions.counters, this.handlerErrors);
  }
}
