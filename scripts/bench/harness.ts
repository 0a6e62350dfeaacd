/**
 * What the micro-benchmarks of scripts/bench/ share: benchmark.js timing amortised over many operations per call,
 * heap-allocation measurement with a forced GC, the environment block and the report writer.
 */
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import Benchmark from 'benchmark';
import { ROOT } from '../scenario/paths.js';
import { citingText, pruneReports } from '../scenario/report/prune.js';

export interface MicroBenchOptions {
  /** short runs to check the harness works (numbers are not meant to be quoted) */
  quick?: boolean;
  /** write results.json/report.md (default true); where: see microReportDir */
  write?: boolean;
  outDir?: string;
  /** update the committed reports/micro/<family>/ (timestamped folder and latest/) instead of the ignored reports/runs/ */
  publish?: boolean;
}

export interface MicroBenchResult {
  json: unknown;
  markdown: string;
  /** the timestamped directory written, when write is on */
  dir?: string;
}

/** A callable gc without requiring --expose-gc on the command line: set the flag, then fetch gc from a new context. */
export function getGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

export interface Timing {
  nsPerOp: number;
  /** ± ns/op, 95 % confidence */
  marginNs: number;
  rmePct: number;
  samples: number;
}

/** benchmark.js on a function that performs `opsPerCall` operations per call, so call overhead is amortised. */
export function timeOps(name: string, fn: () => void, opsPerCall: number, quick: boolean): Timing {
  const bench = new Benchmark(name, fn, quick ? { maxTime: 0.3, minSamples: 5 } : { maxTime: 3, minSamples: 30 });
  bench.run({ async: false });
  if (bench.error) throw bench.error as Error;
  const nsPerOp = (bench.stats.mean * 1e9) / opsPerCall;
  return { nsPerOp, marginNs: (nsPerOp * bench.stats.rme) / 100, rmePct: bench.stats.rme, samples: bench.stats.sample.length };
}

export interface Allocation {
  bytesPer1M: number;
  chunks: number;
  /** chunks thrown away because a GC ran inside them (heap shrank) */
  discarded: number;
}

/**
 * Heap bytes allocated per 1M operations. Method: force a full GC, read v8 used_heap_size, run a chunk of
 * `chunkSize` operations (small enough to stay inside the young generation, so no scavenge runs mid-chunk), read
 * again. The median chunk delta minus the median delta around an empty chunk (the reads' own allocations) is what
 * the operations allocated; the median keeps a chunk that ran while the JIT was still swapping in optimised code
 * from skewing the figure. Chunks whose delta is negative had a GC inside and are discarded.
 */
export function measureAllocation(run: (n: number) => void, chunks: number, gc: () => void, chunkSize: number): Allocation {
  const sample = (body: (n: number) => void): { median: number; discarded: number } => {
    const deltas: number[] = [];
    let discarded = 0;
    for (let c = 0; c < chunks; c++) {
      gc();
      const before = v8.getHeapStatistics().used_heap_size;
      body(chunkSize);
      const delta = v8.getHeapStatistics().used_heap_size - before;
      if (delta < 0) discarded++;
      else deltas.push(delta);
    }
    deltas.sort((x, y) => x - y);
    return { median: deltas.length === 0 ? 0 : deltas[deltas.length >> 1]!, discarded };
  };
  const base = sample(() => {});
  const ops = sample(run);
  const perChunk = ops.median - base.median;
  return { bytesPer1M: Math.max(0, Math.round((perChunk / chunkSize) * 1e6)), chunks, discarded: ops.discarded };
}

export function environment(quick: boolean): Record<string, unknown> {
  const cpu = cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${process.arch}`,
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    totalMemBytes: totalmem(),
    quick,
  };
}

/**
 * Where a micro-benchmark writes: by default a git-ignored scratch folder reports/runs/<timestamp>-micro-<family>/
 * (running a benchmark never changes `git status`); with publish, the committed reports/micro/<family>/<timestamp>/
 * plus a copy in reports/micro/<family>/latest/. `outDir` replaces the reports/ root in both layouts.
 */
export function writeMicroReport(family: string, json: unknown, markdown: string, opts: { outDir?: string; publish?: boolean; started?: Date }): string {
  const stamp = (opts.started ?? new Date()).toISOString().replace(/:/g, '-');
  const root = resolve(opts.outDir ?? 'reports');
  const dir = opts.publish === true ? join(root, 'micro', family, stamp) : join(root, 'runs', `${stamp}-micro-${family}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'results.json'), `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(join(dir, 'report.md'), markdown);
  if (opts.publish === true) {
    const latest = join(root, 'micro', family, 'latest');
    mkdirSync(latest, { recursive: true });
    cpSync(join(dir, 'results.json'), join(latest, 'results.json'));
    cpSync(join(dir, 'report.md'), join(latest, 'report.md'));
    pruneReports(root, citingText(ROOT));
    if (!existsSync(dir)) return latest;
  }
  return dir;
}

export function writeReport(family: string, json: unknown, markdown: string, opts: MicroBenchOptions): string {
  return writeMicroReport(family, json, markdown, opts);
}

export const fmt = (n: number, digits = 1) => n.toFixed(digits);
