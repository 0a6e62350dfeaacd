/**
 * The metrics contract: the latency recorder interface every metrics variant implements
 * (variants/metrics/<name>/index.ts, each exporting `createRecorder(): LatencyRecorder` and
 * `export const accuracy: string` stating its percentile error).
 *
 * Latencies are in milliseconds (float). `record` is on the request hot path: it must not allocate.
 */
export interface LatencySnapshot {
  count: number;
  errors: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
}

/**
 * A variant-independent, mergeable form of a recorder's distribution, on the standard log-linear bucket layout
 * of core/base/histogram.ts. Workers send these to the orchestrator, which merges them to report percentiles over
 * all workers (percentiles themselves cannot be averaged).
 */
export interface DistributionExport {
  count: number;
  errors: number;
  min: number;
  max: number;
  sum: number;
  /** sparse [bucketIndex, count, bucketIndex, count, ...] on the core/base/histogram.ts layout */
  buckets: number[];
}

export interface LatencyRecorder {
  /**
   * true when exportDistribution()'s buckets cover only recent samples (ring's window) rather than every sample since
   * start: the gateway then keeps an all-time copy for Prometheus histograms and windowed alert rules.
   */
  readonly windowed?: boolean;
  record(latencyMs: number, isError: boolean): void;
  snapshot(): LatencySnapshot;
  exportDistribution(): DistributionExport;
  reset(): void;
}

export type RecorderFactory = () => LatencyRecorder;

const EMPTY: LatencySnapshot = Object.freeze({ count: 0, errors: 0, min: 0, max: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0 });

/**
 * The snapshot every exact-counter recorder reports: count, errors, min/max and mean from its own counters,
 * percentiles from `at(p)` (p in 0..100), which the recorder answers from whatever structure it keeps.
 */
export function snapshotOf(count: number, errors: number, min: number, max: number, sum: number, at: (p: number) => number): LatencySnapshot {
  if (count === 0) return { ...EMPTY };
  return { count, errors, min, max, mean: sum / count, p50: at(50), p90: at(90), p95: at(95), p99: at(99), p999: at(99.9) };
}
