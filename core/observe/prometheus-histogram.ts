import { BUCKET_COUNT, bucketValue } from '../base/histogram.js';
import type { DistributionExport } from '../contracts/metrics.js';

/**
 * The `le` bounds (seconds) of every latency histogram the gateway exports. Fixed, so series from every instance
 * and every version line up in `sum by (le) (rate(..._bucket[5m]))`.
 */
export const LE_BOUNDS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/**
 * For each bucket of the log-linear layout (core/base/histogram.ts), the first `le` slot its midpoint fits under
 * (LE_BOUNDS_S.length = +Inf only). A bound inside a log-linear bucket counts the whole bucket on one side, so a
 * sample within the layout's resolution (≤ 0.8 %) of a bound may be counted in the neighbouring `le`.
 */
const SLOT_OF_BUCKET: Uint8Array = (() => {
  const slots = new Uint8Array(BUCKET_COUNT);
  for (let i = 0; i < BUCKET_COUNT; i++) {
    const seconds = bucketValue(i) / 1000;
    let s = 0;
    while (s < LE_BOUNDS_S.length && seconds > LE_BOUNDS_S[s]!) s++;
    slots[i] = s;
  }
  return slots;
})();

/** Latency distributions folded onto LE_BOUNDS_S: what one `_bucket`/`_sum`/`_count` family renders. */
export class LatencyHistogram {
  /** non-cumulative counts per slot; the last slot is above the largest bound */
  readonly counts = new Float64Array(LE_BOUNDS_S.length + 1);
  sumSeconds = 0;

  /** Adds an all-time distribution (one worker's, one route's): counts must only ever grow between scrapes. */
  add(d: DistributionExport): void {
    const b = d.buckets;
    for (let i = 0; i + 1 < b.length; i += 2) this.counts[SLOT_OF_BUCKET[b[i]!] ?? LE_BOUNDS_S.length]! += b[i + 1]!;
    this.sumSeconds += d.sum / 1000;
  }
}

/** `name_bucket{labels,le=…}` (cumulative, as Prometheus wants), `name_sum` and `name_count`. */
export function histogramLines(name: string, labels: string, h: LatencyHistogram): string[] {
  const sep = labels === '' ? '' : `${labels},`;
  const lines: string[] = [];
  let running = 0;
  for (let s = 0; s < LE_BOUNDS_S.length; s++) {
    running += h.counts[s]!;
    lines.push(`${name}_bucket{${sep}le="${LE_BOUNDS_S[s]}"} ${running}`);
  }
  running += h.counts[LE_BOUNDS_S.length]!;
  lines.push(`${name}_bucket{${sep}le="+Inf"} ${running}`);
  const suffix = labels === '' ? '' : `{${labels}}`;
  lines.push(`${name}_sum${suffix} ${h.sumSeconds}`, `${name}_count${suffix} ${running}`);
  return lines;
}
