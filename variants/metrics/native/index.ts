import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { BUCKET_COUNT, bucketIndex, exportFromCounts } from '../../../core/base/histogram.js';
import { snapshotOf, type DistributionExport, type LatencyRecorder, type LatencySnapshot } from '../../../core/contracts/metrics.js';

/** 1 hour in ns; larger values are clamped (record() throws outside [lowest, highest]). */
const HIGHEST_NS = 3_600_000_000_000;
/** rank grid used to rebuild the distribution for export: exact below this many samples */
const EXPORT_POINTS = 1024;

export const accuracy =
  '≤ 0.1% relative (node:perf_hooks HdrHistogram_c, 3 significant figures, ns units); export rank error ≤ count/1024; count/errors/min/max/mean exact';

/**
 * node:perf_hooks RecordableHistogram (HdrHistogram_c in C++). It records integers ≥ 1, so values are converted to
 * nanoseconds and clamped to [1, 1 h]. Its own count/min/max see the rounded values, so exact ones are kept here.
 */
class NativeRecorder implements LatencyRecorder {
  private readonly h: RecordableHistogram = createHistogram({ lowest: 1, highest: HIGHEST_NS, figures: 3 });
  private count = 0;
  private errors = 0;
  private sum = 0;
  private min = Infinity;
  private max = -Infinity;

  record(latencyMs: number, isError: boolean): void {
    let ns = Math.round(latencyMs * 1e6);
    if (!(ns >= 1)) ns = 1;
    else if (ns > HIGHEST_NS) ns = HIGHEST_NS;
    // the binding call takes a tagged value: an int32 travels as a Smi, any other double is boxed into a new
    // HeapNumber (16 bytes per record), so pass the int32 form whenever it is exact (all latencies below 2.1 s)
    if ((ns | 0) === ns) this.h.record(ns | 0);
    else this.h.record(ns);
    this.count++;
    if (isError) this.errors++;
    this.sum += latencyMs;
    if (latencyMs < this.min) this.min = latencyMs;
    if (latencyMs > this.max) this.max = latencyMs;
  }

  private at(p: number): number {
    const v = this.h.percentile(p) / 1e6;
    return v < this.min ? this.min : v > this.max ? this.max : v;
  }

  snapshot(): LatencySnapshot {
    return snapshotOf(this.count, this.errors, this.min, this.max, this.sum, (p) => this.at(p));
  }

  /**
   * The native histogram exposes no bucket counts, only percentile queries, so the distribution is rebuilt from its
   * quantile function: for ranks r_1 < r_2 < ... < r_G = count (G = min(count, 1024), evenly spaced), the samples
   * with rank in (r_{j-1}, r_j] are all placed at value(r_j). When count ≤ 1024 every rank is queried and the
   * export is exact up to the 3-figure value error. Otherwise each sample moves up by at most count/1024 ranks, so a
   * merged percentile is the true value at a rank at most count/1024 higher (plus ≤ 0.1% + the layout's 1/128).
   * Cost: G percentile queries (~5 ms for 1024), paid at export time instead of on the record path.
   */
  exportDistribution(): DistributionExport {
    const counts = new Float64Array(BUCKET_COUNT);
    const n = this.count;
    const g = n < EXPORT_POINTS ? n : EXPORT_POINTS;
    let prevRank = 0;
    for (let j = 1; j <= g; j++) {
      const rank = Math.ceil((j * n) / g);
      if (rank === prevRank) continue;
      // HdrHistogram_c maps p to rank trunc(p/100 * count + 0.5) (older versions: ceil); rank - 0.25 lands on
      // `rank` under both rules with room for float noise
      const p = (100 * (rank - 0.25)) / n;
      let v = this.h.percentile(p) / 1e6;
      if (v < this.min) v = this.min;
      else if (v > this.max) v = this.max;
      counts[bucketIndex(v)]! += rank - prevRank;
      prevRank = rank;
    }
    return exportFromCounts(counts, { count: n, errors: this.errors, min: this.min, max: this.max, sum: this.sum });
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
  return new NativeRecorder();
}
