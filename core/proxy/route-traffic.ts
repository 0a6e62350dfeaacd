import type { RouteConfig } from '../config/types.js';
import type { RequestState } from '../data/request-state.js';
import { BackendSplit, type Backend } from './backends.js';
import { ProxyError } from './errors.js';
import { RouteMirror } from './mirror.js';
import type { ProxyPath } from './path.js';
import type { TrustedProxies } from './trust.js';
import type { UpstreamGroup } from './upstream.js';

/** Where one request of a route goes: the upstream group and the route options it is forwarded with. */
export interface Destination {
  group: UpstreamGroup;
  route: RouteConfig;
  backend: Backend | null;
}

/**
 * A route with `backends` or `mirror`, for one config generation of one worker: the backend choice
 * (./backends.ts) and the mirror (./mirror.ts) around the upstream group's forward(). Routes with a single
 * `upstream` and no mirror never come here.
 */
export class RouteTraffic {
  readonly split: BackendSplit | null;
  readonly mirror: RouteMirror | null;
  private readonly groups: ReadonlyMap<string, UpstreamGroup>;

  constructor(
    readonly name: string,
    readonly route: RouteConfig,
    groups: ReadonlyMap<string, UpstreamGroup>,
    trust: TrustedProxies,
  ) {
    this.groups = groups;
    this.split = route.backends === undefined ? null : new BackendSplit(route);
    const m = route.mirror;
    this.mirror = m === undefined ? null : new RouteMirror(name, route, m, groups.get(m.upstream)!, trust);
  }

  /** The backend chosen for this request (counted), or the route's own upstream. */
  destination(ctx: RequestState): Destination {
    const split = this.split;
    if (split === null) return { group: this.groups.get(this.route.upstream!)!, route: this.route, backend: null };
    const b = split.pick(ctx);
    if (b === null) throw new ProxyError('GW_ERR_UPSTREAM_UNAVAILABLE', `route ${this.name}: every backend has weight 0`, { 'retry-after': '1' });
    return { group: this.groups.get(b.upstream)!, route: b.route, backend: b };
  }

  async forward(ctx: RequestState, path: ProxyPath): Promise<void> {
    const d = this.destination(ctx);
    const mirrored = this.mirror === null ? null : this.mirror.begin(ctx, path);
    const sentAt = performance.now();
    // forward() runs up to its first wait (the primary's request written when a connection is free) before the copy goes
    const primary = d.group.forward(ctx, d.route, path, mirrored === null ? null : mirrored.primaryBody);
    if (mirrored !== null) mirrored.dispatch();
    try {
      await primary;
    } catch (err) {
      if (d.backend !== null) d.backend.errors++;
      mirrored?.primaryFailed();
      throw err;
    }
    if (d.backend !== null && ctx.statusCode >= 500) d.backend.errors++;
    mirrored?.primaryAnswered(ctx, performance.now() - sentAt);
  }

  close(): void {
    this.mirror?.close();
  }

  stats(): Record<string, unknown> {
    return {
      backends: this.split === null ? null : this.split.backends.map((b) => b.snapshot()),
      mirror: this.mirror === null ? null : this.mirror.stats(),
    };
  }

  /** Sample lines (no HELP/TYPE) of every series in TRAFFIC_SERIES for this route. */
  prometheusSamples(into: Map<string, string[]>): void {
    const route = `route="${esc(this.name)}"`;
    const add = (metric: string, labels: string, value: number): void => {
      let list = into.get(metric);
      if (list === undefined) into.set(metric, (list = []));
      list.push(`${metric}{${route}${labels}} ${value}`);
    };
    if (this.split !== null) {
      for (const b of this.split.backends) {
        const up = `,upstream="${esc(b.upstream)}"`;
        add('gateway_route_backend_weight', up, b.weight);
        add('gateway_route_backend_requests_total', `${up},selected_by="weight"`, b.requests);
        add('gateway_route_backend_requests_total', `${up},selected_by="canary"`, b.canaryRequests);
        add('gateway_route_backend_errors_total', up, b.errors);
      }
    }
    const m = this.mirror;
    if (m !== null) {
      const up = `,upstream="${esc(m.cfg.upstream)}"`;
      add('gateway_mirror_requests_total', up, m.sent);
      add('gateway_mirror_in_flight', up, m.inFlight);
      for (const [reason, n] of Object.entries(m.dropped))
        add('gateway_mirror_dropped_total', `${up},reason="${DROP_REASONS[reason as keyof typeof m.dropped]}"`, n);
      add('gateway_mirror_failures_total', `${up},reason="timeout"`, m.failed.timeout);
      add('gateway_mirror_failures_total', `${up},reason="error"`, m.failed.error);
      const c = m.comparison;
      if (c !== null) {
        add('gateway_mirror_comparisons_total', `${up},result="agree"`, c.agree);
        add('gateway_mirror_comparisons_total', `${up},result="differ"`, c.differ);
        add('gateway_mirror_comparisons_total', `${up},result="skipped"`, c.skipped);
        for (const [field, n] of Object.entries(c.fields)) add('gateway_mirror_differences_total', `${up},field="${field}"`, n);
        add('gateway_mirror_compared_latency_seconds_total', `${up},side="primary"`, c.primaryMsTotal / 1000);
        add('gateway_mirror_compared_latency_seconds_total', `${up},side="mirror"`, c.mirrorMsTotal / 1000);
      }
    }
  }
}

const DROP_REASONS = { concurrency: 'concurrency', bodyTooLarge: 'body_too_large', noTarget: 'no_target', clientAborted: 'client_aborted' } as const;

/** Name, type and help of each per-route traffic series, in the order /metrics lists them. */
export const TRAFFIC_SERIES: ReadonlyArray<readonly [string, 'counter' | 'gauge', string]> = [
  ['gateway_route_backend_weight', 'gauge', 'configured weight of the backend (0: drained, reached only through the canary rule)'],
  ['gateway_route_backend_requests_total', 'counter', 'requests the route sent to the backend, selected by weight or by the canary rule'],
  ['gateway_route_backend_errors_total', 'counter', 'requests to the backend answered 5xx by it, or failed with no answer (the gateway answered 502/503/504)'],
  ['gateway_mirror_requests_total', 'counter', 'mirrored copies sent (their answers are thrown away)'],
  ['gateway_mirror_in_flight', 'gauge', 'mirrored exchanges in flight (bounded per worker by mirror.maxConcurrent)'],
  ['gateway_mirror_dropped_total', 'counter', 'requests in the mirrored share that were not mirrored, by reason'],
  ['gateway_mirror_failures_total', 'counter', 'mirrored copies that got no complete answer (timeout: past mirror.timeoutMs)'],
  ['gateway_mirror_comparisons_total', 'counter', 'mirrored answers compared with the primary answer, by result'],
  ['gateway_mirror_differences_total', 'counter', 'differing comparisons by what differed (status, headers, body digest, error: the mirror gave no answer)'],
  ['gateway_mirror_compared_latency_seconds_total', 'counter', 'summed time to response headers of compared exchanges, primary and mirror side'],
];

/** A Prometheus label value, escaped. */
export function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
