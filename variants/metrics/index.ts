import type { RecorderFactory } from '../../core/contracts/metrics.js';
import * as atomicBuckets from './atomic-buckets/index.js';
import * as hdr from './hdr/index.js';
import * as logLinear from './log-linear/index.js';
import * as native from './native/index.js';
import * as ring from './ring/index.js';

export const metricsVariants: Record<string, RecorderFactory> = {
  ring: ring.createRecorder,
  hdr: hdr.createRecorder,
  native: native.createRecorder,
  'atomic-buckets': () => atomicBuckets.createRecorder(),
  'log-linear': logLinear.createRecorder,
};

export const metricsAccuracy: Record<string, string> = {
  ring: ring.accuracy,
  hdr: hdr.accuracy,
  native: native.accuracy,
  'atomic-buckets': atomicBuckets.accuracy,
  'log-linear': logLinear.accuracy,
};

/**
 * log-linear: each gateway worker records on its own thread, so the plain single-writer histogram on the standard
 * layout gives the merge-ready export with no conversion and a bounded error over all samples (ring is cheaper to
 * record but only knows its last 4096 samples: its merged p99.9 was 12 % off on the bench's lognormal sample).
 * It has the cheapest record() of the accurate variants: ~11 ns against ~25 (native), ~52 (atomic-buckets: three or
 * more Atomics read-modify-writes per record, each a locked instruction) and ~70 (hdr), all with no
 * allocation (quick run on the shared 2-core box: `node dist/scripts/bench/metrics.js --quick`).
 * atomic-buckets is the one to use when several threads must share one histogram.
 */
export const DEFAULT_METRICS = 'log-linear';
