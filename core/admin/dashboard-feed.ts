import { LogLinearHistogram } from '../base/histogram.js';
import type { GatewayConfig } from '../config/types.js';
import type { DistributionExport, LatencySnapshot } from '../contracts/metrics.js';
import { routeName } from '../data/runtime.js';
import type { AggregatedMetrics } from '../observe/metrics.js';
import { backendRows, mirrorRows, trafficCounters, type BackendRow, type MirrorRow } from './dashboard-traffic.js';
import type { AdminSource } from './source.js';

/** One second between samples: the dashboard promises an update at least once a second. */
export const SAMPLE_INTERVAL_MS = 1000;
/** Five minutes of samples for the charts a page draws as soon as it opens. */
export const HISTORY_SAMPLES = 300;

/** Samples after which a worker that stopped answering is forgotten by CounterDeltas. */
const FORGET_AFTER_SAMPLES = 60;

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

export interface RouteRow {
  name: string;
  /** the configured path pattern; null for "(unmatched)" and routes a reload removed */
  path: string | null;
  rps: number;
  /** milliseconds, since the gateway started (merged over workers as /stats merges it) */
  p99: number;
  clientErrorsPerS: number;
  serverErrorsPerS: number;
  requests: number;
}

export interface TargetRow {
  upstream: string;
  url: string;
  /** the configured target the address was discovered from, when it differs from url (DNS discovery) */
  source: string | null;
  /** workers in which the target is draining (DNS no longer returns it; requests in flight finish) */
  draining: number;
  /** how many workers have the target in rotation health-wise (active and passive), out of `workers` */
  healthy: number;
  activeHealthy: number;
  passiveDown: number;
  workers: number;
  /** circuit state → number of workers seeing it (each worker keeps its own breaker) */
  circuit: Record<string, number>;
  inFlight: number;
  rps: number;
  failuresPerS: number;
  /** mean time to response headers over the last interval, ms; null when the target answered nothing */
  latencyMs: number | null;
}

export interface WorkerRow {
  id: number;
  pid: number | null;
  state: string;
  uptimeS: number | null;
  restarts: number;
  /** workers of this slot the watchdog killed (event loop blocked past server.watchdogMs) */
  watchdogKills: number;
  rssBytes: number | null;
  cpuPercent: number | null;
}

export interface HookRow {
  plugin: string;
  hook: string;
  callsPerS: number;
  /** milliseconds spent in the hook per second of wall time, over all workers */
  msPerS: number;
  /** mean milliseconds per call over the interval; null without calls */
  meanMs: number | null;
}

/** What a chart needs from one sample: kept for HISTORY_SAMPLES and sent whole to a page that connects. */
export interface SeriesPoint {
  t: number;
  rps: number;
  /** latency percentiles of the requests answered since the previous sample, ms; null when there were none */
  p50: number | null;
  p95: number | null;
  p99: number | null;
  statusPerS: Record<string, number>;
  /** 5xx share of the answers in the interval, 0..1 */
  errorRate: number;
  activeConnections: number;
  inFlight: number;
}

export interface DashboardSample extends SeriesPoint {
  configVersion: number;
  lastReloadError: string[] | null;
  requests: number;
  routes: RouteRow[];
  targets: TargetRow[];
  /** routes with `backends` and `mirror` (core/admin/dashboard-traffic.ts) */
  backends: BackendRow[];
  mirrors: MirrorRow[];
  workers: WorkerRow[];
  hooks: HookRow[];
  /** GET /alerts' answer; null when alerting is not configured (or not built into this gateway) */
  alerts: unknown;
}

/** Cumulative counters of one sample: worker (`<id>:<pid>`) → series → value. */
type Counters = Map<string, Map<string, number>>;

/**
 * Turns cumulative counters into increments per interval, worker by worker. A counter that went down belongs to
 * a worker that restarted (a new pid, so a new key) or to a series a reload recreated (plugin hook stats): all
 * of its current value is new, never a negative increment. Summing per worker first matters: a sum over workers
 * can grow while one of them restarted, hiding the reset.
 */
export class CounterDeltas {
  /** last values seen per worker; a worker missing from one sample (its answer timed out) keeps its entry */
  private readonly known = new Map<string, { series: Map<string, number>; seen: number }>();
  private calls = 0;
  private started = false;

  /** Increments since the previous call, summed over workers per series; null on the first call. */
  next(current: Counters): Map<string, number> | null {
    const first = !this.started;
    this.started = true;
    this.calls++;
    const out = new Map<string, number>();
    for (const [worker, series] of current) {
      const prev = this.known.get(worker)?.series;
      for (const [key, value] of series) {
        const p = prev?.get(key);
        const delta = p !== undefined && value >= p ? value - p : value;
        out.set(key, (out.get(key) ?? 0) + delta);
      }
      this.known.set(worker, { series, seen: this.calls });
    }
    // A pid that has not answered for a minute is gone (each restart brings a new pid): stop carrying it.
    for (const [worker, k] of this.known) if (this.calls - k.seen > FORGET_AFTER_SAMPLES) this.known.delete(worker);
    return first ? null : out;
  }

  /** Forget everything (sampling paused: the next interval would span the pause). */
  reset(): void {
    this.known.clear();
    this.started = false;
  }
}

/**
 * Latency percentiles of the last interval, merged over workers: each worker's cumulative distribution minus the
 * one it reported at the previous sample (all of it when the worker is new or its counts went down: a restart).
 * The differences are merged like /stats merges whole distributions, bucket by bucket, never by averaging.
 */
export class IntervalLatency {
  private readonly known = new Map<string, { dist: DistributionExport; seen: number }>();
  private calls = 0;
  private started = false;

  /** The interval's snapshot; null on the first call. */
  next(workers: Array<{ key: string; dist: DistributionExport }>): LatencySnapshot | null {
    const first = !this.started;
    this.started = true;
    this.calls++;
    const h = new LogLinearHistogram();
    for (const { key, dist } of workers) {
      const prev = this.known.get(key)?.dist;
      h.merge(prev === undefined ? dist : (subtract(dist, prev) ?? dist));
      this.known.set(key, { dist, seen: this.calls });
    }
    for (const [key, k] of this.known) if (this.calls - k.seen > FORGET_AFTER_SAMPLES) this.known.delete(key);
    return first ? null : h.snapshot();
  }

  reset(): void {
    this.known.clear();
    this.started = false;
  }
}

/** `cur - prev` bucket by bucket, or null when `cur` does not continue `prev` (some count went down: a reset). */
export function subtract(cur: DistributionExport, prev: DistributionExport): DistributionExport | null {
  if (cur.count < prev.count) return null;
  const before = new Map<number, number>();
  for (let i = 0; i + 1 < prev.buckets.length; i += 2) before.set(prev.buckets[i]!, prev.buckets[i + 1]!);
  const buckets: number[] = [];
  let matched = 0;
  for (let i = 0; i + 1 < cur.buckets.length; i += 2) {
    const index = cur.buckets[i]!;
    const p = before.get(index);
    if (p !== undefined) matched++;
    const c = cur.buckets[i + 1]! - (p ?? 0);
    if (c < 0) return null;
    if (c > 0) buckets.push(index, c);
  }
  if (matched !== before.size) return null; // a bucket of prev is gone
  // min is unknown for the interval (0 does not clamp); the all-time max still bounds it from above
  return { count: cur.count - prev.count, errors: Math.max(0, cur.errors - prev.errors), min: 0, max: cur.max, sum: cur.sum - prev.sum, buckets };
}

interface TargetStats {
  url: string;
  /** the configured target it comes from (a DNS name for a discovered address) */
  source?: string;
  draining?: boolean;
  healthy: boolean;
  activeHealthy: boolean;
  passiveDown: boolean;
  circuit: string;
  active: number;
  requests: number;
  failures: number;
  answers?: number;
  headersMsTotal?: number;
}

type StatsAnswer = Awaited<ReturnType<AdminSource['stats']>>;

/**
 * The dashboard's data: samples the admin source's stats() (the same merge over workers /stats answers with)
 * once a second while a page is connected, adds the rates /stats cannot give (deltas between samples), and
 * keeps the last minutes for the charts.
 */
export class DashboardFeed {
  private readonly history: SeriesPoint[] = [];
  private readonly listeners = new Set<(s: DashboardSample) => void>();
  private readonly deltas = new CounterDeltas();
  private readonly latency = new IntervalLatency();
  private lastAt = 0;
  private timer: NodeJS.Timeout | null = null;
  /** a tick is awaiting its sample: with `timer`, the one sampling loop is either waiting or sampling, never both */
  private sampling = false;
  private latest: DashboardSample | null = null;
  private latestAt = 0;
  private closed = false;

  constructor(
    private readonly source: AdminSource,
    private readonly intervalMs = SAMPLE_INTERVAL_MS,
  ) {}

  /** The charts' points so far, oldest first. */
  series(): SeriesPoint[] {
    return this.history.slice();
  }

  get last(): DashboardSample | null {
    return this.latest;
  }

  /** Calls `fn` with every new sample; sampling runs while anyone listens. Returns the unsubscribe function. */
  subscribe(fn: (s: DashboardSample) => void): () => void {
    this.listeners.add(fn);
    // A tick still sampling carries on once it sees a listener again. Starting a loop beside it (the last page
    // closed and another opened during a sample, which takes the metrics timeout when a worker hangs) left two
    // loops polling every worker for good, one more per such page.
    if (this.timer === null && !this.sampling && !this.closed) {
      this.deltas.reset();
      this.latency.reset();
      this.lastAt = 0;
      this.schedule(0);
    }
    return () => {
      this.listeners.delete(fn);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /**
   * A sample with measured rates, for a page's first paint (one request, no stream): the latest one while the
   * loop runs, otherwise the loop is started and the second sample taken (the first only sets the baseline
   * that rates are measured against), about one interval later.
   */
  current(): Promise<DashboardSample> {
    if (this.latest !== null && Date.now() - this.latestAt <= 2 * this.intervalMs) return Promise.resolve(this.latest);
    if (this.closed) return this.sample();
    return new Promise((resolve, reject) => {
      let skip = this.timer === null && !this.sampling ? 1 : 0;
      const done = (s: DashboardSample | null): void => {
        clearTimeout(giveUp);
        unsubscribe();
        if (s !== null) resolve(s);
        else this.sample().then(resolve, reject);
      };
      // Samples that fail (workers restarting) are skipped by the loop: answer with one taken directly then.
      const giveUp = setTimeout(() => done(this.latest), 5 * this.intervalMs);
      const unsubscribe = this.subscribe((s) => {
        if (skip-- > 0) return;
        done(s);
      });
    });
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
    this.stop();
  }

  private stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const started = Date.now();
    this.timer = null;
    this.sampling = true;
    try {
      const sample = await this.sample();
      this.latest = sample;
      this.latestAt = Date.now();
      this.history.push(toPoint(sample));
      if (this.history.length > HISTORY_SAMPLES) this.history.splice(0, this.history.length - HISTORY_SAMPLES);
      for (const fn of this.listeners) fn(sample);
    } catch {
      // A failed collection (workers restarting) skips one sample; the page keeps its last numbers.
    } finally {
      this.sampling = false;
    }
    if (this.listeners.size === 0 || this.closed) return; // every page left while sampling
    this.schedule(Math.max(0, this.intervalMs - (Date.now() - started)));
  }

  /** One sample now (also what tests call directly). */
  async sample(): Promise<DashboardSample> {
    // Alerts that cannot be read show as "not configured" rather than costing the page its sample.
    const alerts = this.source.alerts === undefined ? Promise.resolve(null) : this.source.alerts().catch(() => null);
    const [stats, alertsNow] = await Promise.all([this.source.stats(), alerts]);
    const now = Date.now();
    const elapsedS = this.lastAt === 0 ? 0 : (now - this.lastAt) / 1000;
    this.lastAt = now;
    const d = this.deltas.next(countersOf(stats.metrics));
    const rate = (key: string): number => (d === null || elapsedS <= 0 ? 0 : (d.get(key) ?? 0) / elapsedS);
    const m = stats.metrics;
    const interval = this.latency.next(m.perWorker.map((w) => ({ key: `${w.workerId}:${w.pid}`, dist: w.latencyDistribution })));
    const answeredInInterval = interval !== null && interval.count > 0;

    const statusPerS: Record<string, number> = {};
    for (const c of STATUS_CLASSES) statusPerS[c] = rate(`status|${c}`);
    const answered = STATUS_CLASSES.reduce((sum, c) => sum + statusPerS[c]!, 0);

    const paths = routePaths(this.source.config());
    const routes: RouteRow[] = Object.entries(m.routes).map(([name, r]) => ({
      name,
      path: paths.get(name) ?? null,
      rps: rate(`route|${name}|requests`),
      p99: r.latency.p99,
      clientErrorsPerS: rate(`route|${name}|clientErrors`),
      serverErrorsPerS: rate(`route|${name}|errors`),
      requests: r.requests,
    }));

    return {
      t: now,
      rps: m.rps,
      p50: answeredInInterval ? interval.p50 : null,
      p95: answeredInInterval ? interval.p95 : null,
      p99: answeredInInterval ? interval.p99 : null,
      statusPerS,
      errorRate: answered > 0 ? statusPerS['5xx']! / answered : 0,
      activeConnections: m.activeConnections,
      inFlight: m.inFlight,
      configVersion: stats.configVersion,
      lastReloadError: stats.lastReloadError,
      requests: m.requests,
      routes,
      targets: targetRows(m, rate, d),
      backends: backendRows(m, rate),
      mirrors: mirrorRows(m, rate),
      workers: workerRows(stats),
      hooks: hookRows(m, rate, d),
      alerts: alertsNow,
    };
  }
}

function toPoint(s: DashboardSample): SeriesPoint {
  const { t, rps, p50, p95, p99, statusPerS, errorRate, activeConnections, inFlight } = s;
  return { t, rps, p50, p95, p99, statusPerS, errorRate, activeConnections, inFlight };
}

/** Every cumulative counter the dashboard turns into a rate, per worker. */
function countersOf(m: AggregatedMetrics): Counters {
  const out: Counters = new Map();
  for (const w of m.perWorker) {
    const c = new Map<string, number>();
    STATUS_CLASSES.forEach((name, i) => c.set(`status|${name}`, w.statusClasses[i + 1] ?? 0));
    for (const [name, r] of Object.entries(w.routes)) {
      c.set(`route|${name}|requests`, r.requests);
      c.set(`route|${name}|errors`, r.errors);
      c.set(`route|${name}|clientErrors`, r.clientErrors);
    }
    for (const [upstream, u] of Object.entries(w.sections.upstreams)) {
      for (const t of targetsOf(u)) {
        const k = `target|${upstream}|${t.url}`;
        c.set(`${k}|requests`, t.requests);
        c.set(`${k}|failures`, t.failures);
        c.set(`${k}|answers`, t.answers ?? 0);
        c.set(`${k}|headersMs`, t.headersMsTotal ?? 0);
      }
    }
    trafficCounters(w, c);
    for (const [plugin, p] of Object.entries(w.sections.plugins)) {
      for (const [hook, s] of Object.entries(p.hooks)) {
        c.set(`hook|${plugin}|${hook}|calls`, s.calls);
        c.set(`hook|${plugin}|${hook}|ms`, s.totalMs);
      }
    }
    out.set(`${w.workerId}:${w.pid}`, c);
  }
  return out;
}

function targetsOf(upstream: unknown): TargetStats[] {
  const targets = (upstream as { targets?: unknown } | null)?.targets;
  return Array.isArray(targets) ? (targets as TargetStats[]) : [];
}

function targetRows(m: AggregatedMetrics, rate: (key: string) => number, d: Map<string, number> | null): TargetRow[] {
  const rows = new Map<string, TargetRow>();
  for (const w of m.perWorker) {
    for (const [upstream, u] of Object.entries(w.sections.upstreams)) {
      for (const t of targetsOf(u)) {
        const key = `target|${upstream}|${t.url}`;
        let row = rows.get(key);
        if (row === undefined) {
          const answers = d?.get(`${key}|answers`) ?? 0;
          row = {
            upstream,
            url: t.url,
            source: t.source !== undefined && t.source !== t.url ? t.source : null,
            draining: 0,
            healthy: 0,
            activeHealthy: 0,
            passiveDown: 0,
            workers: 0,
            circuit: {},
            inFlight: 0,
            rps: rate(`${key}|requests`),
            failuresPerS: rate(`${key}|failures`),
            latencyMs: answers > 0 ? (d?.get(`${key}|headersMs`) ?? 0) / answers : null,
          };
          rows.set(key, row);
        }
        row.workers++;
        if (t.draining === true) row.draining++;
        if (t.healthy) row.healthy++;
        if (t.activeHealthy) row.activeHealthy++;
        if (t.passiveDown) row.passiveDown++;
        row.circuit[t.circuit] = (row.circuit[t.circuit] ?? 0) + 1;
        row.inFlight += t.active;
      }
    }
  }
  return [...rows.values()];
}

function hookRows(m: AggregatedMetrics, rate: (key: string) => number, d: Map<string, number> | null): HookRow[] {
  const rows = new Map<string, HookRow>();
  for (const w of m.perWorker) {
    for (const [plugin, p] of Object.entries(w.sections.plugins)) {
      for (const [hook, s] of Object.entries(p.hooks)) {
        const key = `hook|${plugin}|${hook}`;
        // A hook the plugin does not implement is never called: no row (as in /metrics).
        if (rows.has(key) || (s.calls === 0 && s.errors === 0)) continue;
        const calls = d?.get(`${key}|calls`) ?? 0;
        rows.set(key, {
          plugin,
          hook,
          callsPerS: rate(`${key}|calls`),
          msPerS: rate(`${key}|ms`),
          meanMs: calls > 0 ? (d?.get(`${key}|ms`) ?? 0) / calls : null,
        });
      }
    }
  }
  return [...rows.values()];
}

/**
 * Workers as /stats lists them (the orchestrator's slots: state and restarts, including a slot that is booting
 * or exited) joined with each one's own metrics (uptime, RSS, CPU) by worker id.
 */
function workerRows(stats: StatsAnswer): WorkerRow[] {
  const metricsOf = new Map(stats.metrics.perWorker.map((w) => [w.workerId, w]));
  const slots = stats.workers.map((w) => w as { id?: number; pid?: number; state?: string; restarts?: number; watchdogKills?: number; responsive?: boolean });
  // In one process /stats lists the gateway's sections only: its one worker is the process itself.
  const listed = slots.every((s) => typeof s.id === 'number') ? slots : stats.metrics.perWorker.map((w) => ({ id: w.workerId, pid: w.pid }));
  return listed.map((s) => {
    const id = s.id ?? 0;
    const w = metricsOf.get(id);
    return {
      id,
      pid: s.pid ?? w?.pid ?? null,
      // a listening worker that leaves the watchdog's heartbeat unanswered is shown as what it is
      state:
        'state' in s && typeof s.state === 'string' ? (s.state === 'ready' && 'responsive' in s && s.responsive === false ? 'unresponsive' : s.state) : 'ready',
      uptimeS: w?.uptimeS ?? null,
      restarts: 'restarts' in s && typeof s.restarts === 'number' ? s.restarts : 0,
      watchdogKills: 'watchdogKills' in s && typeof s.watchdogKills === 'number' ? s.watchdogKills : 0,
      rssBytes: w?.memory.rss ?? null,
      cpuPercent: w?.cpuPercent ?? null,
    };
  });
}

/** Route name (as metrics key it) → configured path, from the running config. */
function routePaths(config: unknown): Map<string, string> {
  const out = new Map<string, string>();
  const routes = (config as Partial<GatewayConfig> | null)?.routes;
  if (!Array.isArray(routes)) return out;
  for (const r of routes) out.set(routeName(r), r.path);
  return out;
}
