import type { DistributionExport, LatencyRecorder, LatencySnapshot, RecorderFactory } from './contracts/metrics.js';
import type { PoolStats } from './contracts/pool.js';
import { mergeDistributions } from './histogram.js';
import type { ListenerKind, ProtocolStats } from './listeners.js';
import type { OverloadStats } from './overload.js';
import type { HookStats } from './plugins/types.js';
import type { UpstreamManager } from './proxy/index.js';

/** Requests, errors and latency for one route (or for unmatched requests). Survives config reloads by name. */
export class RouteMetrics {
  requests = 0;
  errors = 0;
  /** 4xx answers (the dashboard's per-route client-error column) */
  clientErrors = 0;
  constructor(
    readonly name: string,
    readonly recorder: LatencyRecorder,
  ) {}
}

export interface RouteMetricsExport {
  requests: number;
  errors: number;
  clientErrors: number;
  latency: DistributionExport;
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
  tls: ProtocolStats & { listener: ListenerKind };
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
  routes: Record<string, RouteMetricsExport>;
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number };
  /** percent of one core over the last sampling interval */
  cpuPercent: number;
  protocols: { h1: number; h2: number };
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
  rps = 0;
  cpuPercent = 0;
  readonly recorder: LatencyRecorder;
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

  record(route: RouteMetrics, status: number, latencyMs: number): void {
    const isError = status >= 500;
    this.requests++;
    const statusClass = (status / 100) | 0;
    this.statusClasses[statusClass]!++; // status 100..599: index 1..5
    route.requests++;
    if (statusClass === 4) route.clientErrors++;
    if (isError) {
      this.errors++;
      route.errors++;
    }
    this.recorder.record(latencyMs, isError);
    route.recorder.record(latencyMs, isError);
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

  export(sections: WorkerSections): WorkerMetricsExport {
    const routes: Record<string, RouteMetricsExport> = {};
    for (const m of [this.unmatched, ...this.routes.values()]) {
      routes[m.name] = { requests: m.requests, errors: m.errors, clientErrors: m.clientErrors, latency: m.recorder.exportDistribution() };
    }
    const mem = process.memoryUsage();
    return {
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
      sections,
    };
  }

  close(): void {
    clearInterval(this.timer);
  }
}

export type RouteCounters = Omit<RouteMetricsExport, 'latency'>;

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
  /**
   * Each worker's own figures; `routes` keeps only the cumulative counters (no distribution), which a reader
   * needs to turn counters into rates per worker: a restarted worker's counters start again at 0.
   */
  perWorker: Array<
    Omit<WorkerMetricsExport, 'latency' | 'routes'> & {
      latency: LatencySnapshot;
      /** the worker's cumulative distribution as it sent it: a reader subtracts two samples for an interval's percentiles */
      latencyDistribution: DistributionExport;
      routes: Record<string, RouteCounters>;
    }
  >;
}

export function aggregateMetrics(list: WorkerMetricsExport[]): AggregatedMetrics {
  const statusClasses: Record<string, number> = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
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
    perWorker: list.map(({ latency, routes: workerRoutes, ...rest }) => ({
      ...rest,
      latency: mergeDistributions([latency]),
      latencyDistribution: latency,
      routes: Object.fromEntries(Object.entries(workerRoutes).map(([n, r]) => [n, { requests: r.requests, errors: r.errors, clientErrors: r.clientErrors }])),
    })),
  };
}
