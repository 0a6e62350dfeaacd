import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ObjectPool, PoolFactory } from '../../core/contracts/pool.js';
import { RequestState, createRequestState, resetRequestState } from '../../core/data/request-state.js';

/** `none` keeps nothing; every other variant must hand released objects back out. */
export interface PoolCaseOptions {
  pooling: boolean;
}

interface Box {
  id: number;
  dirty: boolean;
}

function boxPool(factory: PoolFactory, capacity: number): { pool: ObjectPool<Box>; created: () => number; resets: () => number } {
  let created = 0;
  let resets = 0;
  const pool = factory<Box>({
    create: () => ({ id: ++created, dirty: false }),
    reset: (b) => {
      resets++;
      b.dirty = false;
    },
    capacity,
  });
  return { pool, created: () => created, resets: () => resets };
}

/** A distinct non-default value for a field, by the type of its default, so a field nobody knows about still gets dirtied. */
function dirtyValue(key: string, current: unknown): unknown {
  switch (typeof current) {
    case 'string':
      return `dirty-${key}`;
    case 'number':
      return 12345.5;
    case 'boolean':
      return !current;
    default:
      return { dirty: key };
  }
}

type Fields = Record<string, unknown>;

/** Dirties a context the way a request does, then every remaining own field generically (so new fields are covered). */
export function dirtyEveryField(ctx: RequestState): void {
  const fresh = new RequestState() as unknown as Fields;
  ctx.method = 'POST';
  ctx.url = '/users/42?x=1';
  ctx.params = { id: '42' };
  ctx.route = { path: '/users/:id' };
  ctx.startTime = 987.65;
  ctx.send(418, { 'x-teapot': '1' }, Buffer.from('body'));
  ctx.error = new Error('boom');
  ctx.identity = { sub: 'alice' };
  ctx.set('rate-limit', { remaining: 3 });
  ctx.upgrade = true;
  const rec = ctx as unknown as Fields;
  for (const key of Object.keys(fresh)) {
    if (OWNED.has(key)) dirtyOwned(rec[key] as Fields, key);
    else if (rec[key] === fresh[key]) rec[key] = dirtyValue(key, rec[key]);
  }
  for (const key of Object.keys(fresh)) {
    if (OWNED.has(key)) expect(rec[key], `field ${key} should be dirty before release`).not.toEqual(fresh[key]);
    else expect(rec[key], `field ${key} should be dirty before release`).not.toBe(fresh[key]);
  }
}

/** Objects a context owns for its whole life (reset in place, never replaced): compared by their fields. */
const OWNED = new Set(['hookWait']);

function dirtyOwned(owned: Fields, key: string): void {
  for (const k of Object.keys(owned)) owned[k] = dirtyValue(`${key}.${k}`, owned[k]);
}

/** Every own enumerable field equals a freshly constructed RequestState's (same keys, same values/references). */
export function expectLikeFresh(ctx: RequestState): void {
  const fresh = new RequestState() as unknown as Fields;
  const rec = ctx as unknown as Fields;
  expect(Object.keys(rec).sort()).toEqual(Object.keys(fresh).sort());
  for (const key of Object.keys(fresh)) {
    if (OWNED.has(key)) expect(rec[key], `field ${key}`).toEqual(fresh[key]);
    else expect(rec[key], `field ${key}`).toBe(fresh[key]);
  }
  expect(ctx.get('rate-limit')).toBeUndefined();
}

export function poolConformance(name: string, factory: PoolFactory, opts: PoolCaseOptions): void {
  describe(`pool variant ${name}`, () => {
    it('reports its capacity (0 for the non-pooling baseline) and starts empty', () => {
      const { pool } = boxPool(factory, 8);
      expect(pool.stats()).toEqual({ hits: 0, misses: 0, overflows: 0, size: 0, capacity: opts.pooling ? 8 : 0 });
    });

    it('reuses a released object on the next acquire', () => {
      const { pool, created } = boxPool(factory, 4);
      const a = pool.acquire();
      a.dirty = true;
      pool.release(a);
      expect(a.dirty).toBe(false); // release() resets
      const b = pool.acquire();
      if (opts.pooling) {
        expect(b).toBe(a);
        expect(created()).toBe(1);
        expect(pool.stats()).toMatchObject({ hits: 1, misses: 1, overflows: 0, size: 0 });
      } else {
        expect(b).not.toBe(a);
        expect(created()).toBe(2);
        expect(pool.stats()).toMatchObject({ hits: 0, misses: 2, overflows: 1, size: 0 });
      }
    });

    it('never hands out an object that is still in use', () => {
      const { pool } = boxPool(factory, 16);
      const first = Array.from({ length: 16 }, () => pool.acquire());
      for (const o of first) pool.release(o);
      const second = Array.from({ length: 24 }, () => pool.acquire());
      expect(new Set(second).size).toBe(24);
    });

    it('allocates beyond capacity and drops (counting overflows) what does not fit back', () => {
      const cap = 5;
      const { pool, created, resets } = boxPool(factory, cap);
      const warm = Array.from({ length: cap }, () => pool.acquire());
      for (const o of warm) pool.release(o);
      const held = Array.from({ length: cap + 3 }, () => pool.acquire());
      if (opts.pooling) {
        expect(pool.stats()).toEqual({ hits: cap, misses: cap + 3, overflows: 0, size: 0, capacity: cap });
        expect(created()).toBe(cap + 3);
      } else {
        expect(pool.stats()).toEqual({ hits: 0, misses: 2 * cap + 3, overflows: cap, size: 0, capacity: 0 });
      }
      for (const o of held) {
        o.dirty = true;
        pool.release(o);
      }
      // every release resets, including the dropped ones (a caller might still look at it)
      expect(held.every((o) => !o.dirty)).toBe(true);
      expect(resets()).toBe(2 * cap + 3);
      if (opts.pooling) {
        expect(pool.stats()).toEqual({ hits: cap, misses: cap + 3, overflows: 3, size: cap, capacity: cap });
        // the pool kept exactly `cap` of the released objects and hands back only those
        const again = Array.from({ length: cap }, () => pool.acquire());
        expect(again.every((o) => held.includes(o))).toBe(true);
        expect(pool.stats().size).toBe(0);
      } else {
        expect(pool.stats()).toMatchObject({ overflows: 2 * cap + 3, size: 0 });
      }
    });

    it('keeps hits/misses/overflows/size exact over any sequence of operations', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 6 }), fc.array(fc.boolean(), { maxLength: 200 }), (capacity, ops) => {
          const { pool, created } = boxPool(factory, capacity);
          const cap = opts.pooling ? capacity : 0;
          const held: Box[] = [];
          const model = { hits: 0, misses: 0, overflows: 0, size: 0, capacity: cap };
          for (const acquire of ops) {
            if (acquire || held.length === 0) {
              held.push(pool.acquire());
              if (model.size > 0) {
                model.hits++;
                model.size--;
              } else model.misses++;
            } else {
              pool.release(held.pop()!);
              if (model.size === cap) model.overflows++;
              else model.size++;
            }
            expect(pool.stats()).toEqual(model);
          }
          expect(created()).toBe(model.misses);
          expect(new Set(held).size).toBe(held.length);
        }),
        { numRuns: 200 },
      );
    });

    it('hands back a RequestState indistinguishable from a fresh one (every own field reset)', () => {
      const pool = factory<RequestState>({ create: createRequestState, reset: resetRequestState, capacity: 2 });
      const ctx = pool.acquire();
      dirtyEveryField(ctx);
      pool.release(ctx);
      expectLikeFresh(ctx);
      const next = pool.acquire();
      expectLikeFresh(next);
      if (opts.pooling) expect(next).toBe(ctx);
    });
  });
}
