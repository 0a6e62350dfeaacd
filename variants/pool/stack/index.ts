import type { ObjectPool, PoolOptions, PoolStats } from '../../../core/contracts/pool.js';

/**
 * LIFO stack in a fixed-size array. LIFO hands back the most recently released object, which is the one most likely
 * still in CPU cache. The array is allocated once at full capacity and never grows or shrinks (no `push`/`pop`
 * resizing); freed slots are nulled so the pool does not keep dropped references alive. The pool starts empty and
 * fills as objects are released: acquiring from an empty pool allocates (a miss).
 */
class StackPool<T> implements ObjectPool<T> {
  private readonly items: (T | null)[];
  private top = 0;
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
    this.items = new Array<T | null>(this.capacity).fill(null);
  }

  acquire(): T {
    if (this.top === 0) {
      this.misses++;
      return this.create();
    }
    this.hits++;
    const i = --this.top;
    const obj = this.items[i] as T;
    this.items[i] = null;
    return obj;
  }

  release(obj: T): void {
    this.resetObj(obj);
    if (this.top === this.capacity) {
      this.overflows++;
      return;
    }
    this.items[this.top++] = obj;
  }

  stats(): PoolStats {
    return { hits: this.hits, misses: this.misses, overflows: this.overflows, size: this.top, capacity: this.capacity };
  }
}

export function createPool<T>(options: PoolOptions<T>): ObjectPool<T> {
  return new StackPool(options);
}
