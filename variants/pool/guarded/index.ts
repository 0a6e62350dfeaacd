import type { ObjectPool, PoolOptions, PoolStats } from '../../../core/contracts/pool.js';

/**
 * `stack` plus a double-release guard. Why a fourth variant: with any plain pool, releasing the same object twice
 * (e.g. an error path and a finally both releasing the context) puts it in the pool twice, so two concurrent
 * requests later share one RequestState: a silent cross-request leak of identity, headers and body. Here a WeakSet
 * tracks which objects are currently pooled; a second release of a pooled object is dropped and counted in
 * `doubleReleases` instead. The WeakSet (not a Set) never keeps a dropped object alive, and it needs no field on T
 * (an intrusive marker property would change RequestState's hidden class and make the hot path polymorphic).
 * The bench shows what the guard costs per acquire+release.
 */
export class GuardedPool<T extends object> implements ObjectPool<T> {
  private readonly items: (T | null)[];
  private readonly pooled = new WeakSet<T>();
  private top = 0;
  private hits = 0;
  private misses = 0;
  private overflows = 0;
  /** releases of an object that was already in the pool (dropped, not counted as overflows) */
  doubleReleases = 0;
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
    this.pooled.delete(obj);
    return obj;
  }

  release(obj: T): void {
    if (this.pooled.has(obj)) {
      // resetting it here would wipe state of nobody's request, but it is pooled and already clean: just drop
      this.doubleReleases++;
      return;
    }
    this.resetObj(obj);
    if (this.top === this.capacity) {
      this.overflows++;
      return;
    }
    this.items[this.top++] = obj;
    this.pooled.add(obj);
  }

  stats(): PoolStats {
    return { hits: this.hits, misses: this.misses, overflows: this.overflows, size: this.top, capacity: this.capacity };
  }
}

export function createPool<T>(options: PoolOptions<T>): ObjectPool<T> {
  // WeakSet needs object keys; every pooled thing in the gateway is an object, primitives make no sense to pool
  return new GuardedPool(options as unknown as PoolOptions<object>) as unknown as ObjectPool<T>;
}
