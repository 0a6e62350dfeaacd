import { describe, expect, it } from 'vitest';
import { bootstrapMedianCI, bootstrapRatioCI, compare, createRng, median, quantile } from '../../scripts/scenario/stats.js';

/** Box–Muller normal from the seeded uniform generator. */
function normal(rng: () => number, mean: number, sd: number): number {
  const u = Math.max(rng(), 1e-12);
  const v = rng();
  return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

describe('median / quantile', () => {
  it('odd, even, unsorted, empty', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(Number.isNaN(median([]))).toBe(true);
  });
  it('quantile interpolates linearly (type 7)', () => {
    expect(quantile([1, 2, 3, 4, 5], 0.5)).toBe(3);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([0, 10], 0.25)).toBe(2.5);
    expect(quantile([0, 10], 1)).toBe(10);
  });
});

describe('seeded PRNG', () => {
  it('same seed → same sequence; different seed → different', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const sa = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(sa);
    expect(Array.from({ length: 5 }, c)).not.toEqual(sa);
    for (const x of sa) expect(x >= 0 && x < 1).toBe(true);
  });
});

describe('bootstrapMedianCI', () => {
  it('is deterministic for a seed and brackets the sample median', () => {
    const xs = [10, 12, 11, 13, 9, 14, 10.5];
    const a = bootstrapMedianCI(xs, { seed: 7 });
    expect(bootstrapMedianCI(xs, { seed: 7 })).toEqual(a);
    expect(a.estimate).toBe(11);
    expect(a.lo).toBeLessThanOrEqual(11);
    expect(a.hi).toBeGreaterThanOrEqual(11);
    expect(a.lo).toBeGreaterThanOrEqual(9);
    expect(a.hi).toBeLessThanOrEqual(14);
  });

  it('a single sample gives a degenerate interval at that sample', () => {
    expect(bootstrapMedianCI([5])).toEqual({ estimate: 5, lo: 5, hi: 5 });
  });

  it('contains the true median for synthetic data in ≥ 90% of seeded trials', () => {
    const trueMedian = 1000;
    const trials = 200;
    let covered = 0;
    const rng = createRng(2024);
    for (let t = 0; t < trials; t++) {
      const sample = Array.from({ length: 25 }, () => normal(rng, trueMedian, 50));
      const ci = bootstrapMedianCI(sample, { seed: t + 1, iterations: 1000 });
      if (ci.lo <= trueMedian && trueMedian <= ci.hi) covered++;
    }
    expect(covered / trials).toBeGreaterThanOrEqual(0.9);
    // and it is not trivially wide: a CI that always covers everything would pass the line above
    const ci = bootstrapMedianCI(
      Array.from({ length: 25 }, () => normal(rng, trueMedian, 50)),
      { seed: 1 },
    );
    expect(ci.hi - ci.lo).toBeLessThan(100);
  });

  it('also covers the true median of a skewed distribution (exponential) in ≥ 90% of trials', () => {
    const trueMedian = Math.LN2 * 100; // median of Exp(mean 100)
    let covered = 0;
    const rng = createRng(99);
    for (let t = 0; t < 200; t++) {
      const sample = Array.from({ length: 31 }, () => -100 * Math.log(1 - rng()));
      const ci = bootstrapMedianCI(sample, { seed: t + 1, iterations: 1000 });
      if (ci.lo <= trueMedian && trueMedian <= ci.hi) covered++;
    }
    expect(covered / 200).toBeGreaterThanOrEqual(0.9);
  });
});

describe('bootstrapRatioCI', () => {
  it('point estimate is the ratio of medians; interval brackets it', () => {
    const r = bootstrapRatioCI([20, 22, 21, 19, 20], [10, 11, 10, 9, 10], { seed: 3 });
    expect(r.estimate).toBe(2);
    expect(r.lo).toBeLessThanOrEqual(2);
    expect(r.hi).toBeGreaterThanOrEqual(2);
    expect(r.lo).toBeGreaterThan(1.5);
  });
});

describe('compare (verdicts)', () => {
  it('identical distributions → "no difference" in ≥ 90% of seeded trials', () => {
    const rng = createRng(5);
    let none = 0;
    for (let t = 0; t < 100; t++) {
      const a = Array.from({ length: 7 }, () => normal(rng, 50_000, 2_000));
      const b = Array.from({ length: 7 }, () => normal(rng, 50_000, 2_000));
      if (compare(a, b, true, { seed: t, iterations: 1000 }).verdict === 'no difference') none++;
    }
    expect(none).toBeGreaterThanOrEqual(90);
  });

  it('the same numbers are never a difference', () => {
    const a = [100, 102, 98, 101, 99];
    expect(compare(a, [...a], true).verdict).toBe('no difference');
  });

  it('clearly separated throughput → faster / slower', () => {
    const fast = [120, 121, 119, 122, 120];
    const slow = [100, 101, 99, 102, 100];
    const up = compare(fast, slow, true, { seed: 1 });
    expect(up.verdict).toBe('faster');
    expect(up.ratio.lo).toBeGreaterThan(1);
    expect(compare(slow, fast, true, { seed: 1 }).verdict).toBe('slower');
  });

  it('latency: lower is better', () => {
    const low = [1.0, 1.1, 0.9, 1.05, 0.95];
    const high = [2.0, 2.1, 1.9, 2.05, 1.95];
    expect(compare(low, high, false).verdict).toBe('faster');
    expect(compare(high, low, false).verdict).toBe('slower');
  });

  it('overlapping per-variant intervals are never ranked, even when the medians differ', () => {
    const a = [100, 130, 90, 125, 95];
    const b = [105, 85, 120, 92, 110];
    const c = compare(a, b, true);
    expect(median(a)).not.toBe(median(b));
    expect(c.verdict).toBe('no difference');
  });

  it('fewer than two repetitions: no verdict', () => {
    const c = compare([200], [100], true);
    expect(c.verdict).toBe('no difference');
    expect(c.reason).toMatch(/fewer than 2/);
  });
});
