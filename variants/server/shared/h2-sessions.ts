import http2, { type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { errorBody, errorHeaders } from '../../../core/base/errors.js';
import type { ServerConfig, ServerEngineHandlers, ServerEngineStats, ServerRequest, ServerResponse } from '../../../core/contracts/server.js';
import { serverResets, type CompatClasses, type ListenerState } from './h2-compat.js';

/**
 * HTTP/2 on node:http2, as every server engine serves it: the session bookkeeping of an h2 or h2c listener (the
 * /stats counters, the rapid-reset guard, the idle timeout, GOAWAY on drain, SETTINGS for new sessions after a
 * reload) and the wiring of compat requests into the engine handlers. node-http runs it on its
 * `http2.createSecureServer` / `http2.createServer` listener; the own engine on a non-listening
 * `http2.createServer` to which it hands the TLS sockets that negotiated `h2` (and, for h2c, every connection).
 */

/** The HTTP/2 part of ServerEngineStats. */
export type H2Counters = Pick<ServerEngineStats, 'h2Sessions' | 'h2ActiveSessions' | 'h2ClientResets' | 'h2RapidResetCloses'>;

const NO_H2: H2Counters = Object.freeze({ h2Sessions: 0, h2ActiveSessions: 0, h2ClientResets: 0, h2RapidResetCloses: 0 });

/** An engine's /stats: its own counts, and its HTTP/2 sessions' (zeros on a listener without HTTP/2). */
export function engineStats(tlsHandshakeErrors: number, h2: H2Counters | undefined, handlerErrors: number): ServerEngineStats {
  return { tlsHandshakeErrors, ...(h2 ?? NO_H2), handlerErrors };
}

const RAPID_RESET_GRACE_MS = 1000;

interface ResetWindow {
  count: number;
  windowStart: number;
}

/** The SETTINGS a new session advertises. */
export function h2Settings(s: ServerConfig): http2.Settings {
  return {
    maxConcurrentStreams: s.http2Limits.maxConcurrentStreams,
    maxHeaderListSize: s.http2Limits.maxHeaderListSize ?? s.maxHeaderSize,
  };
}

/** The http2 server options every engine's HTTP/2 server shares: SETTINGS, header count, the compat classes. */
export function h2ServerOptions(s: ServerConfig, classes: CompatClasses): http2.ServerOptions {
  return {
    settings: h2Settings(s),
    maxHeaderListPairs: Math.max(128, s.maxHeaderCount + 8),
    Http2ServerRequest: classes.GatewayH2Request,
    Http2ServerResponse: classes.GatewayH2Response as unknown as typeof http2.Http2ServerResponse,
  };
}

/**
 * An HTTP/2 CONNECT request: Node's compat API hands the 'connect' listener (request, response) instead of
 * (request, socket). No route tunnels CONNECT, so it gets a 405 like its HTTP/1.1 counterpart.
 */
export function rejectH2Connect(res: unknown): void {
  const r = res as http2.Http2ServerResponse;
  r.writeHead(405, errorHeaders(405));
  r.end(errorBody(405));
}

/**
 * `Expect: 100-continue`: Node would answer 100 before the pipeline runs, inviting a body the gateway may
 * refuse (body-limit, auth, 404). The 100 goes out only when something starts reading the body; a request
 * answered without reading it (413, 401, ...) never gets one, so the client never sends the body.
 */
export function continueOnRead(req: ServerRequest, res: ServerResponse, handlers: ServerEngineHandlers): void {
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
  handlers.request(req, res);
}

/** Owns the HTTP/2 sessions of one listener. */
export class H2Sessions {
  readonly counters: H2Counters = { h2Sessions: 0, h2ActiveSessions: 0, h2ClientResets: 0, h2RapidResetCloses: 0 };
  private readonly sessions = new Set<ServerHttp2Session>();
  private idleTimeoutMs: number;

  /** `state` is the listener's (shared with its compat classes): the guard reads its limits at each reset. */
  constructor(
    config: ServerConfig,
    private readonly state: ListenerState,
  ) {
    this.idleTimeoutMs = config.http2Limits.idleTimeoutMs;
  }

  /** Tracks every session `srv` sets up. */
  watch(srv: http2.Http2Server | http2.Http2SecureServer): void {
    srv.on('session', (session: ServerHttp2Session) => {
      const counters = this.counters;
      counters.h2Sessions++;
      counters.h2ActiveSessions++;
      this.sessions.add(session);
      const win: ResetWindow = { count: 0, windowStart: 0 };
      // One listener function per session, shared by all its streams ('close' fires once; `this` is the stream).
      const self = this;
      const onStreamClose = function (this: ServerHttp2Stream): void {
        self.onStreamClose(session, win, this);
      };
      session.on('stream', (stream: ServerHttp2Stream) => {
        stream.on('close', onStreamClose);
      });
      session.once('close', () => {
        counters.h2ActiveSessions--;
        this.sessions.delete(session);
      });
      const idle = this.idleTimeoutMs;
      // Graceful: GOAWAY, streams in flight finish, no new ones.
      if (idle > 0) session.setTimeout(idle, () => session.close());
    });
    // Protocol errors of one session are that client's problem; Node already tears the session down.
    srv.on('sessionError', () => undefined);
  }

  /**
   * A reload: the rapid-reset limits apply at once, the idle timeout and SETTINGS to sessions opened from now
   * (open sessions keep what they agreed on).
   */
  reload(next: ServerConfig, srv: http2.Http2Server | http2.Http2SecureServer): void {
    this.state.maxResets = next.http2Limits.rapidReset.maxResets;
    this.state.resetWindowMs = next.http2Limits.rapidReset.windowMs;
    this.idleTimeoutMs = next.http2Limits.idleTimeoutMs;
    srv.updateSettings(h2Settings(next));
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
    this.counters.h2ClientResets++;
    const now = Date.now();
    if (now - win.windowStart > this.state.resetWindowMs) {
      win.windowStart = now;
      win.count = 0;
    }
    if (++win.count > this.state.maxResets && !session.closed && !session.destroyed) {
      this.counters.h2RapidResetCloses++;
      // GOAWAY first (destroying at once can drop the frame): no new streams are accepted from here on; the
      // few already open get a short grace period, then the connection is cut whatever the client does.
      session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      session.close();
      setTimeout(() => {
        if (!session.destroyed) session.destroy();
      }, RAPID_RESET_GRACE_MS).unref();
    }
  }

  /** Drain step: GOAWAY to every session; streams in flight finish, no new ones start. */
  closeIdle(): void {
    for (const s of this.sessions) if (!s.closed) s.close();
  }

  /** Drain deadline passed: every session is cut. */
  closeAll(): void {
    for (const s of this.sessions) s.destroy();
  }
}

/**
 * An HTTP/2 server for sockets accepted elsewhere: it never listens; a socket given to `serve` becomes a session
 * (node's `connectionListener` sets one up for a TLS socket whose ALPN is `h2`, and for any non-TLS socket:
 * prior knowledge). Its requests go to `handlers.request` as the node-http engine's HTTP/2 requests do.
 */
export class H2HandOff {
  readonly server: http2.Http2Server;
  readonly sessions: H2Sessions;

  constructor(config: ServerConfig, state: ListenerState, classes: CompatClasses, handlers: ServerEngineHandlers, onHandlerError: (err: unknown) => void) {
    this.server = http2.createServer(h2ServerOptions(config, classes));
    this.sessions = new H2Sessions(config, state);
    this.sessions.watch(this.server);
    // The pipeline never throws; if it does, only that stream is cut (the session's other streams carry on).
    const request = (req: ServerRequest, res: ServerResponse): void => {
      try {
        handlers.request(req, res);
      } catch (err) {
        onHandlerError(err);
        // with an error: RST_STREAM INTERNAL_ERROR (without one node resets with NO_ERROR, which reads as "done")
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      }
    };
    const guarded: ServerEngineHandlers = { ...handlers, request };
    this.server.on('request', request);
    this.server.on('checkContinue', (req: ServerRequest, res: ServerResponse) => continueOnRead(req, res, guarded));
    this.server.on('connect', (_req: unknown, res: unknown) => rejectH2Connect(res));
  }

  /** The socket belongs to node:http2 from here (TLS after ALPN `h2`, or cleartext with prior knowledge). */
  serve(socket: Socket): void {
    this.server.emit('connection', socket);
  }
}
