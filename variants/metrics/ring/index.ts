import { exportFromCounts, bucketIndex, BUCKET_COUNT, percentileRank } from '../../../core/base/histogram.js';
import { snapshotOf, type DistributionExport, type LatencyRecorder, type LatencySnapshot } from '../../../core/contracts/metrics.js';

/** samples kept for percentiles; a power of two so the cursor wraps with a mask instead of a branch */
export const WINDOW = 4096;

export const accuracy = `exact over the last ${WINDOW} samples (older samples do not affect percentiles); count/errors/min/max/mean exact over all samples`;

/**
 * The seed's circular buffer of recent latencies: record() is one store, percentiles sort a copy of the window.
 * Cheap to record, exact for the window, blind to anything older: a p99.9 over 4096 samples rests on ~4 values.
 */
class RingRecorder implements LatencyRecorder {
  readonly windowed = true;
  private readonly samples = new Float64Array(WINDOW);
  private cursor = 0;
  private count = 0;
  private errors = 0;
  private sum = 0;
  private min = Infinity;
  private max = -Infinity;

  record(latencyMs: number, isError: boolean): void {
    this.samples[this.cursor] = latencyMs;
    this.cursor = (this.cursor + 1) & (WINDOW - 1);
    this.count++;
    if (isError) this.errors++;
    this.sum += latencyMs;
    if (latencyMs < this.min) this.min = latencyMs;
    if (latencyMs > this.max) this.max = latencyMs;
  }

  private window(): Float64Array {
    const n = this.count < WINDOW ? this.count : WINDOW;
    return this.samples.slice(0, n);
  }

  snapshot(): LatencySnapshot {
    if (this.count === 0) return snapshotOf(0, 0, 0, 0, 0, () => 0);
    const sorted = this.window().sort();
    const n = sorted.length;
    return snapshotOf(this.count, this.errors, this.min, this.max, this.sum, (p) => sorted[percentileRank(p, n) - 1]!);
  }

  /**
   * Buckets the window's samples onto the standard layout. count/errors/sum/min/max stay the all-time exact values,
   * so after a merge the bucket total (the window) is smaller than count; mergeDistributions takes percentiles over
   * the buckets, i.e. over each worker's recent window.
   */
  exportDistribution(): DistributionExport {
    const counts = new Float64Array(BUCKET_COUNT);
    const n = this.count < WINDOW ? this.count : WINDOW;
    for (let i = 0; i < n; i++) counts[bucketIndex(this.samples[i]!)]!++;
    return exportFromCounts(counts, { count: this.count, errors: this.errors, min: this.min, max: this.max, sum: this.sum });
  }

  reset(): void {
    this.cursor = 0;
    this.count = 0;
    this.errors = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = -Infinity;
  }
}

export function createRecorder(): LatencyRecorder {
  return new RingRecorder();
}
