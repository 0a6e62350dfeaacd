import type { DistributionExport, LatencySnapshot } from '../contracts/metrics.js';

/**
 * The standard log-linear bucket layout every metrics variant exports to (DistributionExport.buckets), so that
 * distributions recorded by different workers, or by different recorder variants, can be merged exactly.
 *
 * Layout (HdrHistogram-style, on integer microseconds u = floor(valueMs * 1000)):
 *   - u < 128:  one bucket per microsecond (index = u). Bucket 0 also takes everything below 1 µs, negatives, NaN.
 *   - u >= 128: for each power of two 2^e (e = 7 .. 29) there are SUB_BUCKETS = 64 equal-width buckets of width
 *     2^(e-6) µs.  index = (e - 6) * 64 + (u >> (e - 6)).
 *   - u >= 2^30 µs (~17.9 min) goes into the last bucket.
 * BUCKET_COUNT = 1600.
 *
 * Resolution: bucketValue() returns the bucket's midpoint, so a value v reported through its bucket is off by at most
 *   max(v / 128, 0.0005 ms)   i.e. ≤ 0.79 % relative above 64 µs, ≤ 0.5 µs absolute below.
 * Percentiles taken from the histogram are the bucket value of the bucket that holds the nearest-rank sample, clamped
 * to [min, max], so they carry the same bound against the exact nearest-rank percentile of the recorded values.
 */
export const SUB_BUCKET_BITS = 6;
export const SUB_BUCKETS = 1 << SUB_BUCKET_BITS; // 64
const LINEAR_LIMIT_US = SUB_BUCKETS * 2; // 128: below this each microsecond has its own bucket
const MAX_EXPONENT = 29;
/** first microsecond value that no longer fits the layout (goes to the last bucket) */
export const MAX_TRACKABLE_US = 2 ** (MAX_EXPONENT + 1);
export const BUCKET_COUNT = (MAX_EXPONENT - SUB_BUCKET_BITS) * SUB_BUCKETS + 2 * SUB_BUCKETS; // 1600
/** the worst-case relative error of a value reported through its bucket (above LINEAR_LIMIT_US / 2 µs) */
export const RELATIVE_ERROR = 1 / (2 * SUB_BUCKETS);
/** the worst-case absolute error (ms) in the 1 µs-wide linear region */
export const ABSOLUTE_ERROR_MS = 0.0005;

/** Index of the bucket holding valueMs. Pure integer arithmetic (no Math.log) so it is cheap on the hot path. */
export function bucketIndex(valueMs: number): number {
  const us = valueMs * 1000;
  // `!(us >= 1)` also routes NaN to bucket 0
  if (!(us >= 1)) return 0;
  if (us >= MAX_TRACKABLE_US) return BUCKET_COUNT - 1;
  const u = us | 0; // < 2^30, so the int32 truncation is exact floor
  if (u < LINEAR_LIMIT_US) return u;
  const shift = 31 - Math.clz32(u) - SUB_BUCKET_BITS; // e - 6
  return (shift << SUB_BUCKET_BITS) + (u >>> shift);
}

/** Lowest microsecond value that falls into bucket `index`. */
export function bucketLowerUs(index: number): number {
  if (index < LINEAR_LIMIT_US) return index;
  const shift = (index >>> SUB_BUCKET_BITS) - 1;
  return ((index & (SUB_BUCKETS - 1)) + SUB_BUCKETS) * 2 ** shift;
}

/** Width of bucket `index` in microseconds. */
export function bucketWidthUs(index: number): number {
  return index < LINEAR_LIMIT_US ? 1 : 2 ** ((index >>> SUB_BUCKET_BITS) - 1);
}

/** The value (ms) a bucket stands for: its midpoint, which halves the worst-case error versus either edge. */
export function bucketValue(index: number): number {
  return (bucketLowerUs(index) + bucketWidthUs(index) / 2) / 1000;
}

/**
 * Nearest-rank percentile definition shared by every variant and by the tests: the value at 1-based rank
 * ceil(p/100 * count), clamped to [1, count]. The small epsilon keeps float noise (99.9 * n / 100) from pushing an
 * exact integer rank up by one.
 */
export function percentileRank(p: number, count: number): number {
  const r = Math.ceil((p * count) / 100 - 1e-9);
  return r < 1 ? 1 : r > count ? count : r;
}

// Layout of the single Float64Array holding a histogram's state (one array, so it can sit in any ArrayBuffer).
const COUNT = 0;
const ERRORS = 1;
const SUM = 2;
const MIN = 3;
const MAX = 4;
/** total of all bucket counts; differs from COUNT only after merging an export whose buckets cover a sample window */
const BUCKETED = 5;
const HEADER = 8;
/** bytes a LogLinearHistogram needs when constructed over a caller-supplied buffer */
export const HISTOGRAM_BYTES = (HEADER + BUCKET_COUNT) * Float64Array.BYTES_PER_ELEMENT;

const PERCENTILES = [50, 90, 95, 99, 99.9] as const;

/**
 * Single-writer histogram on the standard layout. Counts are float64 (exact to 2^53). record() touches only the
 * preallocated typed array, so it never allocates. Not safe for concurrent writers even over a SharedArrayBuffer;
 * variants/metrics/atomic-buckets is the multi-writer form.
 */
export class LogLinearHistogram {
  readonly data: Float64Array;

  /**
   * Without a buffer the histogram owns fresh, reset memory. Over a caller-supplied buffer (HISTOGRAM_BYTES from
   * byteOffset) it is a view of whatever is there, e.g. a histogram another thread filled: call reset() once to
   * initialise new memory (an all-zero buffer reads as min = max = 0).
   */
  constructor(buffer?: ArrayBuffer | SharedArrayBuffer, byteOffset = 0) {
    this.data = buffer === undefined ? new Float64Array(HEADER + BUCKET_COUNT) : new Float64Array(buffer, byteOffset, HEADER + BUCKET_COUNT);
    if (buffer === undefined) this.reset();
  }

  record(valueMs: number, isError = false): void {
    const d = this.data;
    // every index below is a fixed header slot or HEADER + bucketIndex() (< BUCKET_COUNT), inside the array
    d[COUNT]!++;
    if (isError) d[ERRORS]!++;
    d[SUM]! += valueMs;
    if (valueMs < d[MIN]!) d[MIN] = valueMs;
    if (valueMs > d[MAX]!) d[MAX] = valueMs;
    d[BUCKETED]!++;
    d[HEADER + bucketIndex(valueMs)]!++;
  }

  get count(): number {
    return this.data[COUNT]!;
  }

  get errors(): number {
    return this.data[ERRORS]!;
  }

  /** p in 0..100; 0 when empty. */
  percentile(p: number): number {
    const d = this.data;
    const total = d[BUCKETED]!;
    if (total === 0) return 0;
    const rank = percentileRank(p, total);
    let seen = 0;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      seen += d[HEADER + i]!;
      if (seen >= rank) return this.clamp(bucketValue(i));
    }
    return d[MAX]!;
  }

  snapshot(): LatencySnapshot {
    const d = this.data;
    const count = d[COUNT]!;
    const out: LatencySnapshot = {
      count,
      errors: d[ERRORS]!,
      min: count === 0 ? 0 : d[MIN]!,
      max: count === 0 ? 0 : d[MAX]!,
      mean: count === 0 ? 0 : d[SUM]! / count,
      p50: 0,
      p90: 0,
      p95: 0,
      p99: 0,
      p999: 0,
    };
    const total = d[BUCKETED]!;
    if (total === 0) return out;
    // one pass over the buckets for all five percentiles (they are increasing)
    const values: [number, number, number, number, number] = [0, 0, 0, 0, 0];
    let k = 0;
    let rank = percentileRank(PERCENTILES[0], total);
    let seen = 0;
    for (let i = 0; i < BUCKET_COUNT && k < PERCENTILES.length; i++) {
      seen += d[HEADER + i]!;
      while (k < PERCENTILES.length && seen >= rank) {
        values[k++] = this.clamp(bucketValue(i));
        if (k < PERCENTILES.length) rank = percentileRank(PERCENTILES[k]!, total);
      }
    }
    out.p50 = values[0];
    out.p90 = values[1];
    out.p95 = values[2];
    out.p99 = values[3];
    out.p999 = values[4];
    return out;
  }

  exportDistribution(): DistributionExport {
    const d = this.data;
    const buckets: number[] = [];
    for (let i = 0; i < BUCKET_COUNT; i++) {
      const c = d[HEADER + i]!;
      if (c !== 0) buckets.push(i, c);
    }
    const count = d[COUNT]!;
    return {
      count,
      errors: d[ERRORS]!,
      min: count === 0 ? 0 : d[MIN]!,
      max: count === 0 ? 0 : d[MAX]!,
      sum: d[SUM]!,
      buckets,
    };
  }

  merge(e: DistributionExport): void {
    const d = this.data;
    if (e.count > 0) {
      if (e.min < d[MIN]!) d[MIN] = e.min;
      if (e.max > d[MAX]!) d[MAX] = e.max;
    }
    d[COUNT]! += e.count;
    d[ERRORS]! += e.errors;
    d[SUM]! += e.sum;
    const b = e.buckets;
    for (let i = 0; i + 1 < b.length; i += 2) {
      const index = b[i]!;
      const c = b[i + 1]!;
      if (!(index >= 0 && index < BUCKET_COUNT) || index !== Math.floor(index)) {
        throw new RangeError(`bucket index ${index} is outside the standard layout (0..${BUCKET_COUNT - 1})`);
      }
      d[HEADER + index]! += c;
      d[BUCKETED]! += c;
    }
  }

  /** Adds one bucket's count directly (used by variants converting their own representation to this layout). */
  addToBucket(index: number, count: number): void {
    this.data[HEADER + index]! += count;
    this.data[BUCKETED]! += count;
  }

  reset(): void {
    const d = this.data;
    d.fill(0);
    d[MIN] = Infinity;
    d[MAX] = -Infinity;
  }

  private clamp(v: number): number {
    const d = this.data;
    const min = d[MIN]!;
    const max = d[MAX]!;
    return v < min ? min : v > max ? max : v;
  }
}

/** Merges worker exports (any variant) into one snapshot: percentiles over all workers' samples. */
export function mergeDistributions(list: DistributionExport[]): LatencySnapshot {
  const h = new LogLinearHistogram();
  for (const d of list) h.merge(d);
  return h.snapshot();
}

/**
 * Builds an export from summary fields plus a bucket array on the standard layout; variants whose native
 * representation is not this layout fill `counts` and call this.
 */
export function exportFromCounts(
  counts: ArrayLike<number>,
  summary: { count: number; errors: number; min: number; max: number; sum: number },
): DistributionExport {
  const buckets: number[] = [];
  for (let i = 0; i < BUCKET_COUNT; i++) {
    const c = counts[i]!; // counts covers the layout (BUCKET_COUNT entries)
    if (c !== 0) buckets.push(i, c);
  }
  const empty = summary.count === 0;
  return {
    count: summary.count,
    errors: summary.errors,
    min: empty ? 0 : summary.min,
    max: empty ? 0 : summary.max,
    sum: summary.sum,
    buckets,
  };
}
