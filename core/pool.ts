// Moved to core/contracts/pool.ts; kept until server.ts's imports move (core/server.ts, core/http/pipeline.ts,
// core/metrics.ts and scripts/bench/pool.ts import from here).
export type { ObjectPool, PoolFactory, PoolOptions, PoolStats } from './contracts/pool.js';
