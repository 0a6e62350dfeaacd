/**
 * The pool contract: the object-pool interface every pool variant implements (variants/pool/<name>/index.ts,
 * each exporting `createPool<T>(options: PoolOptions<T>): ObjectPool<T>`). The gateway pools RequestState objects (core/data/request-state.ts).
 */
export interface PoolOptions<T> {
  /** Makes a fresh object; called on a miss or to preallocate. */
  create: () => T;
  /** Clears every field of a released object so nothing leaks into the next request. */
  reset: (obj: T) => void;
  /** Objects kept for reuse; acquiring beyond it allocates (an overflow), releasing beyond it drops. */
  capacity: number;
}

export interface PoolStats {
  /** acquire() served by a pooled object */
  hits: number;
  /** acquire() had to allocate */
  misses: number;
  /** release() found the pool full and dropped the object */
  overflows: number;
  /** objects currently held in the pool, ready for acquire() */
  size: number;
  capacity: number;
}

export interface ObjectPool<T> {
  acquire(): T;
  release(obj: T): void;
  stats(): PoolStats;
}

export type PoolFactory = <T>(options: PoolOptions<T>) => ObjectPool<T>;
