import type { ObjectPool, PoolOptions, PoolStats } from '../../../core/contracts/pool.js';

/**
 * The baseline: no pooling at all. acquire() always allocates (a miss), release() resets the object (so a caller
 * still holding it sees cleared state, like with the pooling variants) and drops it. It behaves as a pool of
 * capacity 0, so every release is counted as an overflow. The bench compares the pooling variants against this.
 */
class NoPool<T> implements ObjectPool<T> {
  private misses = 0;
  private overflows = 0;
  private readonly create: () => T;
  private readonly resetObj: (obj: T) => void;

  constructor(options: PoolOptions<T>) {
    this.create = options.create;
    this.resetObj = options.reset;
  }

  acquire(): T {
    this.misses++;
    return this.create();
  }

  release(obj: T): void {
    this.resetObj(obj);
    this.overflows++;
  }

  stats(): PoolStats {
    return { hits: 0, misses: this.misses, overflows: this.overflows, size: 0, capacity: 0 };
  }
}

export function createPool<T>(options: PoolOptions<T>): ObjectPool<T> {
  return new NoPool(options);
}
