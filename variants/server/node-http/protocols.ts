import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { Server as NetServer } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { listenerKind } from '../../../core/base/listener-kind.js';
import { hstsValue, loadTlsMaterial, TlsContexts } from '../../../core/base/tls.js';
import type { ListenerKind, ListenerReload, ServerConfig, ServerEngineStats } from '../../../core/contracts/server.js';
import { compatClasses, type ListenerState } from '../shared/h2-compat.js';
import { engineStats, H2Sessions, h2ServerOptions } from '../shared/h2-sessions.js';

/**
 * The node-http engine's listener, built from one ServerConfig: cleartext HTTP/1.1 (node:http), HTTPS/1.1,
 * HTTPS with ALPN h2 + http/1.1 fallback on one listener, or cleartext h2c (prior knowledge); plus what the
 * protocols need around them (HTTP/2 sessions and the rapid-reset guard: ../shared/h2-sessions.ts, shared with the own
 * engine; certificate reloads, drain steps).
 *
 * The request pipeline (core/data/pipeline.ts) is protocol-blind: HTTP/2 requests reach it through Node's compat
 * API (Http2ServerRequest/Http2ServerResponse). The subclasses in ../shared/h2-compat.ts close the gaps between the
 * two APIs, only on the TLS/h2 listeners, so the cleartext HTTP/1.1 path runs Node's own classes untouched:
 *  - request headers without pseudo-headers, `:authority` as Host (upstreams and plugins read `req.headers`);
 *  - connection-specific response headers dropped instead of throwing ERR_HTTP2_INVALID_CONNECTION_HEADERS;
 *  - `res.destroyed` (the pipeline checks it; the compat response lacks it);
 *  - Strict-Transport-Security on every TLS response when configured.
 */

type Settable = Record<string, unknown>;

/** Owns the data-plane listener, whatever its kind. */
export class ClientProtocols {
  readonly server: NetServer;
  readonly kind: ListenerKind;
  readonly tls: TlsContexts | null;
  private tlsHandshakeErrors = 0;
  private readonly state: ListenerState;
  /** the HTTP/2 sessions of the h2 and h2c listeners (../shared/h2-sessions.ts); null on HTTP/1.1 listeners */
  private readonly h2: H2Sessions | null = null;

  /** Throws TlsLoadError when a PEM file cannot be read or parsed (the validator normally caught it first). */
  constructor(s: ServerConfig) {
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
          ...h2ServerOptions(s, classes),
          Http1ServerResponse: classes.GatewayTlsH1Response as typeof http.ServerResponse,
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
        this.h2 = new H2Sessions(s, this.state);
        this.h2.watch(srv);
        break;
      }
      case 'h2c': {
        const srv = http2.createServer(h2ServerOptions(s, classes));
        this.server = srv;
        this.h2 = new H2Sessions(s, this.state);
        this.h2.watch(srv);
        break;
      }
    }
    this.server.on('tlsClientError', (_err: Error, socket: TLSSocket) => {
      this.tlsHandshakeErrors++;
      socket.destroy();
    });
  }

  /** handlerErrors: node:http has no such path (a throwing 'request' listener is an uncaught exception). */
  get stats(): ServerEngineStats {
    return engineStats(this.tlsHandshakeErrors, this.h2?.counters, 0);
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
        tls?.apply(this.server as TlsServer);
        if (this.tls !== null) this.state.hsts = hstsValue(next);
        this.h2?.reload(next, this.server as http2.Http2Server);
      },
    };
  }

  /** Drain step: GOAWAY to HTTP/2 sessions (in-flight streams finish), idle HTTP/1.1 keep-alive sockets closed. */
  closeIdle(): void {
    this.h2?.closeIdle();
    // Node's HTTP/1.1 connection tracking also exists on the h2 listener (allowHTTP1) and on https servers.
    if (this.kind !== 'h2c') http.Server.prototype.closeIdleConnections.call(this.server as http.Server);
  }

  /** Drain deadline passed: everything is cut. */
  closeAll(): void {
    this.h2?.closeAll();
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
