import type { ObjectPool, PoolOptions, PoolStats } from '../../../core/contracts/pool.js';

/**
 * FIFO ring buffer over a preallocated slot array with head (next to acquire) and tail (next free slot) cursors.
 * FIFO spreads reuse evenly over all pooled objects instead of hammering the top of a stack, so an object that is
 * still (wrongly) referenced after release is less likely to be handed out again at once: a different trade-off
 * from `stack` (which favours cache locality), measured by the bench.
 */
class RingPool<T> implements ObjectPool<T> {
  private readonly slots: (T | null)[];
  private head = 0;
  private tail = 0;
  private size = 0;
  private hits = 0;
  private misses = 0;
  private overflows = 0;
  private readonly capacity: number;
  private readonly create: () => T;
  private readonly resetObj: (obj: T) => void;

  constructor(options: PoolOptions<T>) {
    this.capacity = Math.max(0, Math.floor(options.capacity));
    this.create = options.create;
    this.resetObj = options.reset;
    this.slots = new Array<T | null>(this.capacity).fill(null);
  }

  acquire(): T {
    if (this.size === 0) {
      this.misses++;
      return this.create();
    }
    this.hits++;
    const h = this.head;
    const obj = this.slots[h] as T;
    this.slots[h] = null;
    // compare-and-wrap rather than modulo: capacity need not be a power of two, and `%` is a division
    this.head = h + 1 === this.capacity ? 0 : h + 1;
    this.size--;
    return obj;
  }

  release(obj: T): void {
    this.resetObj(obj);
    if (this.size === this.capacity) {
      this.overflows++;
      return;
    }
    const t = this.tail;
    this.slots[t] = obj;
    this.tail = t + 1 === this.capacity ? 0 : t + 1;
    this.size++;
  }

  stats(): PoolStats {
    return { hits: this.hits, misses: this.misses, overflows: this.overflows, size: this.size, capacity: this.capacity };
  }
}

export function createPool<T>(options: PoolOptions<T>): ObjectPool<T> {
  return new RingPool(options);
}
