// Moved to core/contracts/metrics.ts; kept until server.ts's imports move (core/metrics.ts, core/histogram.ts
// and scripts/bench/metrics.ts import from here).
export { snapshotOf } from './contracts/metrics.js';
export type { DistributionExport, LatencyRecorder, LatencySnapshot, RecorderFactory } from './contracts/metrics.js';
