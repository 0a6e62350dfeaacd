import { BUCKET_COUNT, bucketIndex, mergeDistributions, RELATIVE_ERROR } from '../../../core/base/histogram.js';
import type { DistributionExport, LatencyRecorder, LatencySnapshot } from '../../../core/contracts/metrics.js';

/**
 * The standard log-linear layout as 32-bit words in a SharedArrayBuffer, updated with Atomics so any number of
 * worker threads can record lock-free into one histogram (construct each thread's recorder over the same buffer).
 *
 * Every counter is 64 bits wide as a (lo, hi) pair of int32 words: Atomics.add on the low word returns the old value,
 * so exactly the thread whose add wraps it past 2^32 carries into the high word. This avoids BigInt64Array, whose
 * Atomics.add would allocate a BigInt per call. A reader racing a carry can transiently see the low word wrapped and
 * the high word not yet bumped; settled values are exact.
 *
 * min/max are stored as float32 bit patterns: for non-negative floats the int32 ordering of the bits equals the
 * numeric ordering, so a compareExchange loop keeps them without a lock (~7 significant digits).
 * The sum is kept in integer nanoseconds (mean exact to 0.5 ns).
 */
const COUNT_LO = 0;
const COUNT_HI = 1;
const ERR_LO = 2;
const ERR_HI = 3;
const SUM_LO = 4;
const SUM_HI = 5;
const MIN_BITS = 6;
const MAX_BITS = 7;
const HEADER_WORDS = 16;
const WORDS = HEADER_WORDS + 2 * BUCKET_COUNT;
/** size of the SharedArrayBuffer a recorder needs */
export const ATOMIC_BUFFER_BYTES = WORDS * Int32Array.BYTES_PER_ELEMENT;

const TWO_32 = 4294967296;
const MAX_SUM_MS = Number.MAX_SAFE_INTEGER / 1e6;
const FLOAT32_INF_BITS = 0x7f800000;
const NO_MAX = -1;

export const accuracy = `≤ ${(RELATIVE_ERROR * 100).toFixed(2)}% relative above 64 µs, ≤ 0.5 µs absolute below (standard log-linear layout, shared by threads); count/errors exact; min/max to float32 (~7 digits); mean to 0.5 ns`;

export class AtomicBucketsRecorder implements LatencyRecorder {
  readonly buffer: SharedArrayBuffer;
  private readonly words: Int32Array;
  // per-recorder (per-thread) scratch to move a float32 in and out of its bit pattern without allocating
  private readonly f32 = new Float32Array(1);
  private readonly f32bits = new Int32Array(this.f32.buffer);

  /** Over `shared` (another thread's `.buffer`) the existing counts are kept; otherwise a fresh buffer is made. */
  constructor(shared?: SharedArrayBuffer) {
    if (shared !== undefined && shared.byteLength < ATOMIC_BUFFER_BYTES) {
      throw new RangeError(`shared buffer too small: ${shared.byteLength} < ${ATOMIC_BUFFER_BYTES} bytes`);
    }
    this.buffer = shared ?? new SharedArrayBuffer(ATOMIC_BUFFER_BYTES);
    this.words = new Int32Array(this.buffer, 0, WORDS);
    if (shared === undefined) this.reset();
  }

  /*
   * record() is kept under V8's inlining budget (460 bytes of bytecode) on purpose: when it is not inlined into its
   * caller, the double argument is boxed into a fresh HeapNumber on every call (16 bytes per record). The helpers
   * take only int32 arguments (Smis), so they cost no allocation even when they are not inlined.
   */
  record(latencyMs: number, isError: boolean): void {
    const w = this.words;
    // old low word == -1 (0xffffffff) means this add wrapped it
    if (Atomics.add(w, COUNT_LO, 1) === -1) Atomics.add(w, COUNT_HI, 1);
    if (isError && Atomics.add(w, ERR_LO, 1) === -1) Atomics.add(w, ERR_HI, 1);
    const b = HEADER_WORDS + 2 * bucketIndex(latencyMs);
    if (Atomics.add(w, b, 1) === -1) Atomics.add(w, b + 1, 1);
    // negative and NaN count as 0; the cap (~104 days) keeps the ns value an exact integer
    const v = latencyMs >= 0 ? (latencyMs < MAX_SUM_MS ? latencyMs : MAX_SUM_MS) : 0;
    const ns = Math.round(v * 1e6);
    const hi = Math.floor(ns / TWO_32);
    this.addSum((ns - hi * TWO_32) | 0, hi);
    this.f32[0] = v;
    this.extremes(this.f32bits[0]!);
  }

  private addSum(lo: number, hi: number): void {
    const w = this.words;
    if ((Atomics.add(w, SUM_LO, lo) >>> 0) + (lo >>> 0) >= TWO_32) hi++;
    if (hi !== 0) Atomics.add(w, SUM_HI, hi);
  }

  /** a new extreme is rare, so the compare-exchange loops stay out of line */
  private extremes(bits: number): void {
    const w = this.words;
    if (bits < Atomics.load(w, MIN_BITS)) this.lowerMin(bits);
    if (bits > Atomics.load(w, MAX_BITS)) this.raiseMax(bits);
  }

  private lowerMin(bits: number): void {
    const w = this.words;
    let cur = Atomics.load(w, MIN_BITS);
    while (bits < cur) {
      const seen = Atomics.compareExchange(w, MIN_BITS, cur, bits);
      if (seen === cur) return;
      cur = seen;
    }
  }

  private raiseMax(bits: number): void {
    const w = this.words;
    let cur = Atomics.load(w, MAX_BITS);
    while (bits > cur) {
      const seen = Atomics.compareExchange(w, MAX_BITS, cur, bits);
      if (seen === cur) return;
      cur = seen;
    }
  }

  private read64(lo: number): number {
    const w = this.words;
    return Atomics.load(w, lo + 1) * TWO_32 + (Atomics.load(w, lo) >>> 0);
  }

  private bitsToFloat(bits: number): number {
    this.f32bits[0] = bits;
    return this.f32[0]!;
  }

  exportDistribution(): DistributionExport {
    const buckets: number[] = [];
    for (let i = 0; i < BUCKET_COUNT; i++) {
      const c = this.read64(HEADER_WORDS + 2 * i);
      if (c !== 0) buckets.push(i, c);
    }
    const count = this.read64(COUNT_LO);
    const maxBits = Atomics.load(this.words, MAX_BITS);
    const empty = count === 0 || maxBits === NO_MAX;
    return {
      count,
      errors: this.read64(ERR_LO),
      min: empty ? 0 : this.bitsToFloat(Atomics.load(this.words, MIN_BITS)),
      max: empty ? 0 : this.bitsToFloat(maxBits),
      sum: this.read64(SUM_LO) / 1e6,
      buckets,
    };
  }

  snapshot(): LatencySnapshot {
    return mergeDistributions([this.exportDistribution()]);
  }

  /** Clears the shared histogram for every thread recording into it. */
  reset(): void {
    const w = this.words;
    for (let i = 0; i < WORDS; i++) Atomics.store(w, i, 0);
    Atomics.store(w, MIN_BITS, FLOAT32_INF_BITS);
    Atomics.store(w, MAX_BITS, NO_MAX);
  }
}

export function createRecorder(shared?: SharedArrayBuffer): AtomicBucketsRecorder {
  return new AtomicBucketsRecorder(shared);
}
