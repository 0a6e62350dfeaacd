import { LogLinearHistogram, mergeDistributions } from '../base/histogram.js';
import type { DistributionExport, LatencyRecorder, LatencySnapshot, RecorderFactory } from '../contracts/metrics.js';
import type { PoolStats } from '../contracts/pool.js';
import type { ListenerKind, ServerEngineStats } from '../contracts/server.js';
import type { OverloadStats } from '../data/overload.js';
import type { HookStats } from '../plugins/types.js';
import type { UpstreamManager } from '../proxy/index.js';

/**
 * The method label values of the per-route response counter. Any other method folds into OTHER, so a client
 * inventing methods cannot grow the series count (node:http parses ~35 methods; routes are config; codes are few).
 */
export const COUNTED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE', 'OTHER'] as const;
const OTHER_METHOD = COUNTED_METHODS.length - 1;

/**
 * Status codes get a column of the per-route counter the first time the process answers one, so a route's
 * counter holds 10 methods × 64 codes (5 KB) instead of 10 × 500 (40 KB, 9 MB for a 237-route config). The
 * columns are shared by all routes and assigned without allocation. A gateway answers a few dozen distinct
 * codes at most; should a 64th appear, it and every later new code share the last column, exported as
 * code="other".
 */
export const STATUS_COLUMNS = 64;
const OVERFLOW_COLUMN = STATUS_COLUMNS - 1;
/** column of status 100 + i, -1 before it was first seen */
const columnOfStatus = new Int8Array(500).fill(-1);
/** status of each assigned column (0 for the overflow column) */
const statusOfColumn = new Int16Array(STATUS_COLUMNS);
let columnsUsed = 0;

function statusColumn(status: number): number {
  const i = status - 100;
  // node:http only writes 100..599; anything else (a plugin's odd status) goes to the overflow column
  if (!(i >= 0 && i < 500)) return OVERFLOW_COLUMN;
  const c = columnOfStatus[i]!;
  if (c >= 0) return c;
  const assigned = columnsUsed < OVERFLOW_COLUMN ? columnsUsed++ : OVERFLOW_COLUMN;
  columnOfStatus[i] = assigned;
  if (assigned !== OVERFLOW_COLUMN) statusOfColumn[assigned] = status;
  return assigned;
}

/** Index into COUNTED_METHODS. A switch over interned strings: no allocation, no hashing on the request path. */
export function methodSlot(method: string): number {
  switch (method) {
    case 'GET':
      return 0;
    case 'HEAD':
      return 1;
    case 'POST':
      return 2;
    case 'PUT':
      return 3;
    case 'DELETE':
      return 4;
    case 'PATCH':
      return 5;
    case 'OPTIONS':
      return 6;
    case 'CONNECT':
      return 7;
    case 'TRACE':
      return 8;
    default:
      return OTHER_METHOD;
  }
}

/** Requests, errors and latency for one route (or for unmatched requests). Survives config reloads by name. */
export class RouteMetrics {
  requests = 0;
  errors = 0;
  /** 4xx answers (the dashboard's per-route client-error column) */
  clientErrors = 0;
  /** responses by [method slot][status column], pre-sized so counting one is an index increment */
  readonly responses = new Float64Array(COUNTED_METHODS.length * STATUS_COLUMNS);
  /** all-time copy of the latency, kept only when the recorder's export covers a recent window (see cumulativeCopy) */
  readonly cumulative: LogLinearHistogram | null;
  constructor(
    readonly name: string,
    readonly recorder: LatencyRecorder,
  ) {
    this.cumulative = cumulativeCopy(recorder);
  }

  /** Sparse [methodSlot, status, count, ...] of the non-zero response counters; status 0 is the overflow column. */
  exportResponses(): number[] {
    const out: number[] = [];
    const r = this.responses;
    for (let i = 0; i < r.length; i++) {
      const c = r[i]!;
      if (c !== 0) out.push((i / STATUS_COLUMNS) | 0, statusOfColumn[i % STATUS_COLUMNS]!, c);
    }
    return out;
  }
}

/**
 * Prometheus histograms and windowed alert rules take differences of bucket counts, which only works on counts that
 * never go down. A recorder whose export covers a recent window (ring) cannot give that, so the gateway records a
 * second, all-time histogram next to it; every other variant's export is all-time already and costs nothing extra.
 */
function cumulativeCopy(recorder: LatencyRecorder): LogLinearHistogram | null {
  return recorder.windowed === true ? new LogLinearHistogram() : null;
}

export interface RouteMetricsExport {
  requests: number;
  errors: number;
  clientErrors: number;
  latency: DistributionExport;
  /** all-time bucket counts when `latency` covers a window only; absent when `latency` is all-time */
  cumulative?: DistributionExport;
  /** sparse [methodSlot, status, count, ...]; methodSlot indexes COUNTED_METHODS, status 0 means "other" */
  responses: number[];
}

/** The all-time (monotonic) distribution of an export: what histograms and windowed rules difference. */
export function cumulativeLatency(e: { latency: DistributionExport; cumulative?: DistributionExport }): DistributionExport {
  return e.cumulative ?? e.latency;
}

export interface PluginSection {
  scope: string;
  version: string;
  hooks: Record<string, HookStats>;
}

/** The per-IP connection cap and load shedding of one worker (what /ready and the overload series read). */
export interface LimitsSection {
  perIpRefused: number;
  /** null when no overload threshold is configured */
  overload: OverloadStats | null;
}

/** The listener counters of /stats → tls: the engine's, plus the redirect listener's 308s. */
export type ProtocolStats = ServerEngineStats & {
  /** 308 answers of the HTTP→HTTPS redirect listener */
  redirects: number;
};

/**
 * Everything beyond the core counters that a worker reports. Every section is required: a section the
 * exporter forgets is a compile error, not a silently zero series on the other side of the IPC channel.
 */
export interface WorkerSections {
  configVersion: number;
  pool: PoolStats;
  /** keyed by plugin name, or `name@scope` for route-scoped instances */
  plugins: Record<string, PluginSection>;
  /** plugin-owned counters (api.counter) */
  counters: Record<string, { help: string; value: number }>;
  upstreams: ReturnType<UpstreamManager['stats']>;
  /** Prometheus lines rendered by the proxy module; summed over workers by name+labels */
  upstreamPrometheus: string[];
  /** per-route backend split and mirror counters, keyed by route name (core/proxy/route-traffic.ts) */
  traffic: ReturnType<UpstreamManager['trafficStats']>;
  tls: ProtocolStats & { listener: ListenerKind; engine: string };
  limits: LimitsSection;
}

/** What a worker reports to the orchestrator (plain data: it crosses process boundaries). */
export interface WorkerMetricsExport {
  workerId: number;
  pid: number;
  uptimeS: number;
  requests: number;
  errors: number;
  /** counts of 1xx..5xx responses, index = status / 100 */
  statusClasses: number[];
  rps: number;
  activeConnections: number;
  totalConnections: number;
  inFlight: number;
  latency: DistributionExport;
  /** all-time bucket counts when `latency` covers a window only (see RouteMetricsExport.cumulative) */
  cumulative?: DistributionExport;
  routes: Record<string, RouteMetricsExport>;
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number };
  /** percent of one core over the last sampling interval */
  cpuPercent: number;
  protocols: { h1: number; h2: number };
  /** the gateway's own error answers by catalogue code (docs/errors.md); codes not seen are absent */
  errorCodes: Record<string, number>;
  sections: WorkerSections;
}

const RATE_INTERVAL_MS = 1000;

/**
 * The gateway's own counters. `record` is on the request hot path: field increments and one recorder call,
 * no allocation. Rates (RPS, CPU) are sampled on a timer instead of being computed per request.
 */
export class GatewayMetrics {
  requests = 0;
  errors = 0;
  readonly statusClasses = new Float64Array(6);
  activeConnections = 0;
  totalConnections = 0;
  inFlight = 0;
  h1Requests = 0;
  h2Requests = 0;
  /** error answers by catalogue code: a few dozen keys at most, incremented on error paths only */
  private readonly errorCodes = new Map<string, number>();
  rps = 0;
  cpuPercent = 0;
  readonly recorder: LatencyRecorder;
  private readonly cumulative: LogLinearHistogram | null;
  readonly unmatched: RouteMetrics;
  private readonly routes = new Map<string, RouteMetrics>();
  private lastRequests = 0;
  private lastCpu = process.cpuUsage();
  private lastSample = performance.now();
  private readonly timer: NodeJS.Timeout;
  readonly startedAt = Date.now();

  constructor(
    private readonly createRecorder: RecorderFactory,
    readonly workerId = 0,
  ) {
    this.recorder = createRecorder();
    this.cumulative = cumulativeCopy(this.recorder);
    this.unmatched = new RouteMetrics('(unmatched)', createRecorder());
    this.timer = setInterval(() => this.sampleRates(), RATE_INTERVAL_MS);
    this.timer.unref();
  }

  /** The metrics of a named route, created on first use and kept across reloads so counters stay monotonic. */
  route(name: string): RouteMetrics {
    let m = this.routes.get(name);
    if (m === undefined) {
      m = new RouteMetrics(name, this.createRecorder());
      this.routes.set(name, m);
    }
    return m;
  }

  record(route: RouteMetrics, status: number, latencyMs: number, method: string): void {
    const isError = status >= 500;
    this.requests++;
    const statusClass = (status / 100) | 0;
    this.statusClasses[statusClass]!++; // status 100..599: index 1..5
    route.requests++;
    if (statusClass === 4) route.clientErrors++;
    route.responses[methodSlot(method) * STATUS_COLUMNS + statusColumn(status)]!++;
    if (isError) {
      this.errors++;
      route.errors++;
    }
    this.recorder.record(latencyMs, isError);
    route.recorder.record(latencyMs, isError);
    if (this.cumulative !== null) {
      this.cumulative.record(latencyMs, isError);
      route.cumulative!.record(latencyMs, isError); // same factory, so the same windowed flag
    }
  }

  private sampleRates(): void {
    const now = performance.now();
    const elapsedMs = now - this.lastSample;
    this.rps = ((this.requests - this.lastRequests) * 1000) / elapsedMs;
    const cpu = process.cpuUsage(this.lastCpu);
    this.cpuPercent = ((cpu.user + cpu.system) / 1000 / elapsedMs) * 100;
    this.lastCpu = process.cpuUsage();
    this.lastRequests = this.requests;
    this.lastSample = now;
  }

  /** One error answer of the gateway's own, by its catalogue code. */
  countError(code: string): void {
    this.errorCodes.set(code, (this.errorCodes.get(code) ?? 0) + 1);
  }

  export(sections: WorkerSections): WorkerMetricsExport {
    const routes: Record<string, RouteMetricsExport> = {};
    for (const m of [this.unmatched, ...this.routes.values()]) {
      const r: RouteMetricsExport = {
        requests: m.requests,
        errors: m.errors,
        clientErrors: m.clientErrors,
        latency: m.recorder.exportDistribution(),
        responses: m.exportResponses(),
      };
      if (m.cumulative !== null) r.cumulative = m.cumulative.exportDistribution();
      routes[m.name] = r;
    }
    const mem = process.memoryUsage();
    const out: WorkerMetricsExport = {
      workerId: this.workerId,
      pid: process.pid,
      uptimeS: (Date.now() - this.startedAt) / 1000,
      requests: this.requests,
      errors: this.errors,
      statusClasses: Array.from(this.statusClasses),
      rps: this.rps,
      activeConnections: this.activeConnections,
      totalConnections: this.totalConnections,
      inFlight: this.inFlight,
      latency: this.recorder.exportDistribution(),
      routes,
      memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external },
      cpuPercent: this.cpuPercent,
      protocols: { h1: this.h1Requests, h2: this.h2Requests },
      errorCodes: Object.fromEntries(this.errorCodes),
      sections,
    };
    if (this.cumulative !== null) out.cumulative = this.cumulative.exportDistribution();
    return out;
  }

  close(): void {
    clearInterval(this.timer);
  }
}

export type RouteCounters = Pick<RouteMetricsExport, 'requests' | 'errors' | 'clientErrors'>;

export interface AggregatedRoute {
  requests: number;
  errors: number;
  clientErrors: number;
  latency: LatencySnapshot;
}

/** Totals over all workers; latency percentiles come from the merged distributions, never from averaging. */
export interface AggregatedMetrics {
  workers: number;
  requests: number;
  errors: number;
  statusClasses: Record<string, number>;
  rps: number;
  activeConnections: number;
  totalConnections: number;
  inFlight: number;
  latency: LatencySnapshot;
  routes: Record<string, AggregatedRoute>;
  memory: { rss: number; heapUsed: number };
  cpuPercent: number;
  protocols: { h1: number; h2: number };
  /** error answers by catalogue code, summed over the workers (docs/errors.md) */
  errorCodes: Record<string, number>;
  /**
   * Each worker's own figures; `routes` keeps only the cumulative counters (no distribution), which a reader
   * needs to turn counters into rates per worker: a restarted worker's counters start again at 0.
   */
  perWorker: Array<
    Omit<WorkerMetricsExport, 'latency' | 'cumulative' | 'routes'> & {
      latency: LatencySnapshot;
      /** the worker's cumulative distribution as it sent it: a reader subtracts two samples for an interval's percentiles */
      latencyDistribution: DistributionExport;
      routes: Record<string, RouteCounters>;
    }
  >;
}

export function aggregateMetrics(list: WorkerMetricsExport[]): AggregatedMetrics {
  const statusClasses: Record<string, number> = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  const errorCodes: Record<string, number> = {};
  const routeDists = new Map<string, { requests: number; errors: number; clientErrors: number; dists: DistributionExport[] }>();
  const agg = {
    workers: list.length,
    requests: 0,
    errors: 0,
    rps: 0,
    activeConnections: 0,
    totalConnections: 0,
    inFlight: 0,
    rss: 0,
    heapUsed: 0,
    cpuPercent: 0,
    h1: 0,
    h2: 0,
  };
  for (const w of list) {
    agg.requests += w.requests;
    agg.errors += w.errors;
    agg.rps += w.rps;
    agg.activeConnections += w.activeConnections;
    agg.totalConnections += w.totalConnections;
    agg.inFlight += w.inFlight;
    agg.rss += w.memory.rss;
    agg.heapUsed += w.memory.heapUsed;
    agg.cpuPercent += w.cpuPercent;
    agg.h1 += w.protocols.h1;
    agg.h2 += w.protocols.h2;
    for (let c = 1; c <= 5; c++) statusClasses[`${c}xx`]! += w.statusClasses[c] ?? 0;
    for (const [code, n] of Object.entries(w.errorCodes)) errorCodes[code] = (errorCodes[code] ?? 0) + n;
    for (const [name, r] of Object.entries(w.routes)) {
      let entry = routeDists.get(name);
      if (entry === undefined) {
        entry = { requests: 0, errors: 0, clientErrors: 0, dists: [] };
        routeDists.set(name, entry);
      }
      entry.requests += r.requests;
      entry.errors += r.errors;
      entry.clientErrors += r.clientErrors;
      entry.dists.push(r.latency);
    }
  }
  const routes: Record<string, AggregatedRoute> = {};
  for (const [name, r] of routeDists) {
    routes[name] = { requests: r.requests, errors: r.errors, clientErrors: r.clientErrors, latency: mergeDistributions(r.dists) };
  }
  return {
    workers: agg.workers,
    requests: agg.requests,
    errors: agg.errors,
    statusClasses,
    rps: agg.rps,
    activeConnections: agg.activeConnections,
    totalConnections: agg.totalConnections,
    inFlight: agg.inFlight,
    latency: mergeDistributions(list.map((w) => w.latency)),
    routes,
    memory: { rss: agg.rss, heapUsed: agg.heapUsed },
    cpuPercent: agg.cpuPercent,
    protocols: { h1: agg.h1, h2: agg.h2 },
    errorCodes,
    perWorker: list.map(({ latency, cumulative, routes: workerRoutes, ...rest }) => ({
      ...rest,
      latency: mergeDistributions([latency]),
      // all-time even for the windowed ring recorder: readers subtract two samples
      latencyDistribution: cumulative ?? latency,
      routes: Object.fromEntries(Object.entries(workerRoutes).map(([n, r]) => [n, { requests: r.requests, errors: r.errors, clientErrors: r.clientErrors }])),
    })),
  };
}
