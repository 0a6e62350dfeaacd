import { LogLinearHistogram, RELATIVE_ERROR } from '../../../core/base/histogram.js';
import type { LatencyRecorder } from '../../../core/contracts/metrics.js';

/**
 * The standard layout itself as a single-writer recorder: record() is a few float adds plus one integer bucket
 * computation, with no conversion step at export time. The right choice when each worker records on its own thread
 * (the gateway's case) and ships exportDistribution() to the orchestrator.
 */
export const accuracy = `≤ ${(RELATIVE_ERROR * 100).toFixed(2)}% relative above 64 µs, ≤ 0.5 µs absolute below (log-linear, 64 sub-buckets per power of two); count/errors/min/max/mean exact`;

export function createRecorder(): LatencyRecorder {
  return new LogLinearHistogram();
}
