// Over ~350 lines on purpose: the whole stage machine, entry to finish, reads top to bottom in one file (as Fastify's
// handle-request.js does); response writing lives in ./response.ts, connection handling in ../server.ts.
import { STATUS_CODES, type OutgoingHttpHeaders } from 'node:http';
import { Readable, type Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { RequestContext } from '../context.js';
import type { ObjectPool } from '../contracts/pool.js';
import type { ServerRequest, ServerResponse } from '../contracts/server.js';
import { carriesStatus, errorBody, errorHeaders, headersOf, HttpError, PluginHookError, statusOf } from '../errors.js';
import { bodyPending, checkRequest, rawErrorResponse, REQUEST_OK, type RequestLimits } from '../limits.js';
import { countProtocol } from '../listeners.js';
import type { GatewayMetrics, RouteMetrics } from '../metrics.js';
import type { OverloadMonitor } from '../overload.js';
import { runErrorHooks, runPhase } from '../plugins/executor.js';
import { RouteKind, type CompiledRoute, type GatewayRuntime } from '../runtime.js';
import { ResponseWriter, stageError, writeError, writeStatic } from './response.js';

export interface PipelineOptions {
  pool: ObjectPool<RequestContext>;
  metrics: GatewayMetrics;
  logger: Logger;
  limits: RequestLimits;
  overload: OverloadMonitor | null;
}

/** Where advance() (re)starts the stage machine. */
const enum Stage {
  PreRoute,
  Match,
  PreHandler,
  Handler,
  PostHandler,
  Send,
}

/** The status an upgrade is recorded with once handed to the upstream: the gateway's part ends with the tunnel's setup. */
const UPGRADE_HANDED_OFF = 101;

/**
 * The request pipeline, one stage machine for every request: acquire context → preRoute → match → preHandler →
 * handler → postHandler → send → postResponse → finish (release context, record metrics). Read top to bottom:
 * onRequest/onUpgrade (entry), advance (the stages), fail (the error path), then send (core/http/response.ts) →
 * afterSend → finish.
 *
 * - A static route without hooks takes a synchronous fast path in onRequest (no promise, no closure, no
 *   listener); it writes through the same writeStatic and finishes through the same finish as everything else.
 * - A WebSocket upgrade runs the same stages with no ServerResponse: its Handler stage hands the socket to the
 *   upstream (handOff), its send stage writes the refusal raw. It is in flight like any request, so a reload
 *   disposes its runtime only once the hooks it runs are done.
 */
export class RequestPipeline extends ResponseWriter {
  /** the runtime new requests start in; a request keeps the one it started in to the end */
  runtime: GatewayRuntime;
  accessLog: boolean;
  private idle: { promise: Promise<void>; resolve: () => void } | null = null;
  private readonly pool: ObjectPool<RequestContext>;
  private readonly limits: RequestLimits;
  private readonly overload: OverloadMonitor | null;

  constructor(runtime: GatewayRuntime, accessLog: boolean, opts: PipelineOptions) {
    super(opts.metrics, opts.logger);
    this.runtime = runtime;
    this.accessLog = accessLog;
    this.pool = opts.pool;
    this.limits = opts.limits;
    this.overload = opts.overload;
  }

  /** Resolves once no request is in flight: the last one to finish resolves it (drain waits on this). */
  whenIdle(): Promise<void> {
    if (this.metrics.inFlight === 0) return Promise.resolve();
    if (this.idle === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.idle = { promise, resolve };
    }
    return this.idle.promise;
  }

  onRequest(req: ServerRequest, res: ServerResponse): void {
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
    const ctx = this.pool.acquire();
    this.enter(ctx, req, rt);
    ctx.res = res;
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
        ctx.route = route;
        if (route.kind === RouteKind.Static && !route.hasHooks) {
          try {
            writeStatic(res, route.status, route.headers, route.body, route.bodyText, ctx.method === 'HEAD');
          } catch (err) {
            this.writeFailed(ctx, rt, route, route.metrics, err);
            return;
          }
          this.finish(ctx, rt, route.status, route.metrics);
          return;
        }
        ctx.params = match.params;
        this.advance(ctx, rt, route, Stage.PreHandler);
        return;
      }
    }
    this.advance(ctx, rt, null, Stage.PreRoute);
  }

  /**
   * Upgrade requests go through routing and the preRoute/preHandler hooks (auth applies to WebSockets). Their
   * context is not pooled: it is handed to the upstream's tunnel, which may keep it past finish(); upgrades come
   * once per WebSocket connection, so the allocation is not on any hot path.
   */
  onUpgrade(req: ServerRequest, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const bad = checkRequest(req, this.limits);
    if (bad !== REQUEST_OK) {
      socket.end(rawErrorResponse(bad, STATUS_CODES[bad] ?? 'Bad Request'), () => socket.destroy());
      return;
    }
    const rt = this.runtime;
    const ctx = new RequestContext();
    this.enter(ctx, req, rt);
    ctx.upgrade = true;
    ctx.socket = socket;
    ctx.upgradeHead = head;
    this.advance(ctx, rt, null, Stage.PreRoute);
  }

  /** Counts the request in flight (worker and runtime) and fills the context's request fields. */
  private enter(ctx: RequestContext, req: ServerRequest, rt: GatewayRuntime): void {
    rt.inFlight++;
    this.metrics.inFlight++;
    countProtocol(this.metrics, req);
    ctx.req = req;
    ctx.method = req.method!;
    ctx.url = req.url!;
    ctx.startTime = performance.now();
    // what ctx.clientIp resolves with, for hooks, handlers and the access log alike
    ctx.trustedProxies = rt.trustedProxies;
  }

  /** Overload: answered at once, before routing, so no plugin and no upstream sees the request. */
  private shed(req: ServerRequest, res: ServerResponse, ov: OverloadMonitor): void {
    ov.shed++;
    countProtocol(this.metrics, req);
    writeError(res, 503, { 'retry-after': ov.retryAfter }, req.method === 'HEAD');
    this.metrics.record(this.metrics.unmatched, 503, 0, req.method!);
  }

  /** A request Node parsed but checkRequest refused: answered and the connection closed. */
  private reject(req: ServerRequest, res: ServerResponse, status: number): void {
    countProtocol(this.metrics, req);
    writeError(res, status, req.httpVersionMajor < 2 ? { connection: 'close' } : undefined, req.method === 'HEAD');
    this.metrics.record(this.metrics.unmatched, status, 0, req.method!);
  }

  /**
   * The stage machine: preRoute → match → preHandler → handler → postHandler → send. It runs synchronously for as
   * long as every hook and the handler do (Fastify-style), so a request whose hooks are all synchronous allocates
   * no promise and no closure; only a stage that returns a promise suspends it, and it resumes at the next stage
   * when that settles. `route` is the route matched for this request (null before the match, or when nothing
   * matched); errors go through fail() with it, exactly as with an async pipeline.
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
          stageNoRoute(ctx, rt);
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
        if (ctx.upgrade) return this.handOff(ctx, rt, r);
        switch (r.kind) {
          case RouteKind.Static:
            ctx.statusCode = r.status;
            ctx.responseHeaders = { ...r.headers };
            ctx.body = r.body;
            break;
          case RouteKind.Upstream:
            if (rt.upstreams === null) throw new HttpError(502);
            return this.resume(proxy(ctx, rt.upstreams, r), ctx, rt, r, Stage.PostHandler);
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

  /** Continues the machine at `next` once a stage's promise settles (its rejection takes the error path). */
  private resume(p: Promise<unknown>, ctx: RequestContext, rt: GatewayRuntime, route: CompiledRoute | null, next: Stage): void {
    p.then(
      () => this.advance(ctx, rt, route, next),
      (err: unknown) => this.fail(ctx, rt, route, err),
    ).catch((err: unknown) => this.pipelineBroke(ctx, err));
  }

  /**
   * An upgrade's Handler stage, and its last: only a proxied route can tunnel. Once the upstream has the socket
   * the request is finished here (no postHandler, send or postResponse: there is no staged answer to act on).
   */
  private handOff(ctx: RequestContext, rt: GatewayRuntime, route: CompiledRoute): void {
    if (route.kind !== RouteKind.Upstream || rt.upstreams === null) {
      stageError(ctx, 400);
      return this.send(ctx, rt, route);
    }
    rt.upstreams.upgrade(ctx, ctx.socket!, ctx.upgradeHead!, route.config);
    this.finish(ctx, rt, UPGRADE_HANDED_OFF, route.metrics);
  }

  /** The error path: the error's answer is staged, onError hooks run (sync-first too), then it is sent. */
  private fail(ctx: RequestContext, rt: GatewayRuntime, route: CompiledRoute | null, e: unknown): void {
    ctx.error = e;
    let status: number;
    let headers: OutgoingHttpHeaders;
    let chosen: boolean;
    try {
      status = statusOf(e);
      chosen = carriesStatus(e);
      headers = errorHeaders(status, headersOf(e));
    } catch (readErr) {
      // A plugin's error whose statusCode/headers getter (or Proxy trap) throws: thrown here, that escaped the
      // pipeline (an uncaught exception on node-http). It is a failure like any other; log what reading it threw.
      status = 500;
      chosen = false;
      headers = errorHeaders(500);
      e = new TypeError('a hook threw an error whose statusCode or headers cannot be read', { cause: readErr });
    }
    // an error that carries its own status is the answer someone chose; anything else is a failure to log
    if (status >= 500 && !chosen) {
      if (e instanceof PluginHookError) this.logger.error({ err: e, url: ctx.url, route: route?.name, plugin: e.plugin, hook: e.hook }, 'request failed');
      else this.logger.error({ err: e, url: ctx.url, route: route?.name }, 'request failed');
    }
    // Discard any streamed body that was staged before the failure so its socket is released.
    if (ctx.body instanceof Readable) ctx.body.destroy();
    ctx.statusCode = status;
    ctx.responseHeaders = headers;
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
   * The request's connection is cut so the client is not left waiting; the process and every other request go on.
   */
  protected pipelineBroke(ctx: RequestContext, err: unknown): void {
    this.logger.error({ err, url: ctx.url }, 'request pipeline broke; connection closed');
    const conn = ctx.upgrade ? ctx.socket : ctx.res;
    if (conn !== null && !conn.destroyed) conn.destroy();
  }

  /** postResponse hooks of the matched route (sync-first), then finish. */
  protected afterSend(ctx: RequestContext, rt: GatewayRuntime, route: CompiledRoute | null, m: RouteMetrics, status: number): void {
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
    this.logger.warn({ err, url: ctx.url, route: route.name, ...where }, 'postResponse hook failed');
  }

  /** release context → record metrics (after the response, per the seed's order) → out of flight. */
  protected finish(ctx: RequestContext, rt: GatewayRuntime, status: number, m: RouteMetrics): void {
    const latency = performance.now() - ctx.startTime;
    if (this.accessLog) {
      const ms = Math.round(latency * 1000) / 1000;
      // requestId is set by the request-id plugin: it lets an operator join this line with the upstream's logs
      if (ctx.requestId === '') this.logger.info({ method: ctx.method, url: ctx.url, status, ms }, 'access');
      else this.logger.info({ method: ctx.method, url: ctx.url, status, ms, requestId: ctx.requestId }, 'access');
    }
    // read before release: the pool resets the context
    const method = ctx.method;
    // an upgrade's context never came from the pool (see onUpgrade)
    if (!ctx.upgrade) this.pool.release(ctx);
    const metrics = this.metrics;
    metrics.record(m, status, latency, method);
    rt.requestDone();
    if (--metrics.inFlight === 0 && this.idle !== null) {
      this.idle.resolve();
      this.idle = null;
    }
  }
}

async function proxy(ctx: RequestContext, upstreams: NonNullable<GatewayRuntime['upstreams']>, route: CompiledRoute): Promise<void> {
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

/** No route matched: 405 with Allow when another method would have, else 404. */
function stageNoRoute(ctx: RequestContext, rt: GatewayRuntime): void {
  const allowed = rt.allowedMethods(ctx.url);
  if (allowed.length > 0) {
    ctx.statusCode = 405;
    ctx.responseHeaders = errorHeaders(405, { allow: allowed.join(', ') });
    ctx.body = errorBody(405);
  } else stageError(ctx, 404);
}
