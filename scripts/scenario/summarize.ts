import type { RunResult, VariantComparison, VariantSummary } from './results.js';
import { bootstrapMedianCI, compare, median } from './stats.js';

function medianOrNull(values: Array<number | null | undefined>): number | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length === 0 ? null : median(v);
}

/** Gateway CPU µs per answered request in one run, or null when the run has no CPU sample or no requests. */
export function cpuUsPerRequest(r: RunResult): number | null {
  const g = r.gateway;
  if (g === null || r.requests <= 0) return null;
  // older results carry only cpuPct: CPU share × the run's duration is the same time to within the sampler's edges
  const cpuS = g.cpuS ?? (g.cpuPct / 100) * r.durationS;
  return Number.isFinite(cpuS) ? (cpuS * 1e6) / r.requests : null;
}

function cpuSamples(runs: RunResult[]): number[] {
  return runs.map(cpuUsPerRequest).filter((x): x is number => x !== null);
}

export function summarizeVariant(variant: string, runs: RunResult[], seed: number): VariantSummary {
  const rps = runs.map((r) => r.rps);
  const cpu = medianOrNull(runs.map((r) => r.gateway?.cpuPct));
  const rpsMed = median(rps);
  return {
    variant,
    runs: runs.length,
    rps: bootstrapMedianCI(rps, { seed }),
    p50Ms: bootstrapMedianCI(
      runs.map((r) => r.latencyMs.p50),
      { seed },
    ),
    p99Ms: bootstrapMedianCI(
      runs.map((r) => r.latencyMs.p99),
      { seed },
    ),
    p90Ms: median(runs.map((r) => r.latencyMs.p90)),
    p999Ms: median(runs.map((r) => r.latencyMs.p999)),
    maxMs: median(runs.map((r) => r.latencyMs.max)),
    gatewayCpuPct: cpu,
    rssMaxMB: medianOrNull(runs.map((r) => r.gateway?.rssMaxMB)),
    gcPauseMsPerS: medianOrNull(runs.map((r) => r.diagnostics?.gcPauseMsPerS)),
    eventLoopDelayP99Ms: medianOrNull(runs.map((r) => r.diagnostics?.eventLoopDelayP99Ms)),
    loaderCpuPct: median(runs.map((r) => r.loader.cpuPct)),
    loaderBoundRuns: runs.filter((r) => r.loader.bound).length,
    errors: runs.reduce((s, r) => s + r.errors, 0),
    timeouts: runs.reduce((s, r) => s + r.timeouts, 0),
    non2xx: runs.reduce((s, r) => s + r.non2xx, 0),
    rpsPerCore: cpu !== null && cpu > 0 ? rpsMed / (cpu / 100) : null,
    cpuUsPerRequest: cpuSamples(runs).length === runs.length ? bootstrapMedianCI(cpuSamples(runs), { seed }) : null,
  };
}

/** Per-variant summaries (in matrix order: never sorted by speed) and comparisons against the reference. */
export function summarize(
  variantIds: string[],
  runs: RunResult[],
  baselineVariant: string | null,
  seed: number,
): { baselineVariant: string | null; variants: VariantSummary[]; comparisons: VariantComparison[] } {
  const byVariant = new Map<string, RunResult[]>();
  for (const id of variantIds) byVariant.set(id, []);
  for (const r of runs) byVariant.get(r.variant)?.push(r);
  const variants = variantIds.filter((id) => byVariant.get(id)!.length > 0).map((id) => summarizeVariant(id, byVariant.get(id)!, seed));
  const comparisons: VariantComparison[] = [];
  const refRuns = baselineVariant !== null ? byVariant.get(baselineVariant) : undefined;
  if (baselineVariant !== null && refRuns !== undefined && refRuns.length > 0) {
    for (const id of variantIds) {
      if (id === baselineVariant || byVariant.get(id)!.length === 0) continue;
      const mine = byVariant.get(id)!;
      comparisons.push({
        variant: id,
        reference: baselineVariant,
        throughput: compare(
          mine.map((r) => r.rps),
          refRuns.map((r) => r.rps),
          true,
          { seed },
        ),
        p99: compare(
          mine.map((r) => r.latencyMs.p99),
          refRuns.map((r) => r.latencyMs.p99),
          false,
          { seed },
        ),
        ...(cpuSamples(mine).length === mine.length && cpuSamples(refRuns).length === refRuns.length
          ? { cpuPerRequest: compare(cpuSamples(mine), cpuSamples(refRuns), false, { seed }) }
          : {}),
      });
    }
  }
  return { baselineVariant: refRuns !== undefined && refRuns.length > 0 ? baselineVariant : null, variants, comparisons };
}
