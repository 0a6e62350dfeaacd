import type { Duplex } from 'node:stream';
import type pino from 'pino';
import type { RouteConfig, UpstreamConfig } from '../config/types.js';
import type { UpstreamClientFactory } from '../contracts/upstream.js';
import type { RequestContext } from '../data/context.js';
import { CircuitState } from './breaker.js';
import { ProxyError } from './errors.js';
import { compileProxyPath, type ProxyPath } from './path.js';
import { TrustedProxies } from './trust.js';
import { rejectUpgrade, tunnel } from './upgrade.js';
import { UpstreamGroup } from './upstream.js';

export { ProxyError } from './errors.js';

export interface UpstreamManagerOptions {
  /** the upstream client variant (config `variants.upstream`), resolved by the control plane */
  clientFactory: UpstreamClientFactory;
  logger: pino.Logger;
  trustedProxies: string[];
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

  constructor(upstreams: Record<string, UpstreamConfig>, options: UpstreamManagerOptions) {
    const factory = options.clientFactory;
    this.logger = options.logger;
    this.trust = new TrustedProxies(options.trustedProxies);
    for (const name of Object.keys(upstreams)) {
      this.groups.set(name, new UpstreamGroup(name, upstreams[name]!, factory, this.trust, options.logger.child({ upstream: name })));
    }
  }

  start(): void {
    for (const g of this.groups.values()) g.start();
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
  handle(ctx: RequestContext, route: RouteConfig): Promise<void> {
    return this.group(route).forward(ctx, route, this.path(route));
  }

  /** Tunnel a WebSocket upgrade on a proxied route; on failure answer on the socket and destroy it. */
  upgrade(ctx: RequestContext, socket: Duplex, head: Buffer, route: RouteConfig): void {
    let g: UpstreamGroup;
    try {
      g = this.group(route);
    } catch {
      rejectUpgrade(socket, 'GW_ERR_UPSTREAM_UNKNOWN');
      return;
    }
    try {
      tunnel(g, this.trust, ctx, socket, head, route, this.path(route));
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

  prometheusLines(): string[] {
    const now = Date.now();
    const series: Array<[string, string, string, (g: UpstreamGroup, i: number) => number]> = [
      [
        'gateway_upstream_target_healthy',
        'gauge',
        '1 if the target is in rotation health-wise (active and passive checks)',
        (g, i) => {
          const t = g.targets[i]!;
          return t.healthy && now >= t.passiveDownUntil ? 1 : 0;
        },
      ],
      ['gateway_upstream_target_circuit_state', 'gauge', 'circuit breaker state: 0 closed, 1 open, 2 half-open', (g, i) => g.targets[i]!.breaker.state],
      ['gateway_upstream_target_active_requests', 'gauge', 'requests in flight to the target', (g, i) => g.targets[i]!.active],
      ['gateway_upstream_target_requests_total', 'counter', 'requests sent to the target (attempts, retries included)', (g, i) => g.targets[i]!.requests],
      [
        'gateway_upstream_target_failures_total',
        'counter',
        'failed exchanges with the target (connect, timeout, reset, 502/503/504, broken body)',
        (g, i) => g.targets[i]!.failures,
      ],
      ['gateway_upstream_target_circuit_opens_total', 'counter', 'times the circuit breaker opened', (g, i) => g.targets[i]!.breaker.opens],
    ];
    const lines: string[] = [];
    for (const [metric, type, help, value] of series) {
      lines.push(`# HELP ${metric} ${help}`, `# TYPE ${metric} ${type}`);
      for (const [name, g] of this.groups) {
        for (let i = 0; i < g.targets.length; i++) {
          lines.push(`${metric}{upstream="${esc(name)}",target="${esc(g.targets[i]!.url)}"} ${value(g, i)}`);
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
    return lines;
  }

  async close(): Promise<void> {
    await Promise.all([...this.groups.values()].map((g) => g.close()));
  }
}

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

// re-exported for tests and the admin API
export { CircuitState };
