// Moved to core/contracts/pool.ts; kept until server.ts's imports move (core/http/pipeline.ts, core/metrics.ts,
// scripts/bench still import this path).
export type { ObjectPool, PoolFactory, PoolOptions, PoolStats } from './contracts/pool.js';
