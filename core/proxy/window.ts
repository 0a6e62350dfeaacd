const BUCKETS = 10;

/**
 * Two counters (a, b) over a sliding window of `windowMs`, in BUCKETS fixed slots: O(1) and allocation-free
 * per event, with the window's edge accurate to windowMs / BUCKETS.
 */
export class RollingPair {
  private readonly a = new Float64Array(BUCKETS);
  private readonly b = new Float64Array(BUCKETS);
  private readonly epoch = new Float64Array(BUCKETS).fill(-1);
  private readonly bucketMs: number;

  constructor(windowMs: number) {
    this.bucketMs = Math.max(1, windowMs / BUCKETS);
  }

  private slot(now: number): number {
    const e = Math.floor(now / this.bucketMs);
    const i = e % BUCKETS;
    if (this.epoch[i] !== e) {
      this.epoch[i] = e;
      this.a[i] = 0;
      this.b[i] = 0;
    }
    return i;
  }

  addA(now: number, n = 1): void {
    this.a[this.slot(now)]! += n;
  }

  addB(now: number, n = 1): void {
    this.b[this.slot(now)]! += n;
  }

  sumA(now: number): number {
    return this.sum(this.a, now);
  }

  sumB(now: number): number {
    return this.sum(this.b, now);
  }

  private sum(arr: Float64Array, now: number): number {
    const e = Math.floor(now / this.bucketMs);
    let s = 0;
    for (let i = 0; i < BUCKETS; i++) if (e - this.epoch[i]! < BUCKETS) s += arr[i]!;
    return s;
  }

  clear(): void {
    this.epoch.fill(-1);
  }
}
