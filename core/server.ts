import { createServer, STATUS_CODES, validateHeaderName, validateHeaderValue, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Readable, type Writable } from 'node:stream';
import type { Logger } from 'pino';
import { RequestContext } from './context.js';
import type { ObjectPool } from './pool.js';
import type { GatewayMetrics, RouteMetrics } from './metrics.js';
import { GatewayRuntime, ONE_WRITE_MAX, RouteKind, type CompiledRoute } from './runtime.js';
import { runErrorHooks, runPhase } from './plugins/executor.js';
import { MalformedPathError } from './router.js';
import { errorBody, errorHeaders, headersOf, HttpError, PluginHookError, statusOf } from './errors.js';
import type { ServerConfig } from './config/types.js';
import { bodyPending, checkRequest, overflowStatus, PerIpConnections, rawErrorResponse, REQUEST_OK, type RequestLimits } from './limits.js';
import { OverloadMonitor, overloadEnabled } from './overload.js';
import { ClientProtocols, countProtocol, rejectH2Connect } from './h2.js';

export interface GatewayServerOptions {
  server: ServerConfig;
  pool: ObjectPool<RequestContext>;
  metrics: GatewayMetrics;
  logger: Logger;
  accessLog: boolean;
}

/**
 * The data plane of one worker: Node's native http server, the request pipeline and the runtime swap.
 *
 * Request order (the seed's Data Flow): acquire context → preRoute → match → params → preHandler → handler →
 * postHandler → send → postResponse → release context → record metrics.
 * A static route without hooks takes a synchronous fast path (no promise, no closure, no listener).
 */
export class GatewayServer {
  /** the data-plane listener: node:http, https, or http2 (TLS with ALPN h2 + http/1.1, or h2c): see core/h2.ts */
  readonly http: NetServer;
  readonly protocols: ClientProtocols;
  private runtime: GatewayRuntime;
  private draining = false;
  private accessLog: boolean;
  private readonly sockets = new Set<Socket>();
  private readonly limits: RequestLimits;
  private readonly perIp: PerIpConnections | null;
  /** null when no overload threshold is configured: the request path then pays nothing for it */
  readonly overload: OverloadMonitor | null;

  constructor(runtime: GatewayRuntime, private readonly opts: GatewayServerOptions) {
    this.runtime = runtime;
    this.accessLog = opts.accessLog;
    const s = opts.server;
    this.protocols = new ClientProtocols(s, () => createServer({
      keepAliveTimeout: s.keepAliveTimeoutMs,
      headersTimeout: s.headersTimeoutMs,
      requestTimeout: s.requestTimeoutMs,
      maxHeaderSize: s.maxHeaderSize,
      connectionsCheckingInterval: s.connectionsCheckingIntervalMs,
      noDelay: true,
    }));
    this.http = this.protocols.server;
    this.limits = { maxUrlLength: s.maxUrlLength, maxHeaderCount: s.maxHeaderCount };
    this.perIp = s.maxConnectionsPerIp > 0 ? new PerIpConnections(s.maxConnectionsPerIp) : null;
    this.overload = overloadEnabled(s.overload) ? new OverloadMonitor(s.overload) : null;
    this.http.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
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
    return this.runtime;
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
    const prev = this.runtime;
    this.runtime = next;
    this.accessLog = accessLog;
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
      else socket.end(rawErrorResponse(503, 'Service Unavailable', 'retry-after: 1\r\n'), () => socket.destroy());
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
    this.onRequest(req, res);
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    // Node's parser rejected the bytes before any request object existed: answer and close, never forward.
    if (!socket.writable || (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
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

  /** Overload: answered at once, before routing, so no plugin and no upstream sees the request. */
  private shed(req: IncomingMessage, res: ServerResponse, ov: OverloadMonitor): void {
    ov.shed++;
    countProtocol(this.opts.metrics, req);
    res.writeHead(503, errorHeaders(503, { 'retry-after': ov.retryAfter }));
    res.end(req.method === 'HEAD' ? undefined : errorBody(503));
    this.opts.metrics.record(this.opts.metrics.unmatched, 503, 0);
  }

  /** A request Node parsed but checkRequest refused: answered and the connection closed. */
  private reject(req: IncomingMessage, res: ServerResponse, status: number): void {
    countProtocol(this.opts.metrics, req);
    res.writeHead(status, errorHeaders(status, req.httpVersionMajor < 2 ? { connection: 'close' } : undefined));
    res.end(req.method === 'HEAD' ? undefined : errorBody(status));
    this.opts.metrics.record(this.opts.metrics.unmatched, status, 0);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const ov = this.overload;
    if (ov !== null && ov.overloaded) {
      this.shed(req, res, ov);
      return;
    }
    const bad = checkRequest(req, this.limits);
    if (bad !== REQUEST_OK) {
      this.reject(req, res, bad);
      return;
    }
    const rt = this.runtime;
    rt.inFlight++;
    this.opts.metrics.inFlight++;
    countProtocol(this.opts.metrics, req);
    const ctx = this.opts.pool.acquire();
    ctx.req = req;
    ctx.res = res;
    ctx.method = req.method!;
    ctx.url = req.url!;
    ctx.startTime = performance.now();
    // what ctx.clientIp resolves with, for hooks, handlers and the access log alike
    ctx.trustedProxies = rt.trustedProxies;
    if (this.draining) res.setHeader('connection', 'close');

    if (rt.preRoute.length === 0) {
      let match;
      try {
        match = rt.router.find(ctx.method, ctx.url);
      } catch (err) {
        this.fail(ctx, rt, null, err);
        return;
      }
      if (match !== null) {
        const route = match.value;
        if (route.kind === RouteKind.Static && !route.hasHooks) {
          ctx.route = route;
          try {
            res.writeHead(route.status, route.headers);
            if (ctx.method === 'HEAD') res.end();
            else if (route.bodyText !== null) res.end(route.bodyText, 'latin1');
            else res.end(route.body);
          } catch (err) {
            this.writeFailed(ctx, rt, route, route.metrics, err);
            return;
          }
          this.finish(ctx, rt, route.status, route.metrics);
          return;
        }
        ctx.route = route;
        ctx.params = match.params;
        this.advance(ctx, rt, route, Stage.PreHandler);
        return;
      }
    }
    this.advance(ctx, rt, null, Stage.PreRoute);
  }

  /**
   * The general pipeline: preRoute → match → preHandler → handler → postHandler → send. It runs synchronously
   * for as long as every hook and the handler do (Fastify-style), so a request whose hooks are all synchronous
   * allocates no promise and no closure; only a stage that returns a promise suspends the pipeline, which then
   * resumes at the next stage when it settles. `route` is the route matched for this request (null before the
   * match, or when nothing matched); errors go through fail() with it, exactly as with an async pipeline.
   */
  private advance(ctx: RequestContext, rt: GatewayRuntime, route: CompiledRoute | null, from: Stage): void {
    try {
      let p: void | Promise<void>;
      if (from === Stage.PreRoute) {
        if (rt.preRoute.length > 0) {
          p = runPhase(rt.preRoute, ctx);
          if (p !== undefined) return this.resume(p, ctx, rt, route, Stage.Match);
        }
        from = Stage.Match;
      }
      if (from === Stage.Match) {
        if (ctx.halted) return this.send(ctx, rt, route);
        const match = rt.router.find(ctx.method, ctx.url);
        if (match === null) {
          this.stageNoRoute(ctx, rt);
          return this.send(ctx, rt, null);
        }
        route = match.value;
        ctx.route = route;
        ctx.params = match.params;
        from = Stage.PreHandler;
      }
      // From here on a route has matched.
      const r = route!;
      if (from === Stage.PreHandler) {
        if (r.preHandler.length > 0) {
          p = runPhase(r.preHandler, ctx);
          if (p !== undefined) return this.resume(p, ctx, rt, r, Stage.Handler);
        }
        from = Stage.Handler;
      }
      if (from === Stage.Handler) {
        if (ctx.halted) return this.send(ctx, rt, r);
        switch (r.kind) {
          case RouteKind.Static:
            ctx.statusCode = r.status;
            ctx.responseHeaders = { ...r.headers };
            ctx.body = r.body;
            break;
          case RouteKind.Upstream:
            if (rt.upstreams === null) throw new HttpError(502);
            return this.resume(this.proxy(ctx, rt.upstreams, r), ctx, rt, r, Stage.PostHandler);
          case RouteKind.Handler:
            p = r.handler!(ctx);
            if (p !== undefined && typeof (p as Promise<void>).then === 'function') return this.resume(p, ctx, rt, r, Stage.PostHandler);
            break;
        }
        from = Stage.PostHandler;
      }
      if (from === Stage.PostHandler && r.postHandler.length > 0) {
        // Hooks here see the staged response; halted only stops pre-send stages that were skipped anyway.
        ctx.halted = false;
        p = runPhase(r.postHandler, ctx);
        if (p !== undefined) return this.resume(p, ctx, rt, r, Stage.Send);
      }
    } catch (err) {
      return this.fail(ctx, rt, route, err);
    }
    this.send(ctx, rt, route);
  }

  /** Continues the pipeline at `next` once a stage's promise settles (its rejection takes the error path). */
  private resume(p: Promise<unknown>, ctx: RequestContext, rt: GatewayRuntime, route: CompiledRoute | null, next: Stage): void {
    p.then(
      () => this.advance(ctx, rt, route, next),
      (err: unknown) => this.fail(ctx, rt, route, err),
    ).catch((err: unknown) => this.pipelineBroke(ctx, err));
  }

  private async proxy(ctx: RequestContext, upstreams: NonNullable<GatewayRuntime['upstreams']>, route: CompiledRoute): Promise<void> {
    if (bodyPending(ctx.req!)) {
      // llhttp emits 'request' at the end of the head and parses the rest of the packet after it: one turn
      // later, a broken body in the same packet (bad chunk, smuggling attempt) has been refused and nothing
      // has been sent upstream. Requests without a body never wait.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const sock = ctx.req!.socket;
      if (sock === null || sock.destroyed || sock.writableEnded) throw new HttpError(400);
    }
    await upstreams.handle(ctx, route.config);
  }

  private stageNoRoute(ctx: RequestContext, rt: GatewayRuntime): void {
    const allowed = rt.allowedMethods(ctx.url);
    if (allowed.length > 0) {
      ctx.statusCode = 405;
      ctx.responseHeaders = errorHeaders(405, { allow: allowed.join(', ') });
      ctx.body = errorBody(405);
    } else {
      ctx.statusCode = 404;
      ctx.responseHeaders = errorHeaders(404);
      ctx.body = errorBody(404);
    }
  }

  /** The error path: the error's answer is staged, onError hooks run (sync-first too), then it is sent. */
  private fail(ctx: RequestContext, rt: GatewayRuntime, route: CompiledRoute | null, err: unknown): void {
    const e = err instanceof MalformedPathError ? new HttpError(400, err.message) : err;
    ctx.error = e;
    const status = statusOf(e);
    if (status >= 500 && (e as { statusCode?: number } | null)?.statusCode === undefined) {
      if (e instanceof PluginHookError) this.opts.logger.error({ err: e, url: ctx.url, route: route?.name, plugin: e.plugin, hook: e.hook }, 'request failed');
      else this.opts.logger.error({ err: e, url: ctx.url, route: route?.name }, 'request failed');
    }
    // Discard any streamed body that was staged before the failure so its socket is released.
    if (ctx.body instanceof Readable) ctx.body.destroy();
    ctx.statusCode = status;
    ctx.responseHeaders = errorHeaders(status, headersOf(e));
    ctx.body = errorBody(status);
    let p: void | Promise<void>;
    try {
      p = runErrorHooks(route?.slots ?? rt.globalSlots, ctx, e);
    } catch {
      p = undefined; // an onError hook that throws is counted in its stats; the staged error answer still goes out
    }
    if (p === undefined) this.send(ctx, rt, route);
    else {
      const sendAnyway = (): void => this.send(ctx, rt, route);
      p.then(sendAnyway, sendAnyway).catch((err: unknown) => this.pipelineBroke(ctx, err));
    }
  }

  /**
   * Last line of defence: something threw where nothing should (send() and finish() catch what they know of).
   * The request's socket is cut so the client is not left waiting; the process and every other request go on.
   */
  private pipelineBroke(ctx: RequestContext, err: unknown): void {
    this.opts.logger.error({ err, url: ctx.url }, 'request pipeline broke; connection closed');
    const res = ctx.res;
    if (res !== null && !res.destroyed) res.destroy();
  }

  private send(ctx: RequestContext, rt: GatewayRuntime, route: CompiledRoute | null): void {
    const res = ctx.res!;
    ctx.responded = true;
    const metricsRoute = route?.metrics ?? this.opts.metrics.unmatched;
    if (res.headersSent || res.destroyed) {
      this.afterSend(ctx, rt, route, metricsRoute, res.headersSent ? ctx.statusCode : 499);
      return;
    }
    // Draining: requests accepted before the signal still get their answer, marked as the connection's last.
    // (HTTP/2 has no connection header: its drain is the GOAWAY sent when the listener closes.)
    if (this.draining && ctx.req!.httpVersionMajor < 2) res.setHeader('connection', 'close');
    let body = ctx.body;
    const isHead = ctx.method === 'HEAD';
    if (body instanceof Readable && body.destroyed && !body.readableEnded) {
      // the staged body broke off while hooks ran (e.g. the upstream died): nothing is sent yet, so say so
      ctx.statusCode = 502;
      ctx.responseHeaders = errorHeaders(502);
      body = ctx.body = errorBody(502);
    }
    // writeHead throws on a status or header node:http refuses (set by a plugin, a handler or an upstream client),
    // and end() on a body of the wrong type: each costs this request, never the process.
    try {
      if (body instanceof Readable) {
        res.writeHead(ctx.statusCode, headersToSend(ctx));
        if (isHead) {
          // A HEAD answer has no body: draining it (rather than destroying) keeps the upstream connection reusable.
          body.on('error', noop);
          body.resume();
          res.end();
          this.afterSend(ctx, rt, route, metricsRoute, ctx.statusCode);
          return;
        }
        streamBody(body, res, (failed) => {
          this.afterSend(ctx, rt, route, metricsRoute, failed ? (res.headersSent ? 502 : 499) : ctx.statusCode);
        });
        return;
      }
      if (body !== null && typeof body !== 'string' && !Buffer.isBuffer(body)) throw new TypeError('ctx.body must be a Buffer, a string, a Readable or null');
      res.writeHead(ctx.statusCode, headersToSend(ctx));
      if (isHead || body === null) res.end();
      // the static route's own body: its latin1 text is precomputed
      else if (route !== null && body === route.body && route.bodyText !== null) res.end(route.bodyText, 'latin1');
      // a small buffer as latin1 (byte for byte): node:http joins it to the head in one chunk (see ONE_WRITE_MAX)
      else if (Buffer.isBuffer(body) && body.length <= ONE_WRITE_MAX) res.end(body.toString('latin1'), 'latin1');
      else res.end(body);
    } catch (err) {
      this.writeFailed(ctx, rt, route, metricsRoute, err);
      return;
    }
    this.afterSend(ctx, rt, route, metricsRoute, ctx.statusCode);
  }

  /**
   * The staged answer could not be written. With nothing on the wire yet the client gets a plain 502 (the answer
   * came from an upstream) or 500 (a plugin or handler staged it); once the head is out only cutting this one
   * connection keeps the client from reading a truncated answer as complete. Either way the request is finished
   * (context released, metrics recorded) like any other.
   */
  private writeFailed(ctx: RequestContext, rt: GatewayRuntime, route: CompiledRoute | null, m: RouteMetrics, err: unknown): void {
    const res = ctx.res!;
    const body = ctx.body;
    if (body instanceof Readable && !body.destroyed) body.destroy();
    const status = route !== null && route.kind === RouteKind.Upstream && ctx.error === null ? 502 : 500;
    this.opts.logger.error({ err, url: ctx.url, route: route?.name, status: ctx.statusCode }, 'response could not be written');
    let answered = 0;
    if (!res.headersSent && !res.destroyed) {
      try {
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        if (this.draining && ctx.req!.httpVersionMajor < 2) res.setHeader('connection', 'close');
        res.writeHead(status, errorHeaders(status));
        res.end(ctx.method === 'HEAD' ? undefined : errorBody(status));
        answered = status;
      } catch {
        // nothing more to try: fall through to cutting the connection
      }
    }
    if (answered === 0 && !res.destroyed) res.destroy();
    this.afterSend(ctx, rt, route, m, answered === 0 ? 502 : answered);
  }

  private afterSend(ctx: RequestContext, rt: GatewayRuntime, route: CompiledRoute | null, m: RouteMetrics, status: number): void {
    if (route !== null && route.postResponse.length > 0) {
      let p: void | Promise<void>;
      try {
        p = runPhase(route.postResponse, ctx);
      } catch (err) {
        // counted in the hook's stats; the response is already out, so the log is all the operator gets
        this.postResponseFailed(ctx, route, err);
        p = undefined;
      }
      if (p !== undefined) {
        const finish = (): void => this.finish(ctx, rt, status, m);
        p.then(finish, (err: unknown) => {
          this.postResponseFailed(ctx, route, err);
          finish();
        }).catch((err: unknown) => this.pipelineBroke(ctx, err));
        return;
      }
    }
    this.finish(ctx, rt, status, m);
  }

  private postResponseFailed(ctx: RequestContext, route: CompiledRoute, err: unknown): void {
    const where = err instanceof PluginHookError ? { plugin: err.plugin, hook: err.hook } : {};
    this.opts.logger.warn({ err, url: ctx.url, route: route.name, ...where }, 'postResponse hook failed');
  }

  /** release context → record metrics (after the response, per the seed's order). */
  private finish(ctx: RequestContext, rt: GatewayRuntime, status: number, m: RouteMetrics): void {
    const latency = performance.now() - ctx.startTime;
    if (this.accessLog) {
      const ms = Math.round(latency * 1000) / 1000;
      // requestId is set by the request-id plugin: it lets an operator join this line with the upstream's logs
      if (ctx.requestId === '') this.opts.logger.info({ method: ctx.method, url: ctx.url, status, ms }, 'access');
      else this.opts.logger.info({ method: ctx.method, url: ctx.url, status, ms, requestId: ctx.requestId }, 'access');
    }
    this.opts.pool.release(ctx);
    this.opts.metrics.inFlight--;
    this.opts.metrics.record(m, status, latency);
    rt.requestDone();
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.runUpgrade(req, socket, head).catch((err: unknown) => {
      this.opts.logger.error({ err, url: req.url }, 'upgrade failed; connection closed');
      socket.destroy();
    });
  }

  /** Upgrade requests go through routing and the preRoute/preHandler hooks (auth applies to WebSockets). */
  private async runUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const bad = checkRequest(req, this.limits);
    if (bad !== REQUEST_OK) {
      socket.on('error', () => socket.destroy());
      socket.end(rawErrorResponse(bad, STATUS_CODES[bad] ?? 'Bad Request'), () => socket.destroy());
      return;
    }
    const rt = this.runtime;
    const ctx = new RequestContext();
    ctx.req = req;
    ctx.method = req.method!;
    ctx.url = req.url!;
    ctx.upgrade = true;
    ctx.startTime = performance.now();
    ctx.trustedProxies = rt.trustedProxies;
    socket.on('error', () => socket.destroy());
    let route: CompiledRoute | null = null;
    try {
      if (rt.preRoute.length > 0) {
        const p = runPhase(rt.preRoute, ctx);
        if (p !== undefined) await p;
      }
      if (!ctx.halted) {
        const match = rt.router.find(ctx.method, ctx.url);
        if (match === null || match.value.kind !== RouteKind.Upstream || rt.upstreams === null) {
          ctx.send(match === null ? 404 : 400, errorHeaders(match === null ? 404 : 400), errorBody(match === null ? 404 : 400));
        } else {
          route = match.value;
          ctx.route = route;
          ctx.params = match.params;
          if (route.preHandler.length > 0) {
            const p = runPhase(route.preHandler, ctx);
            if (p !== undefined) await p;
          }
        }
      }
    } catch (err) {
      const status = statusOf(err instanceof MalformedPathError ? new HttpError(400) : err);
      ctx.send(status, errorHeaders(status, headersOf(err)), errorBody(status));
    }
    if (ctx.halted || route === null) {
      writeRawResponse(socket, ctx);
      return;
    }
    rt.upstreams!.upgrade(ctx, socket, head, route.config);
  }

  /**
   * Graceful drain: stop accepting, mark responses `Connection: close`, close idle keep-alive sockets, wait
   * for in-flight requests until the deadline, then close whatever is left.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.protocols.closeIdle();
    const idleSweep = setInterval(() => this.protocols.closeIdle(), 50);
    const deadline = Date.now() + deadlineMs;
    while (this.opts.metrics.inFlight > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    clearInterval(idleSweep);
    this.overload?.close();
    this.protocols.closeAll();
    for (const s of this.sockets) s.destroy();
    await closed;
    await this.runtime.dispose();
  }
}

/** Where advance() (re)starts the general pipeline. */
const enum Stage {
  PreRoute,
  Match,
  PreHandler,
  Handler,
  PostHandler,
  Send,
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

function noop(): void {}

/** The staged headers with the hooks' extra headers under them (the staged ones win on a name clash). */
function headersToSend(ctx: RequestContext): OutgoingHttpHeaders | undefined {
  const extra = ctx.extraHeaders;
  if (extra.length === 0) return ctx.responseHeaders ?? undefined;
  const out = Object.create(null) as OutgoingHttpHeaders;
  for (let i = 0; i < extra.length; i += 2) out[extra[i]!] = extra[i + 1];
  const staged = ctx.responseHeaders;
  if (staged !== null) for (const name in staged) out[name] = staged[name];
  return out;
}

/**
 * body → res with backpressure, like stream.pipeline but without its per-call AbortController (which builds a
 * DOMException on every completion in Node 20 and measured as a third of the CPU of a proxied request).
 * A body that fails or closes early must not look like a complete response: the client connection is aborted.
 * A client that goes away destroys the body, which aborts the upstream request.
 */
function streamBody(body: Readable, res: Writable, done: (failed: boolean) => void): void {
  let settled = false;
  const settle = (failed: boolean): void => {
    if (settled) return;
    settled = true;
    if (failed) {
      if (!res.destroyed) res.destroy();
      if (!body.destroyed) body.destroy();
    }
    done(failed);
  };
  body.once('error', () => settle(true));
  body.once('close', () => {
    if (!body.readableEnded) settle(true);
  });
  res.once('finish', () => settle(false));
  res.once('close', () => {
    if (!res.writableFinished) settle(true);
  });
  body.pipe(res);
}

function isSendableHeader(name: string, value: string): boolean {
  try {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    return true;
  } catch {
    return false;
  }
}

function writeRawResponse(socket: Duplex, ctx: RequestContext): void {
  const body = ctx.body === null ? Buffer.alloc(0) : typeof ctx.body === 'string' ? Buffer.from(ctx.body) : ctx.body instanceof Buffer ? ctx.body : Buffer.alloc(0);
  const status = Number.isInteger(ctx.statusCode) && ctx.statusCode >= 100 && ctx.statusCode <= 999 ? ctx.statusCode : 500;
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n`;
  const headers = { ...(headersToSend(ctx) ?? {}), 'content-length': String(body.length), connection: 'close' };
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) {
      // Written raw, not through node:http's checks: a name or value it would refuse could split the response.
      if (!isSendableHeader(k, String(one))) continue;
      head += `${k}: ${one}\r\n`;
    }
  }
  socket.end(Buffer.concat([Buffer.from(head + '\r\n'), body]));
}

