import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { RouteConfig, UpstreamConfig } from '../config/types.js';
import {
  UPSTREAM_ERROR_CODES,
  UpstreamClientError,
  type UpstreamClientFactory,
  type UpstreamErrorKind,
  type UpstreamRequestOptions,
  type UpstreamResponse,
} from '../contracts/upstream.js';
import type { RequestState } from '../data/request-state.js';
import { createBalancer, type Balancer } from './balancers.js';
import { DnsDiscovery, discoveryTarget, type DiscoveredAddress, type DiscoveryTarget } from './discovery.js';
import { ProxyError } from './errors.js';
import { decodeTextBody, grpcWebMode, GrpcWebMode, toGrpcRequestHeaders } from './grpc-web.js';
import { grpcTimeoutMs, isGrpcRequest } from './grpc.js';
import { asksNoBuffering, buildRequestHeaders, buildResponseHeaders, dropBodyFraming, forwardingInfo } from './headers.js';
import { ActiveHealthChecker } from './health.js';
import { upstreamTarget, type ProxyPath } from './path.js';
import { plainSpec, Target, type TargetSpec } from './target.js';
import { relayResponseTrailers, requestTrailers, TrailerCounts } from './trailers.js';
import type { TrustedProxies } from './trust.js';
import { daysUntil, loadUpstreamTls, type UpstreamTlsMaterial } from './upstream-tls.js';
import { RollingPair } from './window.js';

/** Retries always allowed per budget window on top of budgetRatio × requests, so a quiet upstream can retry. */
const MIN_RETRIES_PER_WINDOW = 3;
const BUDGET_WINDOW_MS = 10_000;

/** which retries.on entry an error kind falls under */
const RETRY_ON_KIND: Record<UpstreamErrorKind, string> = {
  connect: 'connect-error',
  'connect-timeout': 'connect-error',
  // another target may present a good certificate; the same one will not until it is fixed
  tls: 'connect-error',
  'headers-timeout': 'timeout',
  reset: 'reset',
  aborted: '',
  protocol: '',
};

function noop(): void {}

/** Throw away an upstream body nobody will read; a streamed one's connection is closed, not reused. */
function discard(body: Readable | Buffer): void {
  if (Buffer.isBuffer(body)) return;
  body.on('error', noop);
  body.destroy();
}

/** A `dns` block's defaults for an upstream that has dns+srv:// targets but no `dns` block. */
const DNS_DEFAULTS = { refreshMs: 30_000, respectTtl: false } as const;

/** One configured target: connected to as written, or a name DNS discovery turns into addresses. */
type TargetSource = { spec: TargetSpec; dns: null } | { spec: null; dns: DnsDiscovery; weight: number };

/** The targets of one SRV priority (plain and A/AAAA targets are all priority 0) and their balancer. */
interface Tier {
  priority: number;
  balancer: Balancer;
}

/** The target a discovered address becomes. */
function discoveredSpec(d: DiscoveryTarget, a: DiscoveredAddress, weight: number): TargetSpec {
  const host = a.address.includes(':') ? `[${a.address}]` : a.address;
  const defaultPort = d.protocol === 'https:' ? 443 : 80;
  return {
    url: `${d.protocol}//${host}:${a.port}${d.basePath}`,
    weight: d.kind === 'srv' ? a.weight : weight,
    hostname: a.hostname,
    hostPort: a.port === defaultPort ? '' : String(a.port),
    source: d.url,
    priority: a.priority,
  };
}

/** One configured upstream: its targets, balancer, health checks and retry budget. */
export class UpstreamGroup {
  /** the targets in rotation, in a stable order (index = position); replaced when DNS changes them */
  targets: Target[] = [];
  /** targets DNS no longer returns, finishing their requests in flight */
  private readonly draining = new Set<Target>();
  private readonly sources: TargetSource[];
  /** by ascending priority; requests go to the first tier with an available target */
  private tiers: Tier[] = [];
  private readonly tlsMaterial: UpstreamTlsMaterial | null;
  private readonly health: ActiveHealthChecker;
  private closed = false;
  private readonly retryOn: Set<string>;
  private readonly retryMethods: Set<string>;
  /** a = requests, b = retries */
  private readonly budget = new RollingPair(BUDGET_WINDOW_MS);
  private readonly hashHeader: string | null;
  retries = 0;
  budgetExhausted = 0;
  noTarget = 0;
  readonly trailers = new TrailerCounts();

  constructor(
    readonly name: string,
    readonly cfg: UpstreamConfig,
    private readonly clientFactory: UpstreamClientFactory,
    private readonly trust: TrustedProxies,
    private readonly logger: Logger,
  ) {
    // throws TlsLoadError (a file that changed since validation): the runtime build reports it
    this.tlsMaterial = cfg.tls === undefined ? null : loadUpstreamTls(name, cfg.tls);
    this.sources = cfg.targets.map((t): TargetSource => {
      const d = discoveryTarget(t.url, cfg);
      if (d === null) return { spec: plainSpec(t.url, t.weight), dns: null };
      return { spec: null, dns: new DnsDiscovery(d, cfg.dns ?? DNS_DEFAULTS, logger, () => this.rebuild()), weight: t.weight };
    });
    this.rebuild();
    this.health = new ActiveHealthChecker(this.targets, cfg.healthCheck.active, logger);
    this.retryOn = new Set(cfg.retries.on);
    this.retryMethods = new Set(cfg.retries.methods);
    this.hashHeader = cfg.hashKey.startsWith('header:') ? cfg.hashKey.slice(7).toLowerCase() : null;
  }

  start(): void {
    this.health.start();
  }

  /** Starts DNS discovery; settles once every discovered target's first lookup has (whatever its outcome). */
  async discover(): Promise<void> {
    await Promise.all(this.discoveries().map((d) => d.start()));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.health.stop();
    for (const s of this.sources) s.dns?.stop();
    await Promise.all([...this.targets, ...this.draining].map((t) => t.client.close()));
  }

  /**
   * (Re)builds the target list from the sources: a target whose address is still there keeps its pool, health
   * and breaker state; a new address gets a new target; one that is gone drains (no new requests, those in flight
   * finish). Runs at construction and whenever a DNS answer changes.
   */
  private rebuild(): void {
    if (this.closed) return;
    const previous = new Map<string, Target>();
    for (const t of this.targets) previous.set(`${t.source} ${t.url}`, t);
    const next: Target[] = [];
    const added = new Set<string>();
    const add = (spec: TargetSpec): void => {
      // one target per address, the first configured target that names it wins: two would share a metric series
      if (added.has(spec.url)) return;
      added.add(spec.url);
      const key = `${spec.source} ${spec.url}`;
      let kept = previous.get(key);
      if (kept === undefined) kept = this.reviveDraining(key);
      if (kept !== undefined) {
        previous.delete(key);
        kept.index = next.length;
        kept.weight = spec.weight;
        kept.priority = spec.priority;
        next.push(kept);
      } else {
        next.push(new Target(next.length, spec, this.cfg, this.clientFactory, this.tlsMaterial, this.logger));
      }
    };
    for (const s of this.sources) {
      if (s.spec !== null) add(s.spec);
      else for (const a of s.dns.addresses) add(discoveredSpec(s.dns.target, a, s.weight));
    }
    for (const gone of previous.values()) {
      this.draining.add(gone);
      gone.drain(() => this.draining.delete(gone));
    }
    this.targets = next;
    // SRV weights are honoured whatever the balancer: plain round-robin becomes its weighted form
    const srv = this.sources.some((s) => s.dns?.target.kind === 'srv');
    const balancer = srv && this.cfg.balancer === 'round-robin' ? 'weighted-round-robin' : this.cfg.balancer;
    const priorities = [...new Set(next.map((t) => t.priority))].sort((a, b) => a - b);
    this.tiers = priorities.map((priority) => ({
      priority,
      balancer: createBalancer(
        balancer,
        next.filter((t) => t.priority === priority),
      ),
    }));
    // undefined while the constructor runs: the checker is created with the first list
    (this.health as ActiveHealthChecker | undefined)?.setTargets(next);
  }
  hashKey(ctx: RequestState, peer: string): string | null {
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
    const tiers = this.tiers;
    for (let i = 0; i < tiers.length; i++) {
      const t = tiers[i]!.balancer.pick(now, key, tried);
      if (t !== null) return t;
    }
    if (tried === 0) return null;
    for (let i = 0; i < tiers.length; i++) {
      const t = tiers[i]!.balancer.pick(now, key, 0);
      if (t !== null) return t;
    }
    return null;
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
    return new ProxyError('GW_ERR_UPSTREAM_UNAVAILABLE', `no available target in upstream ${this.name}`, { 'retry-after': String(seconds) });
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

  /** `bodyFrom`: what to read the request body from instead of the client's request (a mirror's tee, core/proxy/mirror.ts) */
  async forward(ctx: RequestState, route: RouteConfig, path: ProxyPath, bodyFrom: Readable | null = null): Promise<void> {
    const req = ctx.req!;
    const target0 = upstreamTarget(ctx.url, ctx.params, path);
    const fwd = forwardingInfo(req, this.trust);
    const headers = buildRequestHeaders(req, fwd, route.requestHeaders, false, ctx.upstreamHeaders);
    // gRPC-Web to an HTTP/2 upstream is sent as gRPC (./grpc-web.ts); to an HTTP/1.1 one, as it is
    const webMode = this.cfg.protocol === 'http1' ? GrpcWebMode.None : grpcWebMode(req);
    if (webMode !== GrpcWebMode.None) {
      toGrpcRequestHeaders(headers, webMode);
      if (webMode === GrpcWebMode.Text && ctx.requestBody !== null) bodyFrom = decodeTextBody(bodyFrom ?? req, () => ctx.res?.destroy());
    }
    const body = ctx.requestBody !== null;
    const method = ctx.method;
    const replayable = !body && this.retryMethods.has(method);
    const timeouts = this.cfg.timeouts;
    // a gRPC call's own deadline bounds every attempt too (the send stage bounds the rest of the call)
    const callMs = isGrpcRequest(req) || webMode !== GrpcWebMode.None ? grpcTimeoutMs(req.headers) : -1;
    let headersMs = route.timeoutMs ?? timeouts.headersMs;
    let requestMs = route.timeoutMs ?? timeouts.requestMs;
    if (callMs >= 0) {
      if (callMs < headersMs) headersMs = Math.max(1, callMs);
      if (callMs < requestMs) requestMs = Math.max(1, callMs);
    }
    const start = Date.now();
    const deadline = start + requestMs;
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
    // a request with a body is sent once (never replayed), so its trailers are handed to one attempt only
    let trailers: (() => string[] | null) | null | undefined;
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
        throw new ProxyError('GW_ERR_CLIENT_GONE', 'client went away');
      }
      const remaining = deadline - now;
      if (remaining <= 0) {
        detach();
        throw new ProxyError('GW_ERR_UPSTREAM_TIMEOUT', `upstream ${this.name}: request timed out`);
      }
      headers.host = route.preserveHost && req.headers.host !== undefined ? req.headers.host : target.host;
      const probe = target.dispatch();
      let upstreamRes: UpstreamResponse;
      try {
        inFlight = {
          method,
          path: target.basePath === '' ? target0 : target.basePath + target0,
          headers,
          body: body ? (bodyFrom ?? req) : null,
          headersTimeoutMs: remaining < headersMs ? remaining : headersMs,
          idleTimeoutMs: timeouts.idleMs,
          abort: null,
          trailers: body
            ? (trailers ??= requestTrailers(
                req,
                req,
                route.requestHeaders,
                ctx.upstreamHeaders,
                this.trailers,
                target.client.sendsRequestTrailers === true && headers['content-length'] === undefined,
              ))
            : null,
        };
        const sentAt = performance.now();
        upstreamRes = await target.client.request(inFlight);
        const firstByteMs = performance.now() - sentAt;
        target.headersReceived(firstByteMs);
        // for the access log (each attempt overwrites: the one that answers is the one logged)
        ctx.upstreamTarget = target.url;
        ctx.upstreamSentAt = sentAt;
        ctx.upstreamFirstByteMs = firstByteMs;
        ctx.upstreamConnectMs = upstreamRes.connectMs ?? -1;
      } catch (err) {
        const kind: UpstreamErrorKind = err instanceof UpstreamClientError ? err.kind : 'reset';
        if (clientGone || kind === 'aborted') {
          target.release(probe);
          detach();
          throw new ProxyError('GW_ERR_CLIENT_GONE', 'client went away');
        }
        const failedAt = Date.now();
        target.complete(false, probe, failedAt);
        if (kind === 'tls' && target.tlsWarningDue(failedAt)) {
          // an operator must see why every request to it fails: wrong CA, name mismatch, expired, client cert refused
          this.logger.warn({ target: target.url, reason: (err as Error).message }, `upstream ${this.name}: TLS handshake failed`);
        } else {
          this.logger.debug({ target: target.url, kind, err: (err as Error).message }, 'upstream attempt failed');
        }
        lastError = new ProxyError(UPSTREAM_ERROR_CODES[kind], `upstream ${this.name}: ${kind}`);
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
        lastError = new ProxyError('GW_ERR_UPSTREAM_STATUS', `upstream ${this.name}: ${status}`, undefined, status);
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
    ctx: RequestState,
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
      throw new ProxyError('GW_ERR_UPSTREAM_BODY', `upstream ${this.name}: response body broke off`);
    }
    const status = upstreamRes.statusCode;
    ctx.statusCode = status;
    const headers = buildResponseHeaders(upstreamRes.headers, route.responseHeaders, false);
    if (status === 204 || status < 200) dropBodyFraming(headers, status);
    if (asksNoBuffering(upstreamRes.headers)) ctx.unbuffered = true;
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
    // before the core pipes the body: the trailers must be on the client response before the pipe ends it
    // (a gRPC-Web answer carries them in its body instead: ./grpc-web.ts)
    if (upstreamRes.trailers !== undefined && grpcWebMode(ctx.req!) === GrpcWebMode.None) {
      relayResponseTrailers(body, upstreamRes.trailers, ctx, ctx.req!, route.responseHeaders, upstreamRes.headers.connection, this.trailers);
    }
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
      trailers: { ...this.trailers },
      healthChecks: this.health.checks,
      targets: this.reported().map((t) => t.snapshot(now)),
      discovery: this.sources.flatMap((s) => (s.dns === null ? [] : [s.dns.stats()])),
      tls:
        this.cfg.tls === undefined
          ? null
          : {
              verify: this.cfg.tls.verify,
              servername: this.cfg.tls.servername ?? null,
              clientCertExpiresInDays: this.clientCertExpiresInDays(now),
            },
    };
  }

  /** A draining target for this source and address, taken back into rotation if its pool is still open. */
  private reviveDraining(key: string): Target | undefined {
    for (const t of this.draining) {
      if (`${t.source} ${t.url}` !== key || !t.revive()) continue;
      this.draining.delete(t);
      return t;
    }
    return undefined;
  }

  /**
   * Targets in rotation, then those draining: what stats and metrics list. A draining target whose address is
   * in rotation again on a new target (its pool was already closing) is left out: one series per address.
   */
  reported(): Target[] {
    if (this.draining.size === 0) return this.targets;
    const live = new Set(this.targets.map((t) => t.url));
    return [...this.targets, ...[...this.draining].filter((t) => !live.has(t.url))];
  }

  /** DNS discoveries (for metrics). */
  discoveries(): DnsDiscovery[] {
    return this.sources.flatMap((s) => (s.dns === null ? [] : [s.dns]));
  }

  clientCertExpiresInDays(now: number): number | null {
    const notAfter = this.tlsMaterial?.clientCertNotAfter ?? null;
    return notAfter === null ? null : daysUntil(notAfter, now);
  }
}
