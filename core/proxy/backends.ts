import type { CanaryConfig, HeaderEdits, RouteBackendConfig, RouteConfig } from '../config/types.js';
import type { RequestState } from '../data/request-state.js';
import { hash32 } from './balancers.js';

/** One backend of a route: where its requests go and what they are sent with. */
export class Backend {
  /** nginx smooth weighted round-robin state (see BackendSplit.pickWeighted) */
  current = 0;
  /** requests sent here: by weight, and by the canary rule */
  requests = 0;
  canaryRequests = 0;
  /** answers with a 5xx status, and requests that got no answer at all (the gateway's own 502/503/504) */
  errors = 0;
  readonly upstream: string;
  readonly weight: number;
  /** the route as forwarded to this backend: its requestHeaders with the backend's merged over them */
  readonly route: RouteConfig;

  constructor(cfg: RouteBackendConfig, route: RouteConfig) {
    this.upstream = cfg.upstream;
    this.weight = cfg.weight;
    this.route = cfg.requestHeaders === undefined ? route : { ...route, requestHeaders: mergeEdits(route.requestHeaders, cfg.requestHeaders) };
  }

  snapshot(): Record<string, unknown> {
    return { upstream: this.upstream, weight: this.weight, requests: this.requests, canaryRequests: this.canaryRequests, errors: this.errors };
  }
}

/** A route's and a backend's edits together: both removals, then both additions (the backend's win on a name). */
function mergeEdits(route: HeaderEdits | undefined, backend: HeaderEdits): HeaderEdits {
  if (route === undefined) return backend;
  return { add: { ...route.add, ...backend.add }, remove: [...route.remove, ...backend.remove] };
}

/** Parts of 10,000: the resolution a canary percentage is applied with (0.01 %). */
const PERCENT_SCALE = 10_000;

/**
 * The canary rule compiled: the header (lower-cased) or cookie it reads, and either the value that selects the
 * canary or the share of hash space that does.
 */
class CanaryRule {
  readonly header: string | null;
  readonly cookie: string | null;
  readonly value: string | null;
  /** requests whose value hashes below this (out of PERCENT_SCALE) go to the canary */
  readonly threshold: number;

  constructor(
    cfg: CanaryConfig,
    readonly backend: Backend,
  ) {
    this.header = cfg.header === undefined ? null : cfg.header.toLowerCase();
    this.cookie = cfg.cookie ?? null;
    this.value = cfg.value ?? null;
    this.threshold = Math.round((cfg.percent ?? 0) * (PERCENT_SCALE / 100));
  }

  /** Whether this request goes to the canary: its value matches, or hashes into the canary's share. */
  selects(ctx: RequestState): boolean {
    const headers = ctx.req!.headers;
    let v: string | null;
    if (this.header !== null) {
      const h = headers[this.header];
      v = h === undefined ? null : typeof h === 'string' ? h : h.join(',');
    } else {
      v = cookieValue(headers.cookie, this.cookie!);
    }
    if (v === null) return false;
    if (this.value !== null) return v === this.value;
    // the same value always lands on the same side; raising the percentage only moves clients to the canary
    return hash32(v) % PERCENT_SCALE < this.threshold;
  }
}

/** The value of cookie `name` in a Cookie header (RFC 6265 §5.4: `a=1; b=2`), or null when it is not there. */
export function cookieValue(header: string | undefined, name: string): string | null {
  if (header === undefined) return null;
  let at = 0;
  while (at < header.length) {
    let end = header.indexOf(';', at);
    if (end === -1) end = header.length;
    const eq = header.indexOf('=', at);
    if (eq !== -1 && eq < end && header.slice(at, eq).trim() === name) {
      const v = header.slice(eq + 1, end).trim();
      return v.length >= 2 && v.charCodeAt(0) === 34 && v.charCodeAt(v.length - 1) === 34 ? v.slice(1, -1) : v;
    }
    at = end + 1;
  }
  return null;
}

/**
 * Chooses the backend of each request on a route with `backends`: the canary rule first, when it selects the
 * request; otherwise nginx's smooth weighted round-robin over the backends with a weight above 0, which is
 * deterministic and interleaved (a 90/10 split sends 9 of every 10 consecutive requests to the first, never 90 in
 * a row), so over any 1,000 requests of one worker the split is exact to within a backend count.
 */
export class BackendSplit {
  readonly backends: readonly Backend[];
  private readonly weighted: readonly Backend[];
  private readonly totalWeight: number;
  private readonly canary: CanaryRule | null;

  constructor(route: RouteConfig) {
    this.backends = route.backends!.map((b) => new Backend(b, route));
    this.weighted = this.backends.filter((b) => b.weight > 0);
    this.totalWeight = this.weighted.reduce((sum, b) => sum + b.weight, 0);
    const c = route.canary;
    this.canary =
      c === undefined
        ? null
        : new CanaryRule(
            c,
            this.backends.find((b) => b.upstream === c.backend)!,
          );
  }

  /** The backend for this request, or null when every weight is 0 and the canary rule did not select it. */
  pick(ctx: RequestState): Backend | null {
    const c = this.canary;
    if (c !== null && c.selects(ctx)) {
      c.backend.canaryRequests++;
      return c.backend;
    }
    const b = this.pickWeighted();
    if (b !== null) b.requests++;
    return b;
  }

  private pickWeighted(): Backend | null {
    const ws = this.weighted;
    let best: Backend | null = null;
    for (let i = 0; i < ws.length; i++) {
      const b = ws[i]!;
      b.current += b.weight;
      if (best === null || b.current > best.current) best = b;
    }
    if (best !== null) best.current -= this.totalWeight;
    return best;
  }
}
