import type { Logger } from 'pino';
import type { UpstreamConfig } from '../config/types.js';
import type { UpstreamClient, UpstreamClientFactory } from '../contracts/upstream.js';
import { CircuitBreaker, CircuitState, CIRCUIT_STATE_NAMES } from './breaker.js';

/** One upstream target: its connection pool, health, circuit breaker and counters. */
export class Target {
  readonly origin: URL;
  /** the target URL's path without a trailing slash ('' for none): prefixed to every forwarded path */
  readonly basePath: string;
  /** Host header when the route does not preserve the client's */
  readonly host: string;
  readonly client: UpstreamClient;
  readonly breaker: CircuitBreaker;

  /** active health check verdict (true until a check says otherwise) */
  healthy = true;
  /** passive marking: out of rotation until this time (ms epoch) */
  passiveDownUntil = 0;
  consecutiveFailures = 0;

  /** requests in flight through this target (least-connections, p2c) */
  active = 0;
  requests = 0;
  failures = 0;
  /** answers received and their summed time to response headers: a reader takes deltas for a mean per interval */
  answers = 0;
  headersMsTotal = 0;
  /** smooth weighted round-robin running weight */
  currentWeight = 0;

  constructor(
    readonly index: number,
    readonly url: string,
    readonly weight: number,
    private readonly cfg: UpstreamConfig,
    clientFactory: UpstreamClientFactory,
    private readonly logger: Logger,
  ) {
    this.origin = new URL(url);
    this.basePath = this.origin.pathname === '/' ? '' : this.origin.pathname.replace(/\/+$/, '');
    this.host = this.origin.host;
    this.client = clientFactory(this.origin, {
      connectTimeoutMs: cfg.timeouts.connectMs,
      maxSockets: cfg.keepAlive.maxSockets,
      maxIdleSockets: cfg.keepAlive.maxIdleSockets,
      idleMs: cfg.keepAlive.idleMs,
    });
    this.breaker = new CircuitBreaker(cfg.circuitBreaker, (from, to) => {
      const log = { target: url, from: CIRCUIT_STATE_NAMES[from], to: CIRCUIT_STATE_NAMES[to] };
      if (to === CircuitState.Open) this.logger.warn(log, 'circuit opened');
      else this.logger.info(log, 'circuit state changed');
    });
  }

  /** In rotation now: healthy, not passively marked down, and the breaker lets a request through. */
  available(now: number): boolean {
    return this.healthy && now >= this.passiveDownUntil && this.breaker.allows(now);
  }

  /** A request is sent to this target; returns the breaker probe flag to pass to complete(). */
  dispatch(): boolean {
    this.active++;
    this.requests++;
    return this.breaker.dispatch();
  }

  /** The target answered with a status line and headers, `ms` after the request was sent. */
  headersReceived(ms: number): void {
    this.answers++;
    this.headersMsTotal += ms;
  }

  /** The exchange ended (success: the upstream answered and, for a body, delivered all of it). */
  complete(success: boolean, probe: boolean, now: number): void {
    this.active--;
    this.breaker.record(success, probe, now);
    if (success) {
      this.consecutiveFailures = 0;
      return;
    }
    this.failures++;
    const passive = this.cfg.healthCheck.passive;
    if (passive.enabled && ++this.consecutiveFailures >= passive.failures) {
      this.consecutiveFailures = 0;
      this.passiveDownUntil = now + passive.windowMs;
      this.logger.warn({ target: this.url, forMs: passive.windowMs }, 'target marked down after consecutive failures');
    }
  }

  /** The request was dropped without an upstream verdict (e.g. the client went away): release only. */
  release(probe: boolean): void {
    this.active--;
    this.breaker.cancel(probe);
  }

  /** ms until this target may be in rotation again (for Retry-After). */
  retryAfterMs(now: number): number {
    let ms = 0;
    if (now < this.passiveDownUntil) ms = this.passiveDownUntil - now;
    const b = this.breaker.retryAfterMs(now);
    return b > ms ? b : ms;
  }

  snapshot(now: number): Record<string, unknown> {
    return {
      url: this.url,
      weight: this.weight,
      healthy: this.healthy && now >= this.passiveDownUntil,
      activeHealthy: this.healthy,
      passiveDown: now < this.passiveDownUntil,
      circuit: CIRCUIT_STATE_NAMES[this.breaker.state],
      circuitOpens: this.breaker.opens,
      active: this.active,
      requests: this.requests,
      failures: this.failures,
      answers: this.answers,
      headersMsTotal: this.headersMsTotal,
    };
  }
}
