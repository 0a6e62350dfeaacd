/**
 * Latency recorder interface every metrics variant implements (variants/metrics/<name>/index.ts, each exporting
 * `createRecorder(): LatencyRecorder` and `export const accuracy: string` stating its percentile error).
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
 * of core/histogram.ts. Workers send these to the orchestrator, which merges them to report percentiles over
 * all workers (percentiles themselves cannot be averaged).
 */
export interface DistributionExport {
  count: number;
  errors: number;
  min: number;
  max: number;
  sum: number;
  /** sparse [bucketIndex, count, bucketIndex, count, ...] on the core/histogram.ts layout */
  buckets: number[];
}

export interface LatencyRecorder {
  record(latencyMs: number, isError: boolean): void;
  snapshot(): LatencySnapshot;
  exportDistribution(): DistributionExport;
  reset(): void;
}

export type RecorderFactory = () => LatencyRecorder;
