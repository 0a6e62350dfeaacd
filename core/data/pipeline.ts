// Over ~350 lines on purpose: the whole stage machine, entry to finish, reads top to bottom in one file (as Fastify's
// handle-request.js does); response writing lives in ./response.ts, connection handling in ../server.ts.
import { STATUS_CODES, type OutgoingHttpHeaders } from 'node:http';
import { Readable, type Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { codeOf, errorBody, errorHeaders, GatewayError, headersOf, HookTimeoutError, PluginHookError, refusalCode, statusOf } from '../base/errors.js';
import { rawErrorResponse } from '../base/raw-http.js';
import type { ObjectPool } from '../contracts/pool.js';
import type { RouteMatch } from '../contracts/router.js';
import type { ServerRequest, ServerResponse } from '../contracts/server.js';
import type { AccessLog } from '../observe/access-log.js';
import type { GatewayMetrics, RouteMetrics } from '../observe/metrics.js';
import { choseAnswer, runErrorHooks, runPhase } from '../plugins/executor.js';
import { canonicalTarget } from './canonical-path.js';
import { finishContext, handleOf, LateWrites } from './context.js';
import { bodyPending, checkRequest, REQUEST_OK, type RequestLimits } from './limits.js';
import { countProtocol } from './listeners.js';
import type { OverloadMonitor } from './overload.js';
import { stageRedirect } from './redirect.js';
import { RequestState } from './request-state.js';
import { ResponseWriter, stageError, writeError, writeStatic, type AfterSend } from './response.js';
import type { RawHeaders, RouteSelector } from './route-select.js';
import { RouteKind, type CompiledRoute, type GatewayRuntime } from './runtime.js';

export interface PipelineOptions {
  pool: ObjectPool<RequestState>;
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

/** What the pipeline is waiting on a plugin's promise for: decides what giving up on it means. */
const enum Wait {
  /** a hook or handler before the answer: give up with a 504 (or, the client gone, with nothing to send) */
  Stage,
  /** onError hooks: send the staged error answer */
  OnError,
  /** postResponse hooks: the answer is out; finish the request */
  PostResponse,
}

/** Bounds of the sweep that enforces server.hookTimeoutMs: a tenth of the timeout, between these. */
const SWEEP_MIN_MS = 5;
const SWEEP_MAX_MS = 1000;

/**
 * The request pipeline, one stage machine for every request: acquire context → preRoute → match → preHandler →
 * handler → postHandler → send → postResponse → finish (release context, record metrics). Read top to bottom:
 * onRequest/onUpgrade (entry), advance (the stages), fail (the error path), then send (core/data/response.ts) →
 * afterSend → finish.
 *
 * - A static route without hooks takes a synchronous fast path in onRequest (no promise, no closure, no
 *   listener); it writes through the same writeStatic and finishes through the same finish as everything else.
 * - A WebSocket upgrade runs the same stages with no ServerResponse: its Handler stage hands the socket to the
 *   upstream (handOff), its send stage writes the refusal raw. It is in flight like any request, so a reload
 *   disposes its runtime only once the hooks it runs are done.
 */
export class RequestPipeline implements AfterSend {
  /** set by drain: answers are marked as the connection's last */
  draining = false;
  /** the runtime new requests start in; a request keeps the one it started in to the end */
  runtime: GatewayRuntime;
  /** the access log of the config in force, null when off */
  accessLog: AccessLog | null;
  private idle: { promise: Promise<void>; resolve: () => void } | null = null;
  private readonly metrics: GatewayMetrics;
  private readonly logger: Logger;
  /** the send stage (core/data/response.ts); it continues at afterSend or finish below */
  private readonly writer: ResponseWriter;
  private readonly pool: ObjectPool<RequestState>;
  private readonly limits: RequestLimits;
  private readonly overload: OverloadMonitor | null;
  /**
   * Requests suspended on plugin code (server.hookTimeoutMs > 0), each with what giving up on it does. Only the
   * async path touches it; the sweep runs only while it is not empty.
   */
  private readonly waiting = new Map<RequestState, (expired: boolean) => void>();
  private sweepTimer: NodeJS.Timeout | null = null;
  /** writes plugins made through a context they kept after its request finished (core/data/context.ts) */
  readonly lateWrites: LateWrites;

  constructor(runtime: GatewayRuntime, accessLog: AccessLog | null, opts: PipelineOptions) {
    this.metrics = opts.metrics;
    this.logger = opts.logger;
    this.writer = new ResponseWriter(opts.metrics, opts.logger, this);
    this.runtime = runtime;
    this.accessLog = accessLog;
    this.pool = opts.pool;
    this.limits = opts.limits;
    this.overload = opts.overload;
    this.lateWrites = new LateWrites(opts.logger);
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

  /**
   * The request that has waited longest on plugin code, for the watchdog's heartbeat: the waits are kept in
   * arrival order, so the first one is it. Only what server.hookTimeoutMs watches is known (nothing with it 0).
   */
  oldestWait(now: number): { route: string | null; plugin: string | null; hook: string; ageMs: number } | null {
    for (const ctx of this.waiting.keys()) {
      const route = ctx.route as CompiledRoute | null;
      return { route: route?.name ?? null, plugin: ctx.hookWait.slot?.name ?? null, hook: ctx.hookWait.hook, ageMs: Math.round(now - ctx.startTime) };
    }
    return null;
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
        match = findRoute(rt, ctx.method, ctx.url, req.rawHeaders);
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
            this.writer.writeFailed(ctx, rt, route, route.metrics, err);
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
      this.metrics.countError(refusalCode(bad));
      socket.end(rawErrorResponse(bad, STATUS_CODES[bad] ?? 'Bad Request'), () => socket.destroy());
      return;
    }
    const rt = this.runtime;
    const ctx = new RequestState();
    this.enter(ctx, req, rt);
    ctx.upgrade = true;
    ctx.socket = socket;
    ctx.upgradeHead = head;
    this.advance(ctx, rt, null, Stage.PreRoute);
  }

  /** Counts the request in flight (worker and runtime) and fills the context's request fields. */
  private enter(ctx: RequestState, req: ServerRequest, rt: GatewayRuntime): void {
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
    this.metrics.countError('GW_ERR_OVERLOADED');
    this.metrics.record(this.metrics.unmatched, 503, 0, req.method!);
  }

  /** A request Node parsed but checkRequest refused: answered and the connection closed. */
  private reject(req: ServerRequest, res: ServerResponse, status: number): void {
    countProtocol(this.metrics, req);
    writeError(res, status, req.httpVersionMajor < 2 ? { connection: 'close' } : undefined, req.method === 'HEAD');
    this.metrics.countError(refusalCode(status));
    this.metrics.record(this.metrics.unmatched, status, 0, req.method!);
  }

  /**
   * The stage machine: preRoute → match → preHandler → handler → postHandler → send. It runs synchronously for as
   * long as every hook and the handler do (Fastify-style), so a request whose hooks are all synchronous allocates
   * no promise and no closure; only a stage that returns a promise suspends it, and it resumes at the next stage
   * when that settles. `route` is the route matched for this request (null before the match, or when nothing
   * matched); errors go through fail() with it, exactly as with an async pipeline.
   */
  private advance(ctx: RequestState, rt: GatewayRuntime, route: CompiledRoute | null, from: Stage): void {
    // what hooks and handlers are given: made here, where plugin code may first run (the static fast path makes none)
    if (ctx.handle === null) handleOf(ctx, this.lateWrites);
    try {
      let p: void | Promise<void>;
      if (from === Stage.PreRoute) {
        if (rt.preRoute.length > 0) {
          p = runPhase(rt.preRoute, ctx);
          if (p !== undefined) return this.resume(p, ctx, rt, route, Stage.Match, true);
        }
        from = Stage.Match;
      }
      if (from === Stage.Match) {
        if (ctx.halted) return this.writer.send(ctx, rt, route);
        const match = findRoute(rt, ctx.method, ctx.url, ctx.req!.rawHeaders);
        if (match === null) {
          stageNoRoute(ctx, rt);
          return this.writer.send(ctx, rt, null);
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
          if (p !== undefined) return this.resume(p, ctx, rt, r, Stage.Handler, true);
        }
        from = Stage.Handler;
      }
      if (from === Stage.Handler) {
        if (ctx.halted) return this.writer.send(ctx, rt, r);
        if (ctx.upgrade) return this.handOff(ctx, rt, r);
        switch (r.kind) {
          case RouteKind.Static:
            ctx.statusCode = r.status;
            ctx.responseHeaders = { ...r.headers };
            ctx.body = r.body;
            break;
          case RouteKind.Upstream:
            if (rt.upstreams === null) throw new GatewayError('GW_ERR_UPSTREAM_UNKNOWN');
            // bounded by the upstream's own timeouts, not by hookTimeoutMs
            return this.resume(proxy(ctx, rt.upstreams, r), ctx, rt, r, Stage.PostHandler, false);
          case RouteKind.Redirect:
            stageRedirect(ctx, r.config.redirect!, r.config.path);
            break;
          case RouteKind.Handler:
            p = r.handler!(ctx.handle!);
            if (p !== undefined && typeof (p as Promise<void>).then === 'function') {
              ctx.hookWait.slot = null;
              ctx.hookWait.hook = 'handler';
              // Adopted into a native promise (the same object for one already): a plugin's own thenable may call
              // both callbacks, one twice, or throw from `then`, and the machine must resume exactly once.
              return this.resume(Promise.resolve(p), ctx, rt, r, Stage.PostHandler, true);
            }
            break;
        }
        from = Stage.PostHandler;
      }
      if (from === Stage.PostHandler && r.postHandler.length > 0) {
        // Hooks here see the staged response; halted only stops pre-send stages that were skipped anyway.
        ctx.halted = false;
        p = runPhase(r.postHandler, ctx);
        if (p !== undefined) return this.resume(p, ctx, rt, r, Stage.Send, true);
      }
    } catch (err) {
      return this.fail(ctx, rt, route, err);
    }
    this.writer.send(ctx, rt, route);
  }

  /**
   * Continues the machine at `next` once a stage's promise settles (its rejection takes the error path). A stage
   * running plugin code (`plugin`) is watched: past server.hookTimeoutMs it is given up on (answered 504), and
   * as soon as the client is gone (nothing left to answer) the request is finished. Either way what the promise
   * does later is ignored.
   */
  private resume(p: Promise<unknown>, ctx: RequestState, rt: GatewayRuntime, route: CompiledRoute | null, next: Stage, plugin: boolean): void {
    const epoch = ctx.hookWait.epoch;
    if (plugin) this.watch(ctx, rt, Wait.Stage, (expired) => this.stageAbandoned(ctx, rt, route, expired));
    p.then(
      () => {
        if (this.settled(ctx, epoch)) this.advance(ctx, rt, route, next);
      },
      (err: unknown) => {
        if (this.settled(ctx, epoch)) this.fail(ctx, rt, route, err);
      },
    ).catch((err: unknown) => this.pipelineBroke(ctx, err));
  }

  /** Starts the hookTimeoutMs clock on a request suspended on plugin code (no-op with the timeout off). */
  private watch(ctx: RequestState, rt: GatewayRuntime, kind: Wait, giveUp: (expired: boolean) => void): void {
    const timeoutMs = rt.config.server.hookTimeoutMs;
    if (timeoutMs === 0) return;
    ctx.hookWait.deadline = performance.now() + timeoutMs;
    ctx.hookWait.forClient = kind !== Wait.PostResponse;
    this.waiting.set(ctx, giveUp);
    if (this.sweepTimer === null) {
      this.sweepTimer = setInterval(() => this.sweep(), Math.min(SWEEP_MAX_MS, Math.max(SWEEP_MIN_MS, Math.floor(timeoutMs / 10))));
      this.sweepTimer.unref();
    }
  }

  /** A watched promise settled: false when the pipeline already gave up on it (it belongs to an older epoch). */
  private settled(ctx: RequestState, epoch: number): boolean {
    if (ctx.hookWait.epoch !== epoch) return false;
    // unwatched waits (the upstream stage, the timeout off) skip the map
    if (ctx.hookWait.deadline !== 0) {
      ctx.hookWait.deadline = 0;
      this.waiting.delete(ctx);
    }
    return true;
  }

  /** Gives up on the waits past their deadline, and on pre-answer waits whose client is gone. */
  private sweep(): void {
    if (this.waiting.size === 0) {
      clearInterval(this.sweepTimer!);
      this.sweepTimer = null;
      return;
    }
    const now = performance.now();
    for (const [ctx, giveUp] of this.waiting) {
      const expired = now >= ctx.hookWait.deadline;
      // postResponse runs after the answer: a closed connection then is normal, not a reason to give up
      if (!expired && !(ctx.hookWait.forClient && ctx.res !== null && ctx.res.destroyed)) continue;
      // first: giving up may run onError hooks that suspend (and are watched) again
      this.waiting.delete(ctx);
      ctx.hookWait.deadline = 0;
      ctx.hookWait.epoch++;
      // the hook may still hold the context: never pooled again
      ctx.hookWait.abandoned = true;
      try {
        giveUp(expired);
      } catch (err) {
        this.pipelineBroke(ctx, err);
      }
    }
  }

  /** The plugin code a request waited on, named for the log line and counted as an error in its hook's stats. */
  private timedOut(ctx: RequestState, rt: GatewayRuntime, route: CompiledRoute | null): HookTimeoutError {
    const slot = ctx.hookWait.slot;
    const hook = ctx.hookWait.hook;
    const plugin = slot !== null ? slot.name : `handler "${route?.config.handler ?? ''}"`;
    const stats = slot?.stats[hook];
    if (stats !== undefined) stats.errors++;
    const timeoutMs = rt.config.server.hookTimeoutMs;
    this.logger.error(
      { code: 'GW_ERR_HOOK_TIMEOUT', url: ctx.url, route: route?.name, plugin, hook, timeoutMs },
      'plugin hook did not settle in time; request given up on',
    );
    return new HookTimeoutError(plugin, hook, timeoutMs);
  }

  private stageAbandoned(ctx: RequestState, rt: GatewayRuntime, route: CompiledRoute | null, expired: boolean): void {
    if (expired) this.fail(ctx, rt, route, this.timedOut(ctx, rt, route));
    // the client left while a hook ran: nothing to answer, the request is finished now (recorded as 499)
    else this.writer.send(ctx, rt, route);
  }

  /**
   * An upgrade's Handler stage, and its last: only a proxied route can tunnel. Once the upstream has the socket
   * the request is finished here (no postHandler, send or postResponse: there is no staged answer to act on).
   */
  private handOff(ctx: RequestState, rt: GatewayRuntime, route: CompiledRoute): void {
    if (route.kind !== RouteKind.Upstream || rt.upstreams === null) {
      stageError(ctx, 'GW_ERR_UPGRADE_REFUSED');
      return this.writer.send(ctx, rt, route);
    }
    rt.upstreams.upgrade(ctx, ctx.socket!, ctx.upgradeHead!, route.config);
    this.finish(ctx, rt, UPGRADE_HANDED_OFF, route.metrics);
  }

  /** The error path: the error's answer is staged, onError hooks run (sync-first too), then it is sent. */
  private fail(ctx: RequestState, rt: GatewayRuntime, route: CompiledRoute | null, e: unknown): void {
    if (ctx.handle === null) handleOf(ctx, this.lateWrites);
    ctx.error = e;
    ctx.errorCode = codeOf(e);
    let status: number;
    let headers: OutgoingHttpHeaders;
    let chosen: boolean;
    try {
      status = statusOf(e);
      chosen = choseAnswer(e);
      headers = errorHeaders(status, headersOf(e));
    } catch (readErr) {
      // A plugin's error whose statusCode/headers getter (or Proxy trap) throws: thrown here, that escaped the
      // pipeline (an uncaught exception on node-http). It is a failure like any other; log what reading it threw.
      status = 500;
      chosen = false;
      headers = errorHeaders(500);
      e = new TypeError('a hook threw an error whose statusCode or headers cannot be read', { cause: readErr });
      ctx.errorCode = 'GW_ERR_PLUGIN_HOOK';
    }
    // an error that carries its own status is the answer someone chose; anything else is a failure to log
    if (status >= 500 && !chosen) {
      const code = ctx.errorCode;
      if (e instanceof PluginHookError) this.logger.error({ err: e, code, url: ctx.url, route: route?.name, plugin: e.plugin, hook: e.hook }, 'request failed');
      else this.logger.error({ err: e, code, url: ctx.url, route: route?.name }, 'request failed');
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
    if (p === undefined) this.writer.send(ctx, rt, route);
    else {
      const epoch = ctx.hookWait.epoch;
      this.watch(ctx, rt, Wait.OnError, (expired) => {
        if (expired) this.timedOut(ctx, rt, route);
        this.writer.send(ctx, rt, route);
      });
      const sendAnyway = (): void => {
        if (this.settled(ctx, epoch)) this.writer.send(ctx, rt, route);
      };
      p.then(sendAnyway, sendAnyway).catch((err: unknown) => this.pipelineBroke(ctx, err));
    }
  }

  /**
   * Last line of defence: something threw where nothing should (send() and finish() catch what they know of).
   * The request's connection is cut so the client is not left waiting; the process and every other request go on.
   */
  private pipelineBroke(ctx: RequestState, err: unknown): void {
    this.logger.error({ err, url: ctx.url }, 'request pipeline broke; connection closed');
    const conn = ctx.upgrade ? ctx.socket : ctx.res;
    if (conn !== null && !conn.destroyed) conn.destroy();
  }

  /** postResponse hooks of the matched route (sync-first), then finish. */
  afterSend(ctx: RequestState, rt: GatewayRuntime, route: CompiledRoute | null, m: RouteMetrics, status: number): void {
    if (route !== null && route.postResponse.length > 0) {
      if (ctx.handle === null) handleOf(ctx, this.lateWrites);
      let p: void | Promise<void>;
      try {
        p = runPhase(route.postResponse, ctx);
      } catch (err) {
        // counted in the hook's stats; the response is already out, so the log is all the operator gets
        this.postResponseFailed(ctx, route, err);
        p = undefined;
      }
      if (p !== undefined) {
        const epoch = ctx.hookWait.epoch;
        this.watch(ctx, rt, Wait.PostResponse, () => {
          this.timedOut(ctx, rt, route);
          this.finish(ctx, rt, status, m);
        });
        p.then(
          () => {
            if (this.settled(ctx, epoch)) this.finish(ctx, rt, status, m);
          },
          (err: unknown) => {
            if (!this.settled(ctx, epoch)) return;
            this.postResponseFailed(ctx, route, err);
            this.finish(ctx, rt, status, m);
          },
        ).catch((err: unknown) => this.pipelineBroke(ctx, err));
        return;
      }
    }
    this.finish(ctx, rt, status, m);
  }

  private postResponseFailed(ctx: RequestState, route: CompiledRoute, err: unknown): void {
    const where = err instanceof PluginHookError ? { plugin: err.plugin, hook: err.hook } : {};
    this.logger.warn({ err, url: ctx.url, route: route.name, ...where }, 'postResponse hook failed');
  }

  /** release context → record metrics (after the response, per the seed's order) → out of flight. */
  finish(ctx: RequestState, rt: GatewayRuntime, status: number, m: RouteMetrics): void {
    const latency = performance.now() - ctx.startTime;
    const log = this.accessLog;
    if (log !== null) log.record(ctx, status, latency);
    if (ctx.errorCode !== null) this.metrics.countError(ctx.errorCode);
    // read before release: the pool resets the context
    const method = ctx.method;
    // An upgrade's context never came from the pool (see onUpgrade) and its tunnel outlives this: its handle stays.
    // Any other request's handle lets go of the state here, so a plugin that kept it cannot reach whichever request
    // reuses the state. An abandoned state (a hook may still be running on it) is not reused at all.
    if (!ctx.upgrade) {
      finishContext(ctx);
      if (!ctx.hookWait.abandoned) this.pool.release(ctx);
    }
    const metrics = this.metrics;
    metrics.record(m, status, latency, method);
    rt.requestDone();
    if (--metrics.inFlight === 0 && this.idle !== null) {
      this.idle.resolve();
      this.idle = null;
    }
  }
}

async function proxy(ctx: RequestState, upstreams: NonNullable<GatewayRuntime['upstreams']>, route: CompiledRoute): Promise<void> {
  if (bodyPending(ctx.req!)) {
    // llhttp emits 'request' at the end of the head and parses the rest of the packet after it: one turn
    // later, a broken body in the same packet (bad chunk, smuggling attempt) has been refused and nothing
    // has been sent upstream. Requests without a body never wait.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const sock = ctx.req!.socket;
    if (sock === null || sock.destroyed || sock.writableEnded) throw new GatewayError('GW_ERR_BAD_REQUEST');
  }
  await upstreams.handle(ctx, route.config);
}

/**
 * The route for a request, refused (400) when the path as an upstream may read it (canonical-path.ts) would match
 * another route or none: the route's plugins (auth, ip-filter, rate-limit) must guard the path the upstream serves.
 * Only paths holding something to read differently pay for the second lookup.
 */
function findRoute(rt: GatewayRuntime, method: string, url: string, headers: RawHeaders): ReturnType<GatewayRuntime['router']['find']> {
  if (rt.selector !== null) return selectRoute(rt.selector, method, url, headers);
  const match = rt.router.find(method, url);
  if (match === null) return null;
  const canonical = canonicalTarget(url);
  if (canonical === url) return match;
  if (canonical === null) throw new GatewayError('GW_ERR_AMBIGUOUS_PATH', 'request path climbs above the root');
  const other = rt.router.find(method, canonical);
  if (other === null || other.value !== match.value) throw new GatewayError('GW_ERR_AMBIGUOUS_PATH', 'request path reads as another route');
  return match;
}

/** findRoute with hosts and `match` conditions (route-select.ts): the same canonical-path rule. */
function selectRoute(selector: RouteSelector<CompiledRoute>, method: string, url: string, headers: RawHeaders): RouteMatch<CompiledRoute> | null {
  const match = selector.find(method, url, headers);
  if (match === null) return null;
  const canonical = canonicalTarget(url);
  if (canonical === url) return match;
  // the selector reuses its answer object: keep this one before the second lookup
  const first = { value: match.value, params: match.params };
  if (canonical === null) throw new GatewayError('GW_ERR_AMBIGUOUS_PATH', 'request path climbs above the root');
  const other = selector.find(method, canonical, headers);
  if (other === null || other.value !== first.value) throw new GatewayError('GW_ERR_AMBIGUOUS_PATH', 'request path reads as another route');
  return first;
}

/** No route matched: 405 with Allow when another method would have, else 404. */
function stageNoRoute(ctx: RequestState, rt: GatewayRuntime): void {
  const allowed = rt.allowedMethods(ctx.url, ctx.req!.rawHeaders);
  if (allowed.length > 0) {
    ctx.statusCode = 405;
    ctx.errorCode = 'GW_ERR_METHOD_NOT_ALLOWED';
    ctx.responseHeaders = errorHeaders(405, { allow: allowed.join(', ') });
    ctx.body = errorBody(405);
  } else stageError(ctx, 'GW_ERR_NO_ROUTE');
}
