import type { PoolFactory } from '../../core/contracts/pool.js';
import { createPool as guarded } from './guarded/index.js';
import { createPool as none } from './none/index.js';
import { createPool as ring } from './ring/index.js';
import { createPool as stack } from './stack/index.js';

export const poolVariants: Record<string, PoolFactory> = { none, stack, ring, guarded };

/** stack: LIFO reuse of the most recently released (cache-warm) context with the least bookkeeping per operation. */
export const DEFAULT_POOL = 'stack';
