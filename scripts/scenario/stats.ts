/**
 * Statistics over repetitions. Repetitions are few (3–10) and their distribution is unknown (throughput on a
 * shared machine is skewed by interference), so everything is non-parametric: medians, percentile-bootstrap
 * confidence intervals, and verdicts that only call a difference when the evidence excludes "no difference".
 */

/** mulberry32: tiny, fast, good enough for resampling, and seeded so reports and tests are reproducible. */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Linear-interpolated quantile (type 7, like R's default / numpy's 'linear'). q in [0, 1]. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export interface Interval {
  /** point estimate (median of the observed samples, or their ratio) */
  estimate: number;
  lo: number;
  hi: number;
}

export interface BootstrapOptions {
  /** resamples; 4000 keeps the 2.5 % / 97.5 % tails stable to well under the run-to-run noise */
  iterations?: number;
  seed?: number;
  /** confidence level, default 0.95 */
  level?: number;
}

/** Resamples per interval unless a caller asks otherwise (results.json's `statistics` block states it). */
export const BOOTSTRAP_ITERATIONS = 4000;
/** Confidence level of every interval in a report. */
export const CONFIDENCE_LEVEL = 0.95;
/** Below this many samples an interval is not computed: estimate only, printed as "n=1, no CI". */
export const MIN_SAMPLES_FOR_CI = 2;

function resampleMedian(values: readonly number[], rng: () => number, scratch: number[]): number {
  const n = values.length;
  for (let i = 0; i < n; i++) scratch[i] = values[(rng() * n) | 0]!;
  return median(scratch);
}

/** Percentile-bootstrap CI of the median. */
export function bootstrapMedianCI(values: readonly number[], opts: BootstrapOptions = {}): Interval {
  const iterations = opts.iterations ?? BOOTSTRAP_ITERATIONS;
  const level = opts.level ?? CONFIDENCE_LEVEL;
  const estimate = median(values);
  if (values.length < 2) return { estimate, lo: estimate, hi: estimate };
  const rng = createRng(opts.seed ?? 1);
  const scratch = new Array<number>(values.length);
  const stats = new Array<number>(iterations);
  for (let i = 0; i < iterations; i++) stats[i] = resampleMedian(values, rng, scratch);
  stats.sort((a, b) => a - b);
  const alpha = (1 - level) / 2;
  return { estimate, lo: quantile(stats, alpha), hi: quantile(stats, 1 - alpha) };
}

/**
 * CI of median(a) / median(b), resampling both groups independently (they are independent runs).
 * b's medians must be positive (throughputs and latencies are).
 */
export function bootstrapRatioCI(a: readonly number[], b: readonly number[], opts: BootstrapOptions = {}): Interval {
  const iterations = opts.iterations ?? BOOTSTRAP_ITERATIONS;
  const level = opts.level ?? CONFIDENCE_LEVEL;
  const estimate = median(a) / median(b);
  if (a.length < 2 && b.length < 2) return { estimate, lo: estimate, hi: estimate };
  const rng = createRng(opts.seed ?? 1);
  const sa = new Array<number>(a.length);
  const sb = new Array<number>(b.length);
  const stats = new Array<number>(iterations);
  for (let i = 0; i < iterations; i++) stats[i] = resampleMedian(a, rng, sa) / resampleMedian(b, rng, sb);
  stats.sort((x, y) => x - y);
  const alpha = (1 - level) / 2;
  return { estimate, lo: quantile(stats, alpha), hi: quantile(stats, 1 - alpha) };
}

export type Verdict = 'faster' | 'slower' | 'no difference';

export interface Comparison {
  ratio: Interval;
  verdict: Verdict;
  /** why the verdict is what it is, one line for the report */
  reason: string;
}

function overlaps(x: Interval, y: Interval): boolean {
  return x.lo <= y.hi && y.lo <= x.hi;
}

/**
 * Compares candidate against reference. `higherIsBetter` (throughput) or not (latency).
 * A difference is called only when BOTH the ratio CI excludes 1 AND the two groups' own median CIs do not
 * overlap: the second condition is stricter than the test needs, but it guarantees the report never shows
 * "faster" next to error bars that visibly overlap.
 */
export function compare(candidate: readonly number[], reference: readonly number[], higherIsBetter: boolean, opts: BootstrapOptions = {}): Comparison {
  const ratio = bootstrapRatioCI(candidate, reference, opts);
  const ci = bootstrapMedianCI(candidate, opts);
  const ri = bootstrapMedianCI(reference, { ...opts, seed: (opts.seed ?? 1) + 1 });
  if (candidate.length < 2 || reference.length < 2) {
    return { ratio, verdict: 'no difference', reason: 'fewer than 2 repetitions: no interval, no verdict' };
  }
  if (ratio.lo <= 1 && ratio.hi >= 1) {
    return { ratio, verdict: 'no difference', reason: 'ratio CI contains 1' };
  }
  if (overlaps(ci, ri)) {
    return { ratio, verdict: 'no difference', reason: 'median CIs overlap' };
  }
  const up = ratio.lo > 1;
  return { ratio, verdict: up === higherIsBetter ? 'faster' : 'slower', reason: `ratio CI excludes 1 and median CIs are disjoint` };
}
