/**
 * Ratio targets (e.g. issue 8's "gateway ≥ 1.5× fast-gateway", "p99 ≤ 1.2× the bare server's"): each is judged on
 * the ratio of medians over repetitions, with its bootstrap CI so the report says whether the verdict is clear
 * of the noise or only a point estimate.
 */
import type { TargetSpec } from '../../scenarios/schema.js';
import type { RunResult } from './results.js';
import { bootstrapRatioCI, type Interval } from './stats.js';

export interface TargetResult extends TargetSpec {
  /** "not run": one side has no runs (e.g. a peer skipped on this machine) */
  status: 'met' | 'missed' | 'not run';
  /** median(variant) ÷ median(reference), 95% bootstrap CI; null when not run */
  ratio: Interval | null;
  /** whether the whole CI is on the side of the verdict ("clear") or crosses the target ("straddles") */
  confidence: 'clear' | 'straddles' | null;
  note: string;
}

function metricOf(r: RunResult, metric: TargetSpec['metric']): number {
  return metric === 'throughput' ? r.rps : r.latencyMs.p99;
}

export function evaluateTargets(targets: TargetSpec[], runs: RunResult[], seed: number, skipped: Map<string, string>): TargetResult[] {
  return targets.map((t) => {
    const mine = runs.filter((r) => r.variant === t.variant).map((r) => metricOf(r, t.metric));
    const ref = runs.filter((r) => r.variant === t.reference).map((r) => metricOf(r, t.metric));
    if (mine.length === 0 || ref.length === 0) {
      const why = skipped.get(t.variant) ?? skipped.get(t.reference) ?? `no runs of ${mine.length === 0 ? t.variant : t.reference}`;
      return { ...t, status: 'not run', ratio: null, confidence: null, note: why };
    }
    const ratio = bootstrapRatioCI(mine, ref, { seed });
    const ok = (x: number) => (t.min !== undefined ? x >= t.min : x <= t.max!);
    const met = ok(ratio.estimate);
    const clear = ok(ratio.lo) === met && ok(ratio.hi) === met;
    const single = mine.length < 2 || ref.length < 2;
    return {
      ...t,
      status: met ? 'met' : 'missed',
      ratio,
      confidence: single ? null : clear ? 'clear' : 'straddles',
      note: single
        ? 'fewer than 2 repetitions: point estimate only'
        : clear
          ? '95% CI entirely on this side of the target'
          : '95% CI crosses the target: not decided beyond the noise',
    };
  });
}

/** "≥ 1.5×" / "≤ 1.2×" */
export function targetBound(t: TargetSpec): string {
  return t.min !== undefined ? `≥ ${t.min}×` : `≤ ${t.max}×`;
}
