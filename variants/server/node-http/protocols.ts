import http from 'node:http';
import http2, { type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import https from 'node:https';
import type { Server as NetServer } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { ServerConfig } from '../../../core/config/types.js';
import type { ListenerKind, ListenerReload, ServerEngineStats } from '../../../core/contracts/server.js';
import { errorBody, errorHeaders } from '../../../core/errors.js';
import { listenerKind } from '../../../core/listeners.js';
import { hstsValue, loadTlsMaterial, TlsContexts } from '../../../core/tls.js';
import { compatClasses, serverResets, type ListenerState } from './h2-compat.js';

/**
 * The node-http engine's listener, built from one ServerConfig: cleartext HTTP/1.1 (node:http), HTTPS/1.1,
 * HTTPS with ALPN h2 + http/1.1 fallback on one listener, or cleartext h2c (prior knowledge); plus what the
 * protocols need around them (HTTP/2 sessions, the rapid-reset guard, certificate reloads, drain steps).
 *
 * The request pipeline (core/http/pipeline.ts) is protocol-blind: HTTP/2 requests reach it through Node's compat
 * API (Http2ServerRequest/Http2ServerResponse). The subclasses below close the gaps between the two APIs, only on
 * the TLS/h2 listeners, so the cleartext HTTP/1.1 path runs Node's own classes untouched:
 *  - request headers without pseudo-headers, `:authority` as Host (upstreams and plugins read `req.headers`);
 *  - connection-specific response headers dropped instead of throwing ERR_HTTP2_INVALID_CONNECTION_HEADERS;
 *  - `res.destroyed` (the pipeline checks it; the compat response lacks it);
 *  - Strict-Transport-Security on every TLS response when configured.
 */

/**
 * An HTTP/2 CONNECT request: Node's compat API hands the 'connect' listener (request, response) instead of
 * (request, socket). No route tunnels CONNECT, so it gets a 405 like its HTTP/1.1 counterpart.
 */
export function rejectH2Connect(res: unknown): void {
  const r = res as http2.Http2ServerResponse;
  r.writeHead(405, errorHeaders(405));
  r.end(errorBody(405));
}

const RAPID_RESET_GRACE_MS = 1000;

interface ResetWindow {
  count: number;
  windowStart: number;
}

type Settable = Record<string, unknown>;

/** Owns the data-plane listener, whatever its kind. */
export class ClientProtocols {
  readonly server: NetServer;
  readonly kind: ListenerKind;
  readonly tls: TlsContexts | null;
  readonly stats: ServerEngineStats = {
    tlsHandshakeErrors: 0,
    h2Sessions: 0,
    h2ActiveSessions: 0,
    h2ClientResets: 0,
    h2RapidResetCloses: 0,
  };
  private readonly state: ListenerState;
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly resetWindows = new WeakMap<ServerHttp2Session, ResetWindow>();
  private config: ServerConfig;

  /** Throws TlsLoadError when a PEM file cannot be read or parsed (the validator normally caught it first). */
  constructor(s: ServerConfig) {
    this.config = s;
    this.kind = listenerKind(s);
    this.state = { hsts: hstsValue(s), maxResets: s.http2Limits.rapidReset.maxResets, resetWindowMs: s.http2Limits.rapidReset.windowMs };
    this.tls = s.tls === undefined ? null : new TlsContexts(loadTlsMaterial(s.tls));
    const classes = compatClasses(this.state);
    switch (this.kind) {
      case 'http':
        // Node's own request/response classes: the fastest path is the one with nothing overridden.
        this.server = http.createServer(h1Options(s));
        return;
      case 'https':
        this.server = https.createServer({
          ...this.tls!.defaultOptions,
          SNICallback: this.tls!.sniCallback,
          ALPNProtocols: ['http/1.1'],
          ...h1Options(s),
          ServerResponse: classes.GatewayTlsH1Response as typeof http.ServerResponse,
        });
        break;
      case 'h2': {
        const srv = http2.createSecureServer({
          ...this.tls!.defaultOptions,
          SNICallback: this.tls!.sniCallback,
          allowHTTP1: true,
          settings: h2Settings(s),
          maxHeaderListPairs: Math.max(128, s.maxHeaderCount + 8),
          Http1ServerResponse: classes.GatewayTlsH1Response as typeof http.ServerResponse,
          Http2ServerRequest: classes.GatewayH2Request,
          Http2ServerResponse: classes.GatewayH2Response as unknown as typeof http2.Http2ServerResponse,
          noDelay: true,
        } as http2.SecureServerOptions);
        // The HTTP/1.1 fallback runs Node's http connection code against this server object: give it the same
        // limits the cleartext listener has (Node reads them as properties; it sets only some defaults itself).
        const o = srv as unknown as Settable;
        o.keepAliveTimeout = s.keepAliveTimeoutMs;
        o.headersTimeout = s.headersTimeoutMs;
        o.requestTimeout = s.requestTimeoutMs;
        o.maxHeaderSize = s.maxHeaderSize;
        o.connectionsCheckingInterval = s.connectionsCheckingIntervalMs;
        o.requireHostHeader = true;
        this.server = srv;
        this.watchSessions(srv);
        break;
      }
      case 'h2c': {
        const srv = http2.createServer({
          settings: h2Settings(s),
          maxHeaderListPairs: Math.max(128, s.maxHeaderCount + 8),
          Http2ServerRequest: classes.GatewayH2Request,
          Http2ServerResponse: classes.GatewayH2Response as unknown as typeof http2.Http2ServerResponse,
        } as http2.ServerOptions);
        this.server = srv;
        this.watchSessions(srv);
        break;
      }
    }
    this.server.on('tlsClientError', (_err: Error, socket: TLSSocket) => {
      this.stats.tlsHandshakeErrors++;
      socket.destroy();
    });
  }

  /**
   * Loads what a new config needs (certificates) without touching the live listener; `commit()` swaps it in.
   * The listener kind, ports and HTTP/2 SETTINGS of open sessions need a restart; new sessions get new SETTINGS.
   */
  prepareReload(next: ServerConfig): ListenerReload {
    const kept: string[] = [];
    if (listenerKind(next) !== this.kind) kept.push(`listener protocol stays ${this.kind} until restart`);
    const tls = this.tls?.prepareReload(next) ?? null;
    if (tls !== null && tls.errors.length > 0) return { errors: tls.errors, kept, commit: () => undefined };
    return {
      errors: [],
      kept,
      commit: () => {
        this.config = next;
        tls?.apply(this.server as TlsServer);
        if (this.tls !== null) this.state.hsts = hstsValue(next);
        this.state.maxResets = next.http2Limits.rapidReset.maxResets;
        this.state.resetWindowMs = next.http2Limits.rapidReset.windowMs;
        if (this.kind === 'h2' || this.kind === 'h2c') (this.server as http2.Http2Server).updateSettings(h2Settings(next));
      },
    };
  }

  private watchSessions(srv: http2.Http2Server | http2.Http2SecureServer): void {
    srv.on('session', (session: ServerHttp2Session) => {
      const stats = this.stats;
      stats.h2Sessions++;
      stats.h2ActiveSessions++;
      this.sessions.add(session);
      const win: ResetWindow = { count: 0, windowStart: 0 };
      this.resetWindows.set(session, win);
      // One listener function per session, shared by all its streams ('close' fires once; `this` is the stream).
      const self = this;
      const onStreamClose = function (this: ServerHttp2Stream): void {
        self.onStreamClose(session, win, this);
      };
      session.on('stream', (stream: ServerHttp2Stream) => {
        stream.on('close', onStreamClose);
      });
      session.once('close', () => {
        stats.h2ActiveSessions--;
        this.sessions.delete(session);
      });
      const idle = this.config.http2Limits.idleTimeoutMs;
      // Graceful: GOAWAY, streams in flight finish, no new ones.
      if (idle > 0) session.setTimeout(idle, () => session.close());
    });
    // Protocol errors of one session are that client's problem; Node already tears the session down.
    srv.on('sessionError', () => undefined);
  }

  /**
   * Rapid-reset guard (CVE-2023-44487). A stream closed with an error code or before the gateway finished
   * writing was reset by the client (unless the gateway destroyed it itself). A stream the gateway already
   * answered synchronously costs nothing when reset; the attack's cost is work started for streams that are
   * reset at once, which is exactly what this counts. Too many in the window: GOAWAY ENHANCE_YOUR_CALM.
   */
  private onStreamClose(session: ServerHttp2Session, win: ResetWindow, stream: ServerHttp2Stream): void {
    if (stream.rstCode === http2.constants.NGHTTP2_NO_ERROR && !stream.aborted) return;
    if (serverResets.has(stream)) return;
    this.stats.h2ClientResets++;
    const now = Date.now();
    if (now - win.windowStart > this.state.resetWindowMs) {
      win.windowStart = now;
      win.count = 0;
    }
    if (++win.count > this.state.maxResets && !session.closed && !session.destroyed) {
      this.stats.h2RapidResetCloses++;
      // GOAWAY first (destroying at once can drop the frame): no new streams are accepted from here on; the
      // few already open get a short grace period, then the connection is cut whatever the client does.
      session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      session.close();
      setTimeout(() => {
        if (!session.destroyed) session.destroy();
      }, RAPID_RESET_GRACE_MS).unref();
    }
  }

  /** Drain step: GOAWAY to HTTP/2 sessions (in-flight streams finish), idle HTTP/1.1 keep-alive sockets closed. */
  closeIdle(): void {
    for (const s of this.sessions) if (!s.closed) s.close();
    // Node's HTTP/1.1 connection tracking also exists on the h2 listener (allowHTTP1) and on https servers.
    if (this.kind !== 'h2c') http.Server.prototype.closeIdleConnections.call(this.server as http.Server);
  }

  /** Drain deadline passed: everything is cut. */
  closeAll(): void {
    for (const s of this.sessions) s.destroy();
    if (this.kind !== 'h2c') http.Server.prototype.closeAllConnections.call(this.server as http.Server);
  }
}

/** The HTTP/1.1 connection limits of the cleartext and HTTPS listeners (the h2 listener's fallback sets the same). */
function h1Options(s: ServerConfig): http.ServerOptions {
  return {
    keepAliveTimeout: s.keepAliveTimeoutMs,
    headersTimeout: s.headersTimeoutMs,
    requestTimeout: s.requestTimeoutMs,
    maxHeaderSize: s.maxHeaderSize,
    connectionsCheckingInterval: s.connectionsCheckingIntervalMs,
    noDelay: true,
  };
}

function h2Settings(s: ServerConfig): http2.Settings {
  return {
    maxConcurrentStreams: s.http2Limits.maxConcurrentStreams,
    maxHeaderListSize: s.http2Limits.maxHeaderListSize ?? s.maxHeaderSize,
  };
}
