import { describe, expect, it } from 'vitest';
import { mergeDistributions, percentileRank } from '../../core/base/histogram.js';
import type { LatencyRecorder, LatencySnapshot, RecorderFactory } from '../../core/contracts/metrics.js';

/**
 * A variant's stated accuracy, numerically:
 * - window: percentiles are exact over the last `size` samples
 * - relative: |estimate - exact| ≤ max(rel * exact, abs) (ms)
 * exportRel/exportAbs/exportRankSlack bound a merged export against the exact combined stream: the merged value at
 * rank r lies within [exact(r) - tol, exact(r + slack) + tol].
 * additive: export(A) merged with export(B) equals export(A+B) exactly.
 */
export interface AccuracyBound {
  kind: 'window' | 'relative';
  size?: number;
  rel?: number;
  abs?: number;
  exportRel: number;
  exportAbs: number;
  /** given the two recorders' sample counts */
  exportRankSlack: (nA: number, nB: number) => number;
  additive: boolean;
  /** min/max tolerance (relative); 0 = exact */
  minMaxRel: number;
  /** mean tolerance (absolute ms) */
  meanAbs: number;
}

export const PERCENTILES = [
  [50, 'p50'],
  [90, 'p90'],
  [95, 'p95'],
  [99, 'p99'],
  [99.9, 'p999'],
] as const;

/** mulberry32: tiny, seeded, good enough to make reproducible test distributions */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function normal(rand: () => number): number {
  // Box-Muller; 1 - u keeps log away from 0
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

export const DISTRIBUTIONS = {
  uniform: (n, seed) => {
    const r = prng(seed);
    return Array.from({ length: n }, () => 0.05 + r() * 200);
  },
  bimodal: (n, seed) => {
    const r = prng(seed);
    return Array.from({ length: n }, () => (r() < 0.9 ? Math.abs(2 + 0.2 * normal(r)) : Math.abs(80 + 10 * normal(r))));
  },
  lognormal: (n, seed) => {
    const r = prng(seed);
    return Array.from({ length: n }, () => Math.exp(Math.log(5) + 1.2 * normal(r)));
  },
  submillisecond: (n, seed) => {
    const r = prng(seed);
    return Array.from({ length: n }, () => 0.003 + r() * 0.4);
  },
} satisfies Record<string, (n: number, seed: number) => number[]>;

export function exactAt(sorted: ArrayLike<number>, p: number): number {
  return sorted[percentileRank(p, sorted.length) - 1]!;
}

function sortedCopy(values: number[]): Float64Array {
  return Float64Array.from(values).sort();
}

function feed(rec: LatencyRecorder, values: number[], errorEvery = 7): number {
  let errors = 0;
  for (let i = 0; i < values.length; i++) {
    const isError = i % errorEvery === 0;
    if (isError) errors++;
    rec.record(values[i]!, isError);
  }
  return errors;
}

function within(estimate: number, exact: number, rel: number, abs: number): boolean {
  return Math.abs(estimate - exact) <= Math.max(rel * exact, abs) * (1 + 1e-9) + 1e-12;
}

function expectSummary(s: LatencySnapshot, values: number[], errors: number, bound: AccuracyBound): void {
  expect(s.count).toBe(values.length);
  expect(s.errors).toBe(errors);
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  if (bound.minMaxRel === 0) {
    expect(s.min).toBe(min);
    expect(s.max).toBe(max);
  } else {
    expect(Math.abs(s.min - min)).toBeLessThanOrEqual(bound.minMaxRel * min);
    expect(Math.abs(s.max - max)).toBeLessThanOrEqual(bound.minMaxRel * max);
  }
  expect(Math.abs(s.mean - sum / values.length)).toBeLessThanOrEqual(bound.meanAbs + 1e-9 * (sum / values.length));
}

export function metricsConformance(name: string, factory: RecorderFactory, bound: AccuracyBound): void {
  describe(`metrics variant ${name}`, () => {
    // 20000 makes p/100 * n an integer for every reported percentile, so nearest-rank and round-half-up rank rules
    // (HdrHistogram_c) pick the same sample
    const N = 20_000;

    for (const [dist, gen] of Object.entries(DISTRIBUTIONS)) {
      it(`percentiles on a ${dist} distribution are within the stated bound`, () => {
        const values = gen(N, 42);
        const rec = factory();
        const errors = feed(rec, values);
        const s = rec.snapshot();
        expectSummary(s, values, errors, bound);
        const reference = bound.kind === 'window' ? sortedCopy(values.slice(-bound.size!)) : sortedCopy(values);
        for (const [p, key] of PERCENTILES) {
          const exact = exactAt(reference, p);
          if (bound.kind === 'window') expect(s[key], `${key}`).toBe(exact);
          else expect(within(s[key], exact, bound.rel!, bound.abs!), `${key}: ${s[key]} vs exact ${exact}`).toBe(true);
        }
      });
    }

    it('a bound this tight actually discriminates (a 2x-off percentile would fail)', () => {
      const values = DISTRIBUTIONS.lognormal(N, 7);
      const exact = exactAt(sortedCopy(values), 99);
      if (bound.kind === 'relative') expect(within(exact * 1.02, exact, bound.rel!, bound.abs!)).toBe(false);
    });

    it('reports zeros when empty and starts over after reset()', () => {
      const rec = factory();
      const empty = rec.snapshot();
      expect(empty).toEqual({ count: 0, errors: 0, min: 0, max: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0 });
      feed(rec, DISTRIBUTIONS.uniform(1000, 1));
      rec.reset();
      expect(rec.snapshot()).toEqual(empty);
      const e = rec.exportDistribution();
      expect(e).toMatchObject({ count: 0, errors: 0, sum: 0, buckets: [] });
      const values: [number, number, number] = [5, 1, 3];
      rec.record(values[0], true);
      rec.record(values[1], false);
      rec.record(values[2], false);
      const s = rec.snapshot();
      expectSummary(s, values, 1, bound);
      expect(within(s.p50, 3, bound.rel ?? 0, bound.abs ?? 0)).toBe(true);
    });

    it('exports a distribution that merges like one recorder fed both streams', () => {
      // ≤ 4096 samples in total so a window-bounded variant still sees everything
      const a = DISTRIBUTIONS.lognormal(3000, 11);
      const b = DISTRIBUTIONS.bimodal(1000, 12);
      const ra = factory();
      const rb = factory();
      const rab = factory();
      const ea = feed(ra, a, 5);
      const eb = feed(rb, b, 3);
      feed(rab, a, 5);
      feed(rab, b, 3);
      const xa = ra.exportDistribution();
      const xb = rb.exportDistribution();
      expect(xa.count).toBe(a.length);
      expect(xb.errors).toBe(eb);
      const merged = mergeDistributions([xa, xb]);
      const all = [...a, ...b];
      expectSummary(merged, all, ea + eb, { ...bound, meanAbs: Math.max(bound.meanAbs, 1e-9) });
      const sorted = sortedCopy(all);
      const slack = bound.exportRankSlack(a.length, b.length);
      for (const [p, key] of PERCENTILES) {
        const r = percentileRank(p, sorted.length);
        const lo = sorted[r - 1]!;
        const hi = sorted[Math.min(sorted.length, r + slack) - 1]!;
        const tolLo = Math.max(bound.exportRel * lo, bound.exportAbs);
        const tolHi = Math.max(bound.exportRel * hi, bound.exportAbs);
        expect(merged[key], `${key}: ${merged[key]} not in [${lo - tolLo}, ${hi + tolHi}]`).toBeGreaterThanOrEqual(lo - tolLo - 1e-12);
        expect(merged[key]).toBeLessThanOrEqual(hi + tolHi + 1e-12);
      }
      if (bound.additive) {
        const single = rab.exportDistribution();
        const m = mergeDistributions([xa, xb]);
        const one = mergeDistributions([single]);
        for (const [, key] of PERCENTILES) expect(m[key]).toBe(one[key]);
        expect(m.count).toBe(one.count);
      }
    });

    it('exportDistribution does not disturb recording', () => {
      const rec = factory();
      const values = DISTRIBUTIONS.uniform(500, 3);
      const errors = feed(rec, values);
      rec.exportDistribution();
      rec.exportDistribution();
      expectSummary(rec.snapshot(), values, errors, bound);
      const total = rec.exportDistribution().buckets.reduce((acc, v, i) => (i % 2 === 1 ? acc + v : acc), 0);
      expect(total).toBe(values.length);
    });
  });
}
