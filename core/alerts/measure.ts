import { BUCKET_COUNT, bucketValue, percentileRank } from '../base/histogram.js';
import type { AlertRuleConfig } from '../config/types.js';
import type { DistributionExport } from '../contracts/metrics.js';
import type { Sample, SampleHistory, WorkerPoint } from './samples.js';

/**
 * The value a rule compares with its threshold, from the samples; null when there is nothing to measure (no request
 * in the window for a ratio or percentile, an unknown route or upstream, fewer than two samples for a rate, no
 * worker that answered the metrics poll at either end of the window for a rate).
 *
 *   error_ratio        5xx responses ÷ responses in the window
 *   p50/p95/p99_ms     latency percentile of the requests answered in the window (ms, log-linear resolution)
 *   rps                responses per second over the window
 *   unhealthy_targets  targets out of rotation in at least one worker, now (per upstream or all upstreams)
 *   open_circuits      targets whose breaker is open in at least one worker, now
 *   overloaded         workers shedding load, now
 *   reload_failures    config reloads rejected in the window
 *   worker_restarts    worker restarts in the window
 *   watchdog_kills     workers killed by the watchdog (event loop blocked past server.watchdogMs) in the window
 */
export function measure(rule: AlertRuleConfig, history: SampleHistory): number | null {
  const to = history.latest();
  const from = history.windowStart(rule.windowMs);
  if (to === undefined || from === undefined) return null;
  switch (rule.metric) {
    case 'error_ratio': {
      const d = requestDelta(from, to, rule.route);
      return d.requests > 0 ? d.errors / d.requests : null;
    }
    case 'rps': {
      // No worker answered (every one frozen, or restarting): the rate is unknown, not zero. Counted as 0 it fired
      // every "below" rule, for a cause the watchdog_kills and worker_restarts metrics name.
      if (to.workers.size === 0 || from.workers.size === 0) return null;
      const seconds = (to.t - from.t) / 1000;
      return seconds > 0 ? requestDelta(from, to, rule.route).requests / seconds : null;
    }
    case 'p50_ms':
      return windowPercentile(from, to, rule.route, 50);
    case 'p95_ms':
      return windowPercentile(from, to, rule.route, 95);
    case 'p99_ms':
      return windowPercentile(from, to, rule.route, 99);
    case 'unhealthy_targets':
    case 'open_circuits': {
      const pick = rule.metric === 'unhealthy_targets' ? 'unhealthy' : 'openCircuits';
      if (rule.upstream !== undefined) return to.upstreams.get(rule.upstream)?.[pick] ?? null;
      let n = 0;
      for (const h of to.upstreams.values()) n += h[pick];
      return n;
    }
    case 'overloaded':
      return to.overloaded;
    case 'reload_failures':
      return to.control.reloadFailures - from.control.reloadFailures;
    case 'worker_restarts':
      return to.control.workerRestarts - from.control.workerRestarts;
    case 'watchdog_kills':
      return to.control.watchdogKills - from.control.watchdogKills;
  }
}

interface Counts {
  requests: number;
  errors: number;
  latency: DistributionExport;
}

function scoped(w: WorkerPoint, route: string | undefined): Counts | undefined {
  return route === undefined ? w : w.routes.get(route);
}

/**
 * Per-worker differences, summed. A worker absent from `from` (started, or restarted under a new pid, inside the
 * window) counts from zero, which is where its counters started: Prometheus' counter-reset rule.
 */
function requestDelta(from: Sample, to: Sample, route: string | undefined): { requests: number; errors: number } {
  let requests = 0;
  let errors = 0;
  for (const [key, w] of to.workers) {
    const now = scoped(w, route);
    if (now === undefined) continue;
    const prevWorker = from.workers.get(key);
    const before = prevWorker === undefined ? undefined : scoped(prevWorker, route);
    requests += now.requests - (before?.requests ?? 0);
    errors += now.errors - (before?.errors ?? 0);
  }
  return { requests, errors };
}

function windowPercentile(from: Sample, to: Sample, route: string | undefined, p: number): number | null {
  if (from === to) return null; // a single sample: no window yet
  const counts = new Float64Array(BUCKET_COUNT);
  for (const [key, w] of to.workers) {
    const now = scoped(w, route);
    if (now === undefined) continue;
    addBuckets(counts, now.latency.buckets, 1);
    const prevWorker = from.workers.get(key);
    const before = prevWorker === undefined ? undefined : scoped(prevWorker, route);
    if (before !== undefined) addBuckets(counts, before.latency.buckets, -1);
  }
  let total = 0;
  for (let i = 0; i < BUCKET_COUNT; i++) total += counts[i]!;
  if (total <= 0) return null;
  const rank = percentileRank(p, total);
  let seen = 0;
  for (let i = 0; i < BUCKET_COUNT; i++) {
    seen += counts[i]!;
    if (seen >= rank) return bucketValue(i);
  }
  return null;
}

function addBuckets(into: Float64Array, sparse: number[], sign: 1 | -1): void {
  for (let i = 0; i + 1 < sparse.length; i += 2) {
    const index = sparse[i]!;
    if (index >= 0 && index < BUCKET_COUNT) into[index]! += sign * sparse[i + 1]!;
  }
}
