/**
 * Micro-benchmark of the object-pool variants on the gateway's real pooled type (RequestState).
 *
 *   npm run build && node dist/scripts/bench/pool.js [--quick]
 *
 * Per variant: ns per acquire+release (benchmark.js mean ± margin of error at 95 %), for a single in-flight object
 * and for bursts of 16 (16 acquires, then 16 releases), plus heap bytes allocated per 1M acquire+release.
 * Writes {results.json,report.md} to the git-ignored reports/runs/<timestamp>-micro-pool/; with --publish to the
 * committed reports/micro/pool/<timestamp>/ and reports/micro/pool/latest/ (harness.ts, writeMicroReport).
 */
import { cpus } from 'node:os';
import { pathToFileURL } from 'node:url';
import type { ObjectPool } from '../../core/contracts/pool.js';
import { RequestState, createRequestState, resetRequestState } from '../../core/data/request-state.js';
import { DEFAULT_POOL, poolVariants } from '../../variants/pool/index.js';
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
const ALLOC_CHUNK = 2000;
const POOL_CAPACITY = 1024;
const BURST = 16;

interface PoolLoops {
  /** n × (acquire, touch, release) with one object in flight */
  single: (n: number) => void;
  /** n acquires in bursts of `burst`, each burst released after it is fully acquired */
  burst: (n: number) => void;
}

/**
 * The measured loops, compiled from a fresh source string per variant. Closures made from one source share V8's type
 * feedback, so with ordinary closures the `pool.acquire()` call site would go polymorphic, then megamorphic, as the
 * variants run one after another, and the later variants would be measured without inlining. Every acquired
 * context is stored into `escape.ctx`: in the gateway a context escapes (hooks, closures, the response path), and
 * without that V8's escape analysis could delete `none`'s allocation altogether.
 */
function compileLoops(variant: string, pool: ObjectPool<RequestState>, burst: number): PoolLoops {
  const source = `"use strict"; // pool variant ${JSON.stringify(variant)}
const held = new Array(burst).fill(null);
const escape = { ctx: null, sink: 0 };
function single(n) {
  for (let i = 0; i < n; i++) {
    const ctx = pool.acquire();
    escape.ctx = ctx;
    ctx.statusCode = 201;
    escape.sink += ctx.method.length;
    pool.release(ctx);
  }
}
function burstLoop(n) {
  for (let i = 0; i < n; i += burst) {
    for (let j = 0; j < burst; j++) {
      const ctx = pool.acquire();
      escape.ctx = ctx;
      ctx.statusCode = 201;
      held[j] = ctx;
    }
    for (let j = 0; j < burst; j++) pool.release(held[j]);
  }
}
return { single, burst: burstLoop };`;
  return new Function('pool', 'burst', source)(pool, burst) as PoolLoops;
}

interface PoolRow {
  variant: string;
  single: Timing;
  burst: Timing;
  allocation: Allocation;
  stats: ReturnType<ObjectPool<RequestState>['stats']>;
}

export async function runPoolBench(opts: MicroBenchOptions = {}): Promise<MicroBenchResult> {
  const quick = opts.quick === true;
  const gc = getGc();
  const rows: PoolRow[] = [];

  for (const [variant, factory] of Object.entries(poolVariants)) {
    const pool = factory<RequestState>({ create: createRequestState, reset: resetRequestState, capacity: POOL_CAPACITY });
    const { single, burst } = compileLoops(variant, pool, BURST);
    // warm up: fills the pool and lets the JIT optimise both shapes of use before anything is measured
    single(50_000);
    burst(50_000);
    gc();
    const singleT = timeOps(`${variant} single`, () => single(OPS_PER_CALL), OPS_PER_CALL, quick);
    const burstT = timeOps(`${variant} burst${BURST}`, () => burst(OPS_PER_CALL), OPS_PER_CALL, quick);
    const allocation = measureAllocation(single, quick ? 30 : 500, gc, ALLOC_CHUNK);
    rows.push({ variant, single: singleT, burst: burstT, allocation, stats: pool.stats() });
    process.stderr.write(`pool ${variant}: ${fmt(singleT.nsPerOp)} ns/op single, ${fmt(burstT.nsPerOp)} ns/op burst, ${allocation.bytesPer1M} B/1M\n`);
  }

  const json = {
    benchmark: 'pool',
    startedAt: new Date().toISOString(),
    environment: environment(quick),
    method: {
      timing: `benchmark.js, ${OPS_PER_CALL} acquire+release per call, ns/op = mean call time / ${OPS_PER_CALL}, margin = 95% confidence (rme)`,
      allocation: `forced full GC (v8 --expose-gc set at runtime, gc from vm) before each chunk of ${ALLOC_CHUNK} single acquire+release; median v8 used_heap_size delta minus the median empty-chunk delta; chunks with a GC inside (negative delta) discarded; scaled to 1M ops`,
      pooledType: 'RequestState (core/data/request-state.ts)',
      capacity: POOL_CAPACITY,
      burst: BURST,
    },
    defaultVariant: DEFAULT_POOL,
    results: rows,
  };

  const lines = [
    '# Pool micro-benchmark',
    '',
    `Node ${process.version}, ${String((json.environment as Record<string, unknown>).cpu)} × ${cpus().length}${quick ? ' — **quick run, not for quoting**' : ''}.`,
    `Pooled type: RequestState, capacity ${POOL_CAPACITY}. Default variant: \`${DEFAULT_POOL}\`.`,
    '',
    '| variant | acquire+release, 1 in flight (ns/op) | burst of 16 (ns/op) | bytes allocated / 1M ops | hits | misses | overflows |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.variant} | ${fmt(r.single.nsPerOp)} ± ${fmt(r.single.marginNs)} | ${fmt(r.burst.nsPerOp)} ± ${fmt(r.burst.marginNs)} | ${r.allocation.bytesPer1M.toLocaleString('en-US')} | ${r.stats.hits} | ${r.stats.misses} | ${r.stats.overflows} |`,
    ),
    '',
    `Timing: ${json.method.timing}.`,
    '',
    `Allocation: ${json.method.allocation}.`,
    '',
  ];
  const markdown = lines.join('\n');
  const dir = opts.write === false ? undefined : writeReport('pool', json, markdown, opts);
  return { json, markdown, dir };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await runPoolBench({ quick: process.argv.includes('--quick') });
  process.stdout.write(result.markdown);
  if (result.dir !== undefined) process.stdout.write(`\nwritten to ${result.dir}\n`);
}
