import type { GatewayConfig, RouteConfig, UpstreamConfig } from './types.js';

/**
 * What the schema cannot say about a route's `backends`, `canary` and `mirror` (core/config/traffic-schema.ts):
 * the upstreams they name exist, a backend is listed once, a canary names one of the route's backends and reads
 * exactly one of a header or a cookie, compared by exactly one of a value or a percentage.
 */
export function routeTrafficErrors(route: RouteConfig, i: number, upstreams: Record<string, UpstreamConfig>): string[] {
  const errors: string[] = [];
  const known = (name: string): boolean => Object.prototype.hasOwnProperty.call(upstreams, name);
  const listed = new Set<string>();
  route.backends?.forEach((b, j) => {
    if (!known(b.upstream)) errors.push(`/routes/${i}/backends/${j}/upstream: unknown upstream "${b.upstream}"`);
    if (listed.has(b.upstream)) errors.push(`/routes/${i}/backends/${j}/upstream: upstream "${b.upstream}" is listed twice (one entry per backend)`);
    listed.add(b.upstream);
  });
  const c = route.canary;
  if (c !== undefined) {
    const at = `/routes/${i}/canary`;
    if (route.backends === undefined) errors.push(`${at}: needs "backends" on the route (the canary is one of them)`);
    else if (!listed.has(c.backend))
      errors.push(`${at}/backend: "${c.backend}" is not the upstream of one of the route's backends (${[...listed].join(', ')})`);
    if ((c.header === undefined) === (c.cookie === undefined)) errors.push(`${at}: must have exactly one of "header", "cookie"`);
    if ((c.value === undefined) === (c.percent === undefined)) errors.push(`${at}: must have exactly one of "value", "percent"`);
  }
  const m = route.mirror;
  if (m !== undefined) {
    if (!known(m.upstream)) errors.push(`/routes/${i}/mirror/upstream: unknown upstream "${m.upstream}"`);
    if (route.upstream === undefined && route.backends === undefined)
      errors.push(`/routes/${i}/mirror: only a proxied route ("upstream" or "backends") can mirror`);
  }
  return errors;
}

/** Every upstream a route sends to: its own, its backends', its mirror's. */
export function routeUpstreams(route: RouteConfig): string[] {
  const out: string[] = [];
  if (route.upstream !== undefined) out.push(route.upstream);
  if (route.backends !== undefined) for (const b of route.backends) out.push(b.upstream);
  if (route.mirror !== undefined) out.push(route.mirror.upstream);
  return out;
}

/** Valid but probably not meant (core/config/warnings.ts): a split that sends nowhere, a mirror back to the primary. */
export function trafficWarnings(config: GatewayConfig): string[] {
  const warnings: string[] = [];
  config.routes.forEach((route, i) => {
    const backends = route.backends;
    if (backends !== undefined && backends.every((b) => b.weight === 0)) {
      warnings.push(
        `/routes/${i}/backends: the weights add up to 0: every request ${route.canary === undefined ? '' : 'the canary rule does not take '}is answered 503 (drained)`,
      );
    }
    const m = route.mirror;
    if (m !== undefined) {
      const primaries = route.upstream !== undefined ? [route.upstream] : (backends ?? []).map((b) => b.upstream);
      if (primaries.includes(m.upstream)) {
        warnings.push(`/routes/${i}/mirror/upstream: "${m.upstream}" is also where the route sends its requests: each mirrored request reaches it twice`);
      }
      if (m.percent === 0) warnings.push(`/routes/${i}/mirror/percent: 0: no request is mirrored`);
    }
  });
  return warnings;
}
