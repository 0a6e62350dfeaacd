/**
 * Micro-benchmark of the latency-recorder variants.
 *
 *   npm run build && node dist/scripts/bench/metrics.js [--quick]
 *
 * Per variant: ns per record() (benchmark.js mean ± margin of error at 95 %), heap bytes allocated per 1M record(),
 * the cost of snapshot() and exportDistribution() after 100k samples, and the measured p50/p99/p99.9 error against
 * the exact sorted-array value on a seeded lognormal sample (plus the same after an export/merge round trip).
 * Writes {results.json,report.md} to the git-ignored reports/runs/<timestamp>-micro-metrics/; with --publish to the
 * committed reports/micro/metrics/<timestamp>/ and reports/micro/metrics/latest/ (harness.ts, writeMicroReport).
 */
import { cpus } from 'node:os';
import { pathToFileURL } from 'node:url';
import { mergeDistributions, percentileRank } from '../../core/base/histogram.js';
import type { LatencyRecorder } from '../../core/contracts/metrics.js';
import { DEFAULT_METRICS, metricsAccuracy, metricsVariants } from '../../variants/metrics/index.js';
import {
  environment,
  fmt,
  getGc,
  measureAllocation,
  timeOps,
  writeReport,
  type Allocation,
  type MicroBenchOptions,
  type MicroBenchResult,
  type Timing,
} from './harness.js';
export type { MicroBenchOptions, MicroBenchResult } from './harness.js';

const OPS_PER_CALL = 1000;
const ALLOC_CHUNK = 10_000;
const VALUES = 1 << 16;
const ACCURACY_SAMPLES = 100_000;

// ---- metrics benchmark ---------------------------------------------------------------------------------------

/** mulberry32 + Box-Muller: a reproducible lognormal latency sample (median 5 ms, sigma 1.2: a long right tail) */
function lognormalSample(n: number, seed: number): Float64Array {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    out[i] = Math.exp(Math.log(5) + 1.2 * z);
  }
  return out;
}

/**
 * The measured loop, compiled from a fresh source string per variant: closures made from one source share V8's type
 * feedback, so with an ordinary closure the `rec.record()` call site would go megamorphic as the variants run one
 * after another; the later variants would then be measured without inlining, paying a boxed double (16 bytes) per
 * call that the gateway's monomorphic call site would not. Marks 1 in 16 samples as an error.
 */
function compileRecordLoop(variant: string, rec: LatencyRecorder, values: Float64Array): (n: number) => void {
  const source = `"use strict"; // metrics variant ${JSON.stringify(variant)}
let cursor = 0;
const mask = values.length - 1;
return function record(n) {
  for (let i = 0; i < n; i++) {
    rec.record(values[cursor], (cursor & 15) === 0);
    cursor = (cursor + 1) & mask;
  }
};`;
  return new Function('rec', 'values', source)(rec, values) as (n: number) => void;
}

interface ErrorRow {
  exact: number;
  measured: number;
  /** (measured - exact) / exact, in percent */
  errorPct: number;
}

interface MetricsRow {
  variant: string;
  accuracy: string;
  record: Timing;
  allocation: Allocation;
  snapshotUs: number;
  exportUs: number;
  errors: { p50: ErrorRow; p99: ErrorRow; p999: ErrorRow };
  mergedErrors: { p50: ErrorRow; p99: ErrorRow; p999: ErrorRow };
}

function errorRow(measured: number, exact: number): ErrorRow {
  return { exact, measured, errorPct: ((measured - exact) / exact) * 100 };
}

function meanMicros(fn: () => void, iterations: number): number {
  fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - t0) / 1000 / iterations;
}

export async function runMetricsBench(opts: MicroBenchOptions = {}): Promise<MicroBenchResult> {
  const quick = opts.quick === true;
  const gc = getGc();
  const values = lognormalSample(VALUES, 1);
  const sample = lognormalSample(ACCURACY_SAMPLES, 2);
  const sorted = Float64Array.from(sample).sort();
  const exactAt = (p: number) => sorted[percentileRank(p, sorted.length) - 1]!;
  const rows: MetricsRow[] = [];

  for (const [variant, factory] of Object.entries(metricsVariants)) {
    const rec: LatencyRecorder = factory();
    const record = compileRecordLoop(variant, rec, values);
    record(200_000); // warm-up for the JIT
    const recordT = timeOps(`${variant} record`, () => record(OPS_PER_CALL), OPS_PER_CALL, quick);
    const allocation = measureAllocation(record, quick ? 30 : 100, gc, ALLOC_CHUNK);

    // accuracy on the full sample, as one recorder and as two merged halves (what the orchestrator reports)
    const full = factory();
    const halfA = factory();
    const halfB = factory();
    for (let i = 0; i < sample.length; i++) {
      const v = sample[i]!;
      full.record(v, false);
      (i & 1 ? halfA : halfB).record(v, false);
    }
    const s = full.snapshot();
    const m = mergeDistributions([halfA.exportDistribution(), halfB.exportDistribution()]);
    const snapshotUs = meanMicros(() => full.snapshot(), quick ? 5 : 50);
    const exportUs = meanMicros(() => full.exportDistribution(), quick ? 5 : 50);
    rows.push({
      variant,
      accuracy: metricsAccuracy[variant]!, // same keys as metricsVariants
      record: recordT,
      allocation,
      snapshotUs,
      exportUs,
      errors: { p50: errorRow(s.p50, exactAt(50)), p99: errorRow(s.p99, exactAt(99)), p999: errorRow(s.p999, exactAt(99.9)) },
      mergedErrors: { p50: errorRow(m.p50, exactAt(50)), p99: errorRow(m.p99, exactAt(99)), p999: errorRow(m.p999, exactAt(99.9)) },
    });
    process.stderr.write(`metrics ${variant}: ${fmt(recordT.nsPerOp)} ns/record, ${allocation.bytesPer1M} B/1M\n`);
  }

  const json = {
    benchmark: 'metrics',
    startedAt: new Date().toISOString(),
    environment: environment(quick),
    method: {
      timing: `benchmark.js, ${OPS_PER_CALL} record() per call over a precomputed lognormal array (1 in 16 marked as error), ns/op = mean call time / ${OPS_PER_CALL}, margin = 95% confidence (rme)`,
      allocation: `forced full GC (v8 --expose-gc set at runtime, gc from vm) before each chunk of ${ALLOC_CHUNK} record(); median v8 used_heap_size delta minus the median empty-chunk delta; chunks with a GC inside (negative delta) discarded; scaled to 1M ops`,
      accuracy: `${ACCURACY_SAMPLES} lognormal samples (median 5 ms, sigma 1.2, seeded); exact = nearest-rank on the sorted array; "merged" = two recorders fed alternate samples, exported and merged with mergeDistributions`,
      snapshotAndExport: 'mean wall time per call after the accuracy sample was recorded',
    },
    defaultVariant: DEFAULT_METRICS,
    results: rows,
  };

  const pct = (e: ErrorRow) => `${e.errorPct >= 0 ? '+' : ''}${e.errorPct.toFixed(3)}%`;
  const lines = [
    '# Metrics recorder micro-benchmark',
    '',
    `Node ${process.version}, ${String((json.environment as Record<string, unknown>).cpu)} × ${cpus().length}${quick ? ' — **quick run, not for quoting**' : ''}.`,
    `Default variant: \`${DEFAULT_METRICS}\`.`,
    '',
    '| variant | record (ns/op) | bytes / 1M records | snapshot (µs) | export (µs) | p50 err | p99 err | p99.9 err | merged p50 | merged p99 | merged p99.9 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.variant} | ${fmt(r.record.nsPerOp)} ± ${fmt(r.record.marginNs)} | ${r.allocation.bytesPer1M.toLocaleString('en-US')} | ${fmt(r.snapshotUs)} | ${fmt(r.exportUs)} | ${pct(r.errors.p50)} | ${pct(r.errors.p99)} | ${pct(r.errors.p999)} | ${pct(r.mergedErrors.p50)} | ${pct(r.mergedErrors.p99)} | ${pct(r.mergedErrors.p999)} |`,
    ),
    '',
    'Stated accuracy:',
    '',
    ...rows.map((r) => `- **${r.variant}**: ${r.accuracy}`),
    '',
    `Timing: ${json.method.timing}.`,
    '',
    `Allocation: ${json.method.allocation}.`,
    '',
    `Accuracy: ${json.method.accuracy}.`,
    '',
  ];
  const markdown = lines.join('\n');
  const dir = opts.write === false ? undefined : writeReport('metrics', json, markdown, opts);
  return { json, markdown, dir };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await runMetricsBench({ quick: process.argv.includes('--quick') });
  process.stdout.write(result.markdown);
  if (result.dir !== undefined) process.stdout.write(`\nwritten to ${result.dir}\n`);
}
