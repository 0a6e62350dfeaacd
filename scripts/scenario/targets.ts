/**
 * Ratio targets (e.g. issue 8's "gateway ≥ 1.5× fast-gateway", "p99 ≤ 1.2× the bare server's", issue 18's "own
 * engine ≥ 0.8× nginx's CPU efficiency"): each is judged on the ratio of medians over repetitions, with its
 * bootstrap CI so the report says whether the verdict is clear of the noise or only a point estimate.
 */
import type { TargetSpec } from '../../scenarios/schema.js';
import type { RunResult } from './results.js';
import { bootstrapRatioCI, type Interval } from './stats.js';
import { cpuUsPerRequest } from './summarize.js';

export interface TargetResult extends TargetSpec {
  /** "not run": one side has no runs (e.g. a peer skipped on this machine) */
  status: 'met' | 'missed' | 'not run';
  /** median(variant) ÷ median(reference), 95% bootstrap CI; null when not run */
  ratio: Interval | null;
  /** whether the whole CI is on the side of the verdict ("clear") or crosses the target ("straddles") */
  confidence: 'clear' | 'straddles' | null;
  note: string;
}

/** The per-run value a target compares; null when the run lacks it (no CPU sample of that process). */
function metricOf(r: RunResult, metric: TargetSpec['metric']): number | null {
  if (metric === 'cpu') return cpuUsPerRequest(r);
  return metric === 'throughput' ? r.rps : r.latencyMs.p99;
}

export function evaluateTargets(targets: TargetSpec[], runs: RunResult[], seed: number, skipped: Map<string, string>): TargetResult[] {
  return targets.map((t) => {
    const mineRuns = runs.filter((r) => r.variant === t.variant);
    const refRuns = runs.filter((r) => r.variant === t.reference);
    if (mineRuns.length === 0 || refRuns.length === 0) {
      const why = skipped.get(t.variant) ?? skipped.get(t.reference) ?? `no runs of ${mineRuns.length === 0 ? t.variant : t.reference}`;
      return { ...t, status: 'not run', ratio: null, confidence: null, note: why };
    }
    const mine = mineRuns.map((r) => metricOf(r, t.metric));
    const ref = refRuns.map((r) => metricOf(r, t.metric));
    if (mine.includes(null) || ref.includes(null)) {
      // a median over the runs that happen to have a sample would be a different statistic than the other side's
      const who = mine.includes(null) ? t.variant : t.reference;
      return { ...t, status: 'not run', ratio: null, confidence: null, note: `${who}: a run has no CPU sample of its processes` };
    }
    // CPU efficiency is reference CPU per request ÷ the variant's: higher is better, like throughput
    const ratio =
      t.metric === 'cpu' ? bootstrapRatioCI(ref as number[], mine as number[], { seed }) : bootstrapRatioCI(mine as number[], ref as number[], { seed });
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
