import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { RouteConfig, UpstreamConfig } from '../config/types.js';
import type { RequestContext } from '../context.js';
import {
  UpstreamClientError,
  type UpstreamClientFactory,
  type UpstreamErrorKind,
  type UpstreamRequestOptions,
  type UpstreamResponse,
} from '../contracts/upstream.js';
import { createBalancer, type Balancer } from './balancers.js';
import { ProxyError } from './errors.js';
import { buildRequestHeaders, buildResponseHeaders, dropBodyFraming, forwardingInfo } from './headers.js';
import { ActiveHealthChecker } from './health.js';
import { upstreamTarget, type ProxyPath } from './path.js';
import { Target } from './target.js';
import type { TrustedProxies } from './trust.js';
import { RollingPair } from './window.js';

/** Retries always allowed per budget window on top of budgetRatio × requests, so a quiet upstream can retry. */
const MIN_RETRIES_PER_WINDOW = 3;
const BUDGET_WINDOW_MS = 10_000;

/** which retries.on entry an error kind falls under */
const RETRY_ON_KIND: Record<UpstreamErrorKind, string> = {
  connect: 'connect-error',
  'connect-timeout': 'connect-error',
  'headers-timeout': 'timeout',
  reset: 'reset',
  aborted: '',
  protocol: '',
};

function errorStatus(kind: UpstreamErrorKind): number {
  return kind === 'connect-timeout' || kind === 'headers-timeout' ? 504 : 502;
}

function noop(): void {}

/** Throw away an upstream body nobody will read; a streamed one's connection is closed, not reused. */
function discard(body: Readable | Buffer): void {
  if (Buffer.isBuffer(body)) return;
  body.on('error', noop);
  body.destroy();
}

/** One configured upstream: its targets, balancer, health checks and retry budget. */
export class UpstreamGroup {
  readonly targets: Target[];
  private readonly balancer: Balancer;
  private readonly health: ActiveHealthChecker;
  private readonly retryOn: Set<string>;
  private readonly retryMethods: Set<string>;
  /** a = requests, b = retries */
  private readonly budget = new RollingPair(BUDGET_WINDOW_MS);
  private readonly hashHeader: string | null;
  retries = 0;
  budgetExhausted = 0;
  noTarget = 0;

  constructor(
    readonly name: string,
    readonly cfg: UpstreamConfig,
    clientFactory: UpstreamClientFactory,
    private readonly trust: TrustedProxies,
    private readonly logger: Logger,
  ) {
    this.targets = cfg.targets.map((t, i) => new Target(i, t.url, t.weight, cfg, clientFactory, logger));
    this.balancer = createBalancer(cfg.balancer, this.targets);
    this.health = new ActiveHealthChecker(this.targets, cfg.healthCheck.active, logger);
    this.retryOn = new Set(cfg.retries.on);
    this.retryMethods = new Set(cfg.retries.methods);
    this.hashHeader = cfg.hashKey.startsWith('header:') ? cfg.hashKey.slice(7).toLowerCase() : null;
  }

  start(): void {
    this.health.start();
  }

  async close(): Promise<void> {
    this.health.stop();
    await Promise.all(this.targets.map((t) => t.client.close()));
  }

  hashKey(ctx: RequestContext, peer: string): string | null {
    if (this.cfg.balancer !== 'consistent-hash') return null;
    const req = ctx.req!;
    if (this.hashHeader === null) {
      const xff = req.headers['x-forwarded-for'];
      return this.trust.clientIp(peer, typeof xff === 'string' ? xff : undefined);
    }
    const v = req.headers[this.hashHeader];
    return v === undefined ? null : typeof v === 'string' ? v : v.join(',');
  }

  /** Pick a target for a new attempt (untried ones first), or null when none is available. */
  pick(now: number, key: string | null, tried: number): Target | null {
    const t = this.balancer.pick(now, key, tried);
    if (t !== null || tried === 0) return t;
    return this.balancer.pick(now, key, 0);
  }

  /** 503 with Retry-After: the soonest any target comes back (at least 1 s). */
  unavailable(now: number): ProxyError {
    this.noTarget++;
    let ms = Infinity;
    for (const t of this.targets) {
      const r = t.retryAfterMs(now);
      if (r < ms) ms = r;
    }
    if (!Number.isFinite(ms) || ms <= 0) ms = this.cfg.healthCheck.active.enabled ? this.cfg.healthCheck.active.intervalMs : 1000;
    const seconds = Math.max(1, Math.ceil(ms / 1000));
    return new ProxyError(503, `no available target in upstream ${this.name}`, { 'retry-after': String(seconds) });
  }

  private mayRetry(attempt: number, replayable: boolean, reason: string, now: number): boolean {
    if (!replayable || attempt >= this.cfg.retries.count || !this.retryOn.has(reason)) return false;
    const allowed = this.cfg.retries.budgetRatio * this.budget.sumA(now) + MIN_RETRIES_PER_WINDOW;
    if (this.budget.sumB(now) >= allowed) {
      this.budgetExhausted++;
      return false;
    }
    this.budget.addB(now);
    this.retries++;
    return true;
  }

  async forward(ctx: RequestContext, route: RouteConfig, path: ProxyPath): Promise<void> {
    const req = ctx.req!;
    const target0 = upstreamTarget(ctx.url, ctx.params, path);
    const fwd = forwardingInfo(req, this.trust);
    const headers = buildRequestHeaders(req, fwd, route.requestHeaders, false);
    const body = ctx.requestBody !== null;
    const method = ctx.method;
    const replayable = !body && this.retryMethods.has(method);
    const timeouts = this.cfg.timeouts;
    const headersMs = route.timeoutMs ?? timeouts.headersMs;
    const start = Date.now();
    const deadline = start + (route.timeoutMs ?? timeouts.requestMs);
    const key = this.hashKey(ctx, fwd.peer);
    this.budget.addA(start);

    // the client may leave while we wait for the upstream: abort the attempt in flight
    const res = ctx.res;
    let clientGone = false;
    let inFlight: UpstreamRequestOptions | null = null;
    let staged: Readable | null = null;
    const onClientClose = (): void => {
      if (res === null || !res.writableFinished) {
        clientGone = true;
        if (inFlight !== null && inFlight.abort !== null) inFlight.abort();
      }
      // the response is over (or the client left) but the upstream body was not consumed — e.g. a hook replaced
      // ctx.body: destroy it so its connection is released, not leaked
      if (staged !== null && !staged.readableEnded) discard(staged);
    };
    // on(), not once(): once() wraps the listener in two more objects per request; detach() always runs
    if (res !== null) res.on('close', onClientClose);
    else req.socket.on('close', onClientClose);
    const detach = (): void => {
      if (res !== null) res.removeListener('close', onClientClose);
      else req.socket.removeListener('close', onClientClose);
    };

    let tried = 0;
    let lastError: ProxyError | null = null;
    for (let attempt = 0; ; attempt++) {
      const now = attempt === 0 ? start : Date.now();
      const target = this.pick(now, key, tried);
      if (target === null) {
        detach();
        throw lastError ?? this.unavailable(now);
      }
      if (target.index <= 30) tried |= 1 << target.index;
      if (clientGone) {
        detach();
        throw new ProxyError(502, 'client went away');
      }
      const remaining = deadline - now;
      if (remaining <= 0) {
        detach();
        throw new ProxyError(504, `upstream ${this.name}: request timed out`);
      }
      headers.host = route.preserveHost && req.headers.host !== undefined ? req.headers.host : target.host;
      const probe = target.dispatch();
      let upstreamRes: UpstreamResponse;
      try {
        inFlight = {
          method,
          path: target.basePath === '' ? target0 : target.basePath + target0,
          headers,
          body: body ? req : null,
          headersTimeoutMs: remaining < headersMs ? remaining : headersMs,
          idleTimeoutMs: timeouts.idleMs,
          abort: null,
        };
        const sentAt = performance.now();
        upstreamRes = await target.client.request(inFlight);
        target.headersReceived(performance.now() - sentAt);
      } catch (err) {
        const kind: UpstreamErrorKind = err instanceof UpstreamClientError ? err.kind : 'reset';
        if (clientGone || kind === 'aborted') {
          target.release(probe);
          detach();
          throw new ProxyError(502, 'client went away');
        }
        target.complete(false, probe, Date.now());
        this.logger.debug({ target: target.url, kind, err: (err as Error).message }, 'upstream attempt failed'); // the logger names the upstream
        lastError = new ProxyError(errorStatus(kind), `upstream ${this.name}: ${kind}`);
        if (this.mayRetry(attempt, replayable, RETRY_ON_KIND[kind], Date.now())) continue;
        detach();
        throw lastError;
      }

      const status = upstreamRes.statusCode;
      const failed = status === 502 || status === 503 || status === 504;
      if (failed && this.mayRetry(attempt, replayable, String(status), Date.now())) {
        // discard this answer: nothing of it has reached the client
        discard(upstreamRes.body);
        target.complete(false, probe, Date.now());
        lastError = new ProxyError(status, `upstream ${this.name}: ${status}`);
        continue;
      }
      if (status === 500 && this.mayRetry(attempt, replayable, '500', Date.now())) {
        discard(upstreamRes.body);
        target.complete(true, probe, Date.now());
        continue;
      }

      if (!Buffer.isBuffer(upstreamRes.body)) staged = upstreamRes.body;
      this.stage(ctx, route, upstreamRes, target, probe, failed, () => clientGone, detach);
      return;
    }
  }

  /** Put the upstream answer on ctx and account for the body's fate when it finishes. */
  private stage(
    ctx: RequestContext,
    route: RouteConfig,
    upstreamRes: UpstreamResponse,
    target: Target,
    probe: boolean,
    failedStatus: boolean,
    clientGone: () => boolean,
    detach: () => void,
  ): void {
    const body = upstreamRes.body;
    if (!Buffer.isBuffer(body) && body.destroyed && !body.readableEnded) {
      // broke off before we got to it (e.g. a malformed chunk in the head's packet): nothing reached the client yet
      detach();
      target.complete(false, probe, Date.now());
      throw new ProxyError(502, `upstream ${this.name}: response body broke off`);
    }
    const status = upstreamRes.statusCode;
    ctx.statusCode = status;
    const headers = buildResponseHeaders(upstreamRes.headers, route.responseHeaders, false);
    if (status === 204 || status < 200) dropBodyFraming(headers, status);
    ctx.responseHeaders = headers;
    ctx.body = body;
    if (Buffer.isBuffer(body)) {
      // the whole exchange is already over (the client had the body with the head): nothing left to watch
      detach();
      target.complete(!failedStatus, probe, Date.now());
      return;
    }
    // an upstream failure before the core starts piping (hooks still running) must not be an unhandled 'error'
    body.on('error', noop);
    body.once('close', () => {
      detach();
      if (body.readableEnded) target.complete(!failedStatus, probe, Date.now());
      else if (clientGone()) target.release(probe);
      // the upstream broke off mid-body (or went idle): a failure of the target
      else target.complete(false, probe, Date.now());
    });
  }

  stats(now: number): Record<string, unknown> {
    return {
      balancer: this.cfg.balancer,
      retries: this.retries,
      retryBudgetExhausted: this.budgetExhausted,
      noTarget: this.noTarget,
      healthChecks: this.health.checks,
      targets: this.targets.map((t) => t.snapshot(now)),
    };
  }
}
