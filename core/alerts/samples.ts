import type { DistributionExport } from '../contracts/metrics.js';
import type { ControlCounters } from '../observe/control-counters.js';
import { cumulativeLatency, type WorkerMetricsExport } from '../observe/metrics.js';
import { upstreamHealth, type UpstreamHealth } from '../observe/upstream-health.js';

/** One worker's all-time counters at one instant (the part of its export the alert metrics read). */
export interface WorkerPoint {
  requests: number;
  /** responses with a 5xx status */
  errors: number;
  latency: DistributionExport;
  routes: Map<string, { requests: number; errors: number; latency: DistributionExport }>;
}

/**
 * Everything the rules read, taken once per evaluation: all-time counters per worker (windows are differences
 * between two samples, like Prometheus' rate()) and the gauges of that instant.
 */
export interface Sample {
  t: number;
  /** keyed by `workerId:pid`, so a restarted worker is a new series whose counters start from zero */
  workers: Map<string, WorkerPoint>;
  control: ControlCounters;
  upstreams: Map<string, UpstreamHealth>;
  /** workers shedding load right now */
  overloaded: number;
}

export function takeSample(t: number, exports: WorkerMetricsExport[], control: ControlCounters): Sample {
  const workers = new Map<string, WorkerPoint>();
  let overloaded = 0;
  for (const w of exports) {
    const routes = new Map<string, { requests: number; errors: number; latency: DistributionExport }>();
    for (const [name, r] of Object.entries(w.routes)) routes.set(name, { requests: r.requests, errors: r.errors, latency: cumulativeLatency(r) });
    workers.set(`${w.workerId}:${w.pid}`, { requests: w.requests, errors: w.statusClasses[5] ?? 0, latency: cumulativeLatency(w), routes });
    if (w.sections.limits.overload?.overloaded === true) overloaded++;
  }
  return { t, workers, control: { ...control }, upstreams: upstreamHealth(exports), overloaded };
}

/** The recent samples, oldest first, trimmed to the longest window any rule asks for. */
export class SampleHistory {
  private samples: Sample[] = [];

  push(sample: Sample, keepMs: number): void {
    this.samples.push(sample);
    // keep one sample at or before the oldest window start, so a full window always has its left edge
    const horizon = sample.t - keepMs;
    let drop = 0;
    while (drop + 1 < this.samples.length && this.samples[drop + 1]!.t <= horizon) drop++;
    if (drop > 0) this.samples.splice(0, drop);
  }

  latest(): Sample | undefined {
    return this.samples[this.samples.length - 1];
  }

  /** The window's left edge: the newest sample at or before `latest.t - windowMs`, else the oldest one kept. */
  windowStart(windowMs: number): Sample | undefined {
    const last = this.latest();
    if (last === undefined) return undefined;
    const edge = last.t - windowMs;
    let start = this.samples[0];
    for (const s of this.samples) {
      if (s.t > edge) break;
      start = s;
    }
    return start;
  }

  get length(): number {
    return this.samples.length;
  }
}
