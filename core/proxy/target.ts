import type { ConnectionOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { UpstreamConfig, UpstreamProtocol } from '../config/types.js';
import type { UpstreamClient, UpstreamClientFactory, UpstreamClientOptions } from '../contracts/upstream.js';
import { CircuitBreaker, CircuitState, CIRCUIT_STATE_NAMES } from './breaker.js';
import { createH2UpstreamClient } from './h2-client.js';
import { daysUntil, targetTlsOptions, type UpstreamTlsMaterial } from './upstream-tls.js';

/** What a target is built from: a configured URL as written, or one address DNS discovery found for it. */
export interface TargetSpec {
  /** the URL connected to: the configured one, or with the host replaced by a discovered address */
  url: string;
  weight: number;
  /** Host header (and SNI/certificate name) host: the configured host, or the name the address was found for */
  hostname: string;
  /** the port of the Host header ('' when the scheme's default) */
  hostPort: string;
  /** the configured target URL this target comes from (its own URL for a plain target) */
  source: string;
  /** SRV priority: the lowest priority with an available target takes the requests (0 for other targets) */
  priority: number;
}

/** A configured URL connected to as written. */
export function plainSpec(url: string, weight: number): TargetSpec {
  const u = new URL(url);
  const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { url, weight, hostname, hostPort: u.port, source: url, priority: 0 };
}

/** One upstream target: its connection pool, health, circuit breaker and counters. */
export class Target {
  readonly origin: URL;
  /** the target URL's path without a trailing slash ('' for none): prefixed to every forwarded path */
  readonly basePath: string;
  /** Host header when the route does not preserve the client's */
  readonly host: string;
  readonly client: UpstreamClient;
  readonly breaker: CircuitBreaker;
  readonly url: string;
  /** may change in place when a DNS answer changes an SRV record's weight or priority */
  weight: number;
  readonly source: string;
  priority: number;
  /** tls.connect options of an https target (also used by health checks and WebSocket tunnels), else null */
  readonly tls: ConnectionOptions | null;
  /** how requests (and active health checks) reach it */
  readonly protocol: UpstreamProtocol;
  /** notAfter (ms epoch) of the certificate the upstream presented on the last verified handshake; 0 = none seen */
  peerCertNotAfter = 0;
  /** out of rotation for good (DNS no longer returns it): in-flight requests finish, then the pool closes */
  draining = false;
  private onDrained: (() => void) | null = null;
  private lastTlsWarningAt = 0;

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
    /** position in the group's current target list (retry exclusion bitmask); reassigned when DNS changes the list */
    public index: number,
    spec: TargetSpec,
    private readonly cfg: UpstreamConfig,
    clientFactory: UpstreamClientFactory,
    tlsMaterial: UpstreamTlsMaterial | null,
    private readonly logger: Logger,
  ) {
    const url = spec.url;
    this.url = url;
    this.protocol = cfg.protocol;
    this.weight = spec.weight;
    this.source = spec.source;
    this.priority = spec.priority;
    this.origin = new URL(url);
    this.basePath = this.origin.pathname === '/' ? '' : this.origin.pathname.replace(/\/+$/, '');
    this.host = spec.hostPort === '' ? spec.hostname : `${spec.hostname.includes(':') ? `[${spec.hostname}]` : spec.hostname}:${spec.hostPort}`;
    this.tls =
      this.origin.protocol === 'https:'
        ? targetTlsOptions(tlsMaterial, spec.hostname, (notAfter) => {
            this.peerCertNotAfter = notAfter;
          })
        : null;
    const clientOptions: UpstreamClientOptions = {
      connectTimeoutMs: cfg.timeouts.connectMs,
      maxSockets: cfg.keepAlive.maxSockets,
      maxIdleSockets: cfg.keepAlive.maxIdleSockets,
      idleMs: cfg.keepAlive.idleMs,
      ...(this.tls === null ? {} : { tls: this.tls }),
    };
    // HTTP/2 is a protocol beside the HTTP/1.1 client family (variants.upstream), not one of its members
    this.client =
      cfg.protocol === 'http1'
        ? clientFactory(this.origin, clientOptions)
        : createH2UpstreamClient(this.origin, {
            ...clientOptions,
            cleartext: cfg.protocol === 'h2c',
            pingIntervalMs: cfg.keepAlive.pingIntervalMs,
            pingTimeoutMs: cfg.keepAlive.pingTimeoutMs,
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

  /**
   * Takes the target out for good (the group already dropped it from rotation): requests in flight finish on
   * its pool, which closes once the last one has; `done` runs then.
   */
  drain(done: () => void): void {
    this.draining = true;
    this.onDrained = done;
    if (this.active === 0) this.closeDrained();
  }

  /**
   * The address is back in the answer before its pool closed: in rotation again, with its pool and state.
   * False once the pool is closing (a new target takes the address).
   */
  revive(): boolean {
    if (!this.draining || this.onDrained === null) return false;
    this.draining = false;
    this.onDrained = null;
    return true;
  }

  private closeDrained(): void {
    const done = this.onDrained;
    this.onDrained = null;
    void this.client.close().finally(() => done?.());
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
    if (--this.active === 0 && this.draining) this.closeDrained();
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
    if (--this.active === 0 && this.draining) this.closeDrained();
    this.breaker.cancel(probe);
  }

  /** Whether a failed TLS handshake should be logged at warn now: at most once a second per target under load. */
  tlsWarningDue(now: number): boolean {
    if (now - this.lastTlsWarningAt < 1000) return false;
    this.lastTlsWarningAt = now;
    return true;
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
      source: this.source,
      priority: this.priority,
      draining: this.draining,
      tlsCertExpiresInDays: this.peerCertNotAfter === 0 ? null : daysUntil(this.peerCertNotAfter, now),
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
