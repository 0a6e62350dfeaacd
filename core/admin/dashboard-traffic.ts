import type { AggregatedMetrics } from '../observe/metrics.js';

/** One backend of a route with `backends` (core/proxy/backends.ts), over every worker. */
export interface BackendRow {
  route: string;
  upstream: string;
  weight: number;
  /** requests per second chosen by weight, and by the canary rule */
  rps: number;
  canaryPerS: number;
  errorsPerS: number;
  /** this backend's share of the route's requests over the last interval, 0..1; null when the route had none */
  share: number | null;
}

/** A route's mirror (core/proxy/mirror.ts), over every worker. */
export interface MirrorRow {
  route: string;
  upstream: string;
  sentPerS: number;
  inFlight: number;
  droppedPerS: number;
  failuresPerS: number;
  /** mirror.compare: agreements and differences since start; null when the route does not compare */
  agree: number | null;
  differ: number | null;
}

interface BackendStats {
  upstream: string;
  weight: number;
  requests: number;
  canaryRequests: number;
  errors: number;
}

interface MirrorStats {
  upstream: string;
  sent: number;
  inFlight: number;
  dropped: Record<string, number>;
  failed: Record<string, number>;
  compare: { agree: number; differ: number } | null;
}

interface RouteTrafficStats {
  backends: BackendStats[] | null;
  mirror: MirrorStats | null;
}

function trafficOf(w: AggregatedMetrics['perWorker'][number]): Record<string, RouteTrafficStats> {
  // a worker of an older build has no traffic section
  return (w.sections.traffic ?? {}) as Record<string, RouteTrafficStats>;
}

const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

/** The cumulative counters the rows' rates come from, for one worker (the dashboard's CounterDeltas keys). */
export function trafficCounters(w: AggregatedMetrics['perWorker'][number], into: Map<string, number>): void {
  for (const [route, t] of Object.entries(trafficOf(w))) {
    for (const b of t.backends ?? []) {
      const k = `backend|${route}|${b.upstream}`;
      into.set(`${k}|requests`, b.requests);
      into.set(`${k}|canary`, b.canaryRequests);
      into.set(`${k}|errors`, b.errors);
    }
    const m = t.mirror;
    if (m !== null) {
      const k = `mirror|${route}`;
      into.set(`${k}|sent`, m.sent);
      into.set(`${k}|dropped`, sum(m.dropped));
      into.set(`${k}|failed`, sum(m.failed));
    }
  }
}

export function backendRows(m: AggregatedMetrics, rate: (key: string) => number): BackendRow[] {
  const rows = new Map<string, BackendRow>();
  for (const w of m.perWorker) {
    for (const [route, t] of Object.entries(trafficOf(w))) {
      for (const b of t.backends ?? []) {
        const k = `backend|${route}|${b.upstream}`;
        if (rows.has(k)) continue;
        rows.set(k, {
          route,
          upstream: b.upstream,
          weight: b.weight,
          rps: rate(`${k}|requests`),
          canaryPerS: rate(`${k}|canary`),
          errorsPerS: rate(`${k}|errors`),
          share: null,
        });
      }
    }
  }
  const perRoute = new Map<string, number>();
  for (const r of rows.values()) perRoute.set(r.route, (perRoute.get(r.route) ?? 0) + r.rps + r.canaryPerS);
  for (const r of rows.values()) {
    const total = perRoute.get(r.route)!;
    r.share = total > 0 ? (r.rps + r.canaryPerS) / total : null;
  }
  return [...rows.values()];
}

export function mirrorRows(m: AggregatedMetrics, rate: (key: string) => number): MirrorRow[] {
  const rows = new Map<string, MirrorRow>();
  for (const w of m.perWorker) {
    for (const [route, t] of Object.entries(trafficOf(w))) {
      const s = t.mirror;
      if (s === null) continue;
      const k = `mirror|${route}`;
      let row = rows.get(k);
      if (row === undefined) {
        row = {
          route,
          upstream: s.upstream,
          sentPerS: rate(`${k}|sent`),
          inFlight: 0,
          droppedPerS: rate(`${k}|dropped`),
          failuresPerS: rate(`${k}|failed`),
          agree: s.compare === null ? null : 0,
          differ: s.compare === null ? null : 0,
        };
        rows.set(k, row);
      }
      row.inFlight += s.inFlight;
      if (s.compare !== null) {
        row.agree = (row.agree ?? 0) + s.compare.agree;
        row.differ = (row.differ ?? 0) + s.compare.differ;
      }
    }
  }
  return [...rows.values()];
}
