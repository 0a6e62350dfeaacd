import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ABSOLUTE_ERROR_MS,
  BUCKET_COUNT,
  HISTOGRAM_BYTES,
  LogLinearHistogram,
  MAX_TRACKABLE_US,
  RELATIVE_ERROR,
  bucketIndex,
  bucketLowerUs,
  bucketValue,
  bucketWidthUs,
  mergeDistributions,
  percentileRank,
} from '../../core/base/histogram.js';
import { DISTRIBUTIONS, PERCENTILES, exactAt } from './common.case.js';

// the bound is tight (met with equality at bucket edges), so allow float noise on top
const bound = (v: number) => Math.max(v * RELATIVE_ERROR, ABSOLUTE_ERROR_MS) * (1 + 1e-9);

describe('log-linear bucket layout', () => {
  it('is contiguous: each bucket starts where the previous one ends, widths never shrink', () => {
    expect(bucketLowerUs(0)).toBe(0);
    for (let i = 1; i < BUCKET_COUNT; i++) {
      expect(bucketLowerUs(i)).toBe(bucketLowerUs(i - 1) + bucketWidthUs(i - 1));
      expect(bucketWidthUs(i)).toBeGreaterThanOrEqual(bucketWidthUs(i - 1));
    }
    expect(bucketLowerUs(BUCKET_COUNT - 1) + bucketWidthUs(BUCKET_COUNT - 1)).toBe(MAX_TRACKABLE_US);
    expect(MAX_TRACKABLE_US / 1e6 / 60).toBeGreaterThan(10); // covers at least 10 minutes
  });

  it('maps every bucket boundary to its own bucket, and the microsecond before it to the previous one', () => {
    for (let i = 1; i < BUCKET_COUNT; i++) {
      const lower = bucketLowerUs(i);
      expect(bucketIndex(lower / 1000)).toBe(i);
      expect(bucketIndex((lower - 0.001) / 1000)).toBe(i - 1);
    }
  });

  it('is monotonic in the value', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 2e6, noNaN: true }), fc.double({ min: 0, max: 2e6, noNaN: true }), (a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(bucketIndex(lo)).toBeLessThanOrEqual(bucketIndex(hi));
      }),
      { numRuns: 5000 },
    );
    let prev = 0;
    for (let v = 0.0001; v < 1.2e6; v *= 1.0007) {
      const i = bucketIndex(v);
      expect(i).toBeGreaterThanOrEqual(prev);
      prev = i;
    }
    expect(prev).toBe(BUCKET_COUNT - 1);
  });

  it('reports any value in range through its bucket within max(v/128, 0.5 µs)', () => {
    const maxMs = MAX_TRACKABLE_US / 1000;
    fc.assert(
      fc.property(fc.double({ min: 0.001, max: maxMs, maxExcluded: true, noNaN: true }), (v) => {
        const i = bucketIndex(v);
        expect(bucketLowerUs(i)).toBeLessThanOrEqual(v * 1000);
        expect(v * 1000).toBeLessThan(bucketLowerUs(i) + bucketWidthUs(i));
        expect(Math.abs(bucketValue(i) - v)).toBeLessThanOrEqual(bound(v));
      }),
      { numRuns: 20000 },
    );
    // the worst case sits at the bottom edge of each bucket
    for (let i = 1; i < BUCKET_COUNT; i++) {
      const v = bucketLowerUs(i) / 1000;
      expect(Math.abs(bucketValue(i) - v)).toBeLessThanOrEqual(bound(v));
    }
  });

  it('sends values below the range, NaN and negatives to bucket 0, values above to the last bucket', () => {
    for (const v of [0, -5, Number.NaN, 0.0009, -Infinity]) expect(bucketIndex(v)).toBe(0);
    for (const v of [MAX_TRACKABLE_US / 1000, 1e9, Infinity]) expect(bucketIndex(v)).toBe(BUCKET_COUNT - 1);
  });
});

describe('percentileRank', () => {
  it('is nearest-rank and robust to float noise', () => {
    expect(percentileRank(50, 20000)).toBe(10000);
    expect(percentileRank(99.9, 20000)).toBe(19980);
    expect(percentileRank(99.9, 1000)).toBe(999);
    expect(percentileRank(50, 3)).toBe(2);
    expect(percentileRank(0, 10)).toBe(1);
    expect(percentileRank(100, 10)).toBe(10);
  });
});

describe('LogLinearHistogram', () => {
  it('gives percentiles within the layout bound and exact count/errors/min/max/mean', () => {
    for (const gen of Object.values(DISTRIBUTIONS)) {
      const values = gen(20000, 5);
      const h = new LogLinearHistogram();
      for (let i = 0; i < values.length; i++) h.record(values[i]!, i % 4 === 0);
      const sorted = Float64Array.from(values).sort();
      const s = h.snapshot();
      expect(s.count).toBe(20000);
      expect(s.errors).toBe(5000);
      expect(s.min).toBe(sorted[0]);
      expect(s.max).toBe(sorted[sorted.length - 1]);
      expect(s.mean).toBeCloseTo(values.reduce((a, b) => a + b, 0) / values.length, 9);
      for (const [p, key] of PERCENTILES) {
        const exact = exactAt(sorted, p);
        expect(Math.abs(s[key] - exact)).toBeLessThanOrEqual(bound(exact));
        expect(h.percentile(p)).toBe(s[key]);
      }
    }
  });

  it('merges exports exactly (bucket counts add up) and rejects indexes outside the layout', () => {
    const a = new LogLinearHistogram();
    const b = new LogLinearHistogram();
    const both = new LogLinearHistogram();
    const va = DISTRIBUTIONS.lognormal(5000, 1);
    const vb = DISTRIBUTIONS.uniform(7000, 2);
    for (const v of va) {
      a.record(v);
      both.record(v);
    }
    for (const v of vb) {
      b.record(v, true);
      both.record(v, true);
    }
    const merged = mergeDistributions([a.exportDistribution(), b.exportDistribution(), new LogLinearHistogram().exportDistribution()]);
    const s = both.snapshot();
    expect(merged).toEqual({ ...s, mean: merged.mean });
    expect(merged.mean).toBeCloseTo(s.mean, 9);
    expect(() => mergeDistributions([{ count: 1, errors: 0, min: 1, max: 1, sum: 1, buckets: [BUCKET_COUNT, 1] }])).toThrow(RangeError);
  });

  it('percentiles of merged windowed exports use the bucketed samples, not the all-time count', () => {
    const h = new LogLinearHistogram();
    // an export whose buckets cover fewer samples than count (a ring recorder's window)
    h.merge({ count: 100, errors: 0, min: 1, max: 10, sum: 300, buckets: [bucketIndex(2), 5, bucketIndex(8), 5] });
    expect(h.percentile(50)).toBeCloseTo(bucketValue(bucketIndex(2)), 12);
    expect(h.percentile(60)).toBeCloseTo(bucketValue(bucketIndex(8)), 12);
    expect(h.snapshot().count).toBe(100);
  });

  it('can live in a caller-supplied (shared) buffer and resets cleanly', () => {
    const sab = new SharedArrayBuffer(HISTOGRAM_BYTES);
    const h = new LogLinearHistogram(sab);
    h.reset();
    h.record(3, true);
    h.record(5);
    const view = new LogLinearHistogram(sab); // a second view over the same memory sees the data
    expect(view.snapshot()).toMatchObject({ count: 2, errors: 1, min: 3, max: 5, mean: 4 });
    view.reset();
    expect(h.snapshot()).toEqual({ count: 0, errors: 0, min: 0, max: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0 });
    expect(h.exportDistribution().buckets).toEqual([]);
  });
});
