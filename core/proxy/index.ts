import type { Duplex } from 'node:stream';
import type pino from 'pino';
import type { RouteConfig, UpstreamConfig } from '../config/types.js';
import type { UpstreamClientFactory } from '../contracts/upstream.js';
import type { RequestState } from '../data/request-state.js';
import { CircuitState } from './breaker.js';
import type { DnsDiscovery } from './discovery.js';
import { ProxyError } from './errors.js';
import { compileProxyPath, type ProxyPath } from './path.js';
import { esc, RouteTraffic, TRAFFIC_SERIES } from './route-traffic.js';
import type { Target } from './target.js';
import { TrustedProxies } from './trust.js';
import { rejectUpgrade, tunnel } from './upgrade.js';
import { daysUntil } from './upstream-tls.js';
import { UpstreamGroup } from './upstream.js';

export { ProxyError } from './errors.js';

export interface UpstreamManagerOptions {
  /** the upstream client variant (config `variants.upstream`), resolved by the control plane */
  clientFactory: UpstreamClientFactory;
  logger: pino.Logger;
  trustedProxies: string[];
  /** the routes of this generation, named as their metrics are: those with `backends` or `mirror` get a RouteTraffic */
  routes?: ReadonlyArray<{ name: string; config: RouteConfig }>;
}

/**
 * All configured upstreams of one config generation. The core calls handle() for proxied routes and upgrade()
 * for WebSocket upgrades on them; a hot reload builds a new manager and closes this one once idle.
 */
export class UpstreamManager {
  private readonly groups = new Map<string, UpstreamGroup>();
  private readonly trust: TrustedProxies;
  /** route options compiled once per RouteConfig object (routes are immutable within a generation) */
  private readonly paths = new WeakMap<RouteConfig, ProxyPath>();
  private readonly logger: pino.Logger;
  /** routes with `backends` or `mirror` (core/proxy/route-traffic.ts) */
  private readonly traffic = new Map<RouteConfig, RouteTraffic>();

  constructor(upstreams: Record<string, UpstreamConfig>, options: UpstreamManagerOptions) {
    const factory = options.clientFactory;
    this.logger = options.logger;
    this.trust = new TrustedProxies(options.trustedProxies);
    for (const name of Object.keys(upstreams)) {
      this.groups.set(name, new UpstreamGroup(name, upstreams[name]!, factory, this.trust, options.logger.child({ upstream: name })));
    }
    for (const r of options.routes ?? []) {
      if (r.config.backends !== undefined || r.config.mirror !== undefined)
        this.traffic.set(r.config, new RouteTraffic(r.name, r.config, this.groups, this.trust));
    }
  }

  start(): void {
    for (const g of this.groups.values()) g.start();
  }

  /**
   * Starts DNS discovery and settles when every discovered target's first lookup has (bounded by the resolver's
   * timeouts): a generation serves with its addresses known, or with the last good ones, never with none yet.
   */
  async discover(): Promise<void> {
    await Promise.all([...this.groups.values()].map((g) => g.discover()));
  }

  private group(route: RouteConfig): UpstreamGroup {
    const g = route.upstream === undefined ? undefined : this.groups.get(route.upstream);
    if (g === undefined) throw new ProxyError('GW_ERR_UPSTREAM_UNKNOWN', `route ${route.path} names unknown upstream ${String(route.upstream)}`);
    return g;
  }

  private path(route: RouteConfig): ProxyPath {
    let p = this.paths.get(route);
    if (p === undefined) {
      p = compileProxyPath(route);
      this.paths.set(route, p);
    }
    return p;
  }

  /** Forward ctx.req and stage the upstream answer on ctx (status, headers, streaming body); see ProxyError. */
  handle(ctx: RequestState, route: RouteConfig): Promise<void> {
    if (route.backends === undefined && route.mirror === undefined) return this.group(route).forward(ctx, route, this.path(route));
    return this.routeTraffic(route).forward(ctx, this.path(route));
  }

  private routeTraffic(route: RouteConfig): RouteTraffic {
    const t = this.traffic.get(route);
    if (t === undefined) throw new ProxyError('GW_ERR_UPSTREAM_UNKNOWN', `route ${route.path} was not built with this generation's upstreams`);
    return t;
  }

  /** Tunnel a WebSocket upgrade on a proxied route; on failure answer on the socket and destroy it. */
  upgrade(ctx: RequestState, socket: Duplex, head: Buffer, route: RouteConfig): void {
    let g: UpstreamGroup;
    let sent = route;
    try {
      if (route.backends === undefined) g = this.group(route);
      else {
        // a WebSocket goes to one backend like any request (the mirror is for requests with an answer to compare)
        const d = this.routeTraffic(route).destination(ctx);
        g = d.group;
        sent = d.route;
      }
    } catch (err) {
      rejectUpgrade(socket, err instanceof ProxyError ? err.code : 'GW_ERR_UPSTREAM_UNKNOWN');
      return;
    }
    try {
      tunnel(g, this.trust, ctx, socket, head, sent, this.path(route));
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, code: 'GW_ERR_UPSTREAM_PROTOCOL' }, 'upgrade failed');
      rejectUpgrade(socket, 'GW_ERR_UPSTREAM_PROTOCOL');
    }
  }

  stats(): Record<string, unknown> {
    const now = Date.now();
    const out: Record<string, unknown> = {};
    for (const [name, g] of this.groups) out[name] = g.stats(now);
    return out;
  }

  /** Per-route backend and mirror counters (/stats `traffic`), keyed by route name. */
  trafficStats(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const t of this.traffic.values()) out[t.name] = t.stats();
    return out;
  }

  prometheusLines(): string[] {
    const now = Date.now();
    const healthy = (t: Target): number => (t.healthy && now >= t.passiveDownUntil && !t.draining ? 1 : 0);
    const series: Array<[string, string, string, (t: Target) => number | null]> = [
      ['gateway_upstream_target_healthy', 'gauge', '1 if the target is in rotation health-wise (active and passive checks; 0 while draining)', healthy],
      ['gateway_upstream_target_circuit_state', 'gauge', 'circuit breaker state: 0 closed, 1 open, 2 half-open', (t) => t.breaker.state],
      ['gateway_upstream_target_active_requests', 'gauge', 'requests in flight to the target', (t) => t.active],
      ['gateway_upstream_target_requests_total', 'counter', 'requests sent to the target (attempts, retries included)', (t) => t.requests],
      [
        'gateway_upstream_target_failures_total',
        'counter',
        'failed exchanges with the target (connect, TLS, timeout, reset, 502/503/504, broken body)',
        (t) => t.failures,
      ],
      ['gateway_upstream_target_circuit_opens_total', 'counter', 'times the circuit breaker opened', (t) => t.breaker.opens],
      ['gateway_upstream_target_draining', 'gauge', '1 while a target DNS no longer returns finishes its requests in flight', (t) => (t.draining ? 1 : 0)],
      [
        'gateway_upstream_target_tls_cert_expiry_days',
        'gauge',
        'days until the certificate the target presented on its last verified TLS handshake expires (the lowest across workers)',
        (t) => (t.peerCertNotAfter === 0 ? null : daysUntil(t.peerCertNotAfter, now)),
      ],
    ];
    const lines: string[] = [];
    for (const [metric, type, help, value] of series) {
      lines.push(`# HELP ${metric} ${help}`, `# TYPE ${metric} ${type}`);
      for (const [name, g] of this.groups) {
        for (const t of g.reported()) {
          const v = value(t);
          if (v !== null) lines.push(`${metric}{upstream="${esc(name)}",target="${esc(t.url)}"} ${v}`);
        }
      }
    }
    const perUpstream: Array<[string, string, (g: UpstreamGroup) => number]> = [
      ['gateway_upstream_retries_total', 'retries sent', (g) => g.retries],
      ['gateway_upstream_retry_budget_exhausted_total', 'retries refused by the retry budget', (g) => g.budgetExhausted],
      ['gateway_upstream_no_target_total', 'requests answered 503 because no target was available', (g) => g.noTarget],
    ];
    for (const [metric, help, value] of perUpstream) {
      lines.push(`# HELP ${metric} ${help}`, `# TYPE ${metric} counter`);
      for (const [name, g] of this.groups) lines.push(`${metric}{upstream="${esc(name)}"} ${value(g)}`);
    }
    const trailerMetric = 'gateway_upstream_trailer_fields_total';
    lines.push(
      `# HELP ${trailerMetric} trailer fields relayed (forwarded) or refused (dropped), requests to and responses from the upstream`,
      `# TYPE ${trailerMetric} counter`,
    );
    for (const [name, g] of this.groups) {
      const t = g.trailers;
      const u = esc(name);
      lines.push(
        `${trailerMetric}{upstream="${u}",direction="request",outcome="forwarded"} ${t.requestForwarded}`,
        `${trailerMetric}{upstream="${u}",direction="request",outcome="dropped"} ${t.requestDropped}`,
        `${trailerMetric}{upstream="${u}",direction="response",outcome="forwarded"} ${t.responseForwarded}`,
        `${trailerMetric}{upstream="${u}",direction="response",outcome="dropped"} ${t.responseDropped}`,
      );
    }
    const clientCert = 'gateway_upstream_tls_client_cert_expiry_days';
    lines.push(`# HELP ${clientCert} days until the client certificate configured in upstreams.NAME.tls.cert expires`, `# TYPE ${clientCert} gauge`);
    for (const [name, g] of this.groups) {
      const days = g.clientCertExpiresInDays(now);
      if (days !== null) lines.push(`${clientCert}{upstream="${esc(name)}"} ${days}`);
    }
    const perDiscovery: Array<[string, string, string, (d: DnsDiscovery) => number]> = [
      [
        'gateway_upstream_dns_addresses',
        'gauge',
        'addresses the last good DNS answer gave the target (each one a target of its own)',
        (d) => d.addresses.length,
      ],
      ['gateway_upstream_dns_lookups_total', 'counter', 'DNS lookups of the target', (d) => d.lookups],
      ['gateway_upstream_dns_failures_total', 'counter', 'failed DNS lookups of the target (the last good answer stays in use)', (d) => d.failures],
      ['gateway_upstream_dns_failing', 'gauge', '1 while the last DNS lookup of the target failed', (d) => (d.lastError === null ? 0 : 1)],
    ];
    for (const [metric, type, help, value] of perDiscovery) {
      lines.push(`# HELP ${metric} ${help}`, `# TYPE ${metric} ${type}`);
      for (const [name, g] of this.groups) {
        for (const d of g.discoveries()) lines.push(`${metric}{upstream="${esc(name)}",target="${esc(d.target.url)}"} ${value(d)}`);
      }
    }
    if (this.traffic.size > 0) {
      const samples = new Map<string, string[]>();
      for (const t of this.traffic.values()) t.prometheusSamples(samples);
      for (const [metric, type, help] of TRAFFIC_SERIES) {
        const list = samples.get(metric);
        if (list !== undefined) lines.push(`# HELP ${metric} ${help}`, `# TYPE ${metric} ${type}`, ...list);
      }
    }
    return lines;
  }

  async close(): Promise<void> {
    for (const t of this.traffic.values()) t.close();
    await Promise.all([...this.groups.values()].map((g) => g.close()));
  }
}

// re-exported for tests and the admin API
export { CircuitState };
