import { describe, expect, it } from 'vitest';
import { RequestState, createRequestState } from '../../core/data/request-state.js';
import { GuardedPool } from '../../variants/pool/guarded/index.js';
import { DEFAULT_POOL, poolVariants } from '../../variants/pool/index.js';
import { dirtyEveryField, expectLikeFresh, poolConformance } from './common.case.js';

for (const [name, factory] of Object.entries(poolVariants)) {
  poolConformance(name, factory, { pooling: name !== 'none' });
}

describe('pool variant registry', () => {
  it('has the required variants and a valid default', () => {
    expect(Object.keys(poolVariants)).toEqual(expect.arrayContaining(['none', 'stack', 'ring']));
    expect(Object.keys(poolVariants).length).toBeGreaterThanOrEqual(4);
    expect(poolVariants[DEFAULT_POOL]).toBeTypeOf('function');
  });
});

describe('variant-specific ordering', () => {
  const opts = <T>(create: () => T) => ({ create, reset: () => {}, capacity: 4 });

  it('stack is LIFO', () => {
    let n = 0;
    const pool = poolVariants.stack!(opts(() => ({ n: n++ })));
    const a = pool.acquire();
    const b = pool.acquire();
    pool.release(a);
    pool.release(b);
    expect(pool.acquire()).toBe(b);
    expect(pool.acquire()).toBe(a);
  });

  it('ring is FIFO and wraps its cursors', () => {
    let n = 0;
    const pool = poolVariants.ring!(opts(() => ({ n: n++ })));
    const objs = Array.from({ length: 4 }, () => pool.acquire());
    // push the cursors around the ring several times
    for (let round = 0; round < 3; round++) {
      for (const o of objs) pool.release(o);
      for (const o of objs) expect(pool.acquire()).toBe(o);
    }
    const o0 = objs[0]!;
    const o2 = objs[2]!;
    pool.release(o2);
    pool.release(o0);
    expect(pool.acquire()).toBe(o2);
    expect(pool.acquire()).toBe(o0);
  });
});

describe('guarded pool', () => {
  it('drops a second release of a pooled object instead of pooling it twice', () => {
    let n = 0;
    const pool = new GuardedPool({ create: () => ({ n: n++ }), reset: () => {}, capacity: 4 });
    const a = pool.acquire();
    pool.release(a);
    pool.release(a);
    expect(pool.doubleReleases).toBe(1);
    expect(pool.stats()).toEqual({ hits: 0, misses: 1, overflows: 0, size: 1, capacity: 4 });
    const x = pool.acquire();
    const y = pool.acquire();
    expect(x).toBe(a);
    expect(y).not.toBe(a);
    // once handed out again, releasing it is legitimate
    pool.release(x);
    expect(pool.doubleReleases).toBe(1);
    expect(pool.stats().size).toBe(1);
  });

  it('a plain stack would hand the same object to two callers after a double release', () => {
    const pool = poolVariants.stack!(opts());
    const a = pool.acquire();
    pool.release(a);
    pool.release(a);
    expect(pool.acquire()).toBe(pool.acquire());
    function opts() {
      return { create: () => ({}), reset: () => {}, capacity: 4 };
    }
  });
});

describe('the RequestState reset check itself', () => {
  it('fails for a reset that forgets a field', () => {
    const pool = poolVariants.stack!<RequestState>({
      create: createRequestState,
      reset: (ctx) => {
        const keepIdentity = ctx.identity;
        ctx.reset();
        ctx.identity = keepIdentity; // the bug: identity survives into the next request
      },
      capacity: 1,
    });
    const ctx = pool.acquire();
    dirtyEveryField(ctx);
    pool.release(ctx);
    expect(() => expectLikeFresh(pool.acquire())).toThrow(/identity/);
  });

  it('fails for a field added after construction that reset() does not know', () => {
    const ctx = new RequestState();
    ctx.reset();
    (ctx as unknown as Record<string, unknown>).extra = 1;
    expect(() => expectLikeFresh(ctx)).toThrow();
  });
});
