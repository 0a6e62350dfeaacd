/**
 * The drift guard. Interleaving spreads slow drift of the machine over every variant, but it cannot make a run
 * whose machine changed under it (another job started, the host throttled) into a fair comparison. A control
 * that should not change, the bare-server baseline (or, in a peers run without one, nginx), is compared between
 * its first and its last repetition; when it moved by more than the scenario's limit, the run keeps its numbers
 * and prints no verdict, and says why.
 */
import type { RunResult } from './results.js';
import { cpuUsPerRequest } from './summarize.js';
import type { VariantSpec } from './variants.js';

/** Default largest change of the control between its first and last repetition that still allows verdicts. */
export const DEFAULT_DRIFT_LIMIT = 0.1;

export interface DriftCheck {
  /** the variant watched */
  control: string;
  /** what was compared: req/s (as fast as possible), CPU µs per request (fixed rate), capacity (capacity mode) */
  metric: string;
  first: number;
  last: number;
  /** |last − first| ÷ first */
  change: number;
  limit: number;
  /** true: the run prints numbers but no verdicts */
  exceeded: boolean;
  /** one line for the report and the terminal */
  note: string;
}

/** The control: the scenario's if named, else the bare-server baseline, else nginx; null when the run has neither. */
export function driftControl(variants: Pick<VariantSpec, 'id'>[], named?: string): string | null {
  const ids = variants.map((v) => v.id);
  for (const id of [named, 'baseline', 'peer=nginx']) if (id !== undefined && ids.includes(id)) return id;
  return null;
}

/**
 * The per-run value the guard compares: req/s when the load runs as fast as possible, CPU µs per request at a
 * fixed rate (where req/s is the generator's, not the control's).
 */
export function driftMetric(fixedRate: boolean): { name: string; value(r: RunResult): number | null } {
  return fixedRate ? { name: 'CPU µs per request', value: cpuUsPerRequest } : { name: 'req/s', value: (r) => r.rps };
}

/**
 * Compares the control's first and last repetition (`values` in repetition order). Null with fewer than two
 * values: nothing to compare, and the report says so through the missing block.
 */
export function checkDrift(control: string, metric: string, values: number[], limit: number): DriftCheck | null {
  if (values.length < 2) return null;
  const first = values[0]!;
  const last = values.at(-1)!;
  // a control at 0 both times (no capacity at all) did not move; from 0 to anything it moved without bound
  const change = first > 0 ? Math.abs(last - first) / first : last === first ? 0 : Number.POSITIVE_INFINITY;
  const exceeded = !(change <= limit);
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const moved = `\`${control}\` ${metric} ${fmtValue(first)} in its first repetition, ${fmtValue(last)} in its last (${pct(change)} change, limit ${pct(limit)})`;
  return {
    control,
    metric,
    first,
    last,
    change,
    limit,
    exceeded,
    note: exceeded
      ? `no verdicts: the control drifted, ${moved}; the machine changed during the run, so differences between variants cannot be told from it. Re-run on a quieter machine.`
      : `control steady: ${moved}.`,
  };
}

function fmtValue(x: number): string {
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(2);
}

/** The drift check of a run: the control's per-repetition values of `metric`, in repetition order. */
export function driftOfRuns(runs: RunResult[], control: string | null, fixedRate: boolean, limit: number): DriftCheck | null {
  if (control === null) return null;
  const m = driftMetric(fixedRate);
  const values = runs
    .filter((r) => r.variant === control)
    .sort((a, b) => a.repetition - b.repetition)
    .map((r) => m.value(r));
  if (values.some((v) => v === null)) return null;
  return checkDrift(control, m.name, values as number[], limit);
}
