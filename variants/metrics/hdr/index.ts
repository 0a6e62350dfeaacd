import { build, type JsHistogram } from 'hdr-histogram-js';
import { BUCKET_COUNT, bucketIndex, exportFromCounts } from '../../../core/base/histogram.js';
import { snapshotOf, type DistributionExport, type LatencyRecorder, type LatencySnapshot } from '../../../core/contracts/metrics.js';

/** 1 hour in ns: anything slower is clamped (a request that slow has long since timed out). */
const HIGHEST_NS = 3_600_000_000_000;

export const accuracy = '≤ 0.1% relative (HdrHistogram, 3 significant digits, ns units); count/errors/min/max/mean exact';

/**
 * hdr-histogram-js recording integer nanoseconds. Counts are float64 (bitBucketSize 64) so no bucket wraps, and the
 * range is fixed (autoResize off) so record() never reallocates. count/errors/sum/min/max are kept alongside because
 * HDR only sees the rounded integer value.
 */
class HdrRecorder implements LatencyRecorder {
  private readonly h = build({
    bitBucketSize: 64,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_NS,
    numberOfSignificantValueDigits: 3,
  }) as JsHistogram;
  private count = 0;
  private errors = 0;
  private sum = 0;
  private min = Infinity;
  private max = -Infinity;

  record(latencyMs: number, isError: boolean): void {
    let ns = Math.round(latencyMs * 1e6);
    if (!(ns >= 0)) ns = 0;
    else if (ns > HIGHEST_NS) ns = HIGHEST_NS;
    this.h.recordValue(ns);
    this.count++;
    if (isError) this.errors++;
    this.sum += latencyMs;
    if (latencyMs < this.min) this.min = latencyMs;
    if (latencyMs > this.max) this.max = latencyMs;
  }

  private at(p: number): number {
    // HDR answers with the highest value equivalent to the bucket; clamping to the exact extremes only tightens it
    const v = this.h.getValueAtPercentile(p) / 1e6;
    return v < this.min ? this.min : v > this.max ? this.max : v;
  }

  snapshot(): LatencySnapshot {
    return snapshotOf(this.count, this.errors, this.min, this.max, this.sum, (p) => this.at(p));
  }

  /**
   * Walks HDR's counts array and re-buckets each non-empty HDR bucket at its median equivalent value. HDR buckets
   * are at most 1/1024 of their value wide, so the only extra error versus recording straight into the standard
   * layout is an HDR bucket straddling a layout boundary: ≤ 1/128 + 1/1024 relative after conversion.
   */
  exportDistribution(): DistributionExport {
    const counts = new Float64Array(BUCKET_COUNT);
    const h = this.h;
    const n = h.countsArrayLength;
    for (let i = 0; i < n; i++) {
      const c = h.getCountAtIndex(i);
      if (c !== 0) counts[bucketIndex(h.medianEquivalentValue(h.valueFromIndex(i)) / 1e6)]! += c;
    }
    return exportFromCounts(counts, { count: this.count, errors: this.errors, min: this.min, max: this.max, sum: this.sum });
  }

  reset(): void {
    this.h.reset();
    this.count = 0;
    this.errors = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = -Infinity;
  }
}

export function createRecorder(): LatencyRecorder {
  return new HdrRecorder();
}
