/**
 * Capacity at a latency objective: the highest fixed request rate (open loop, latency from each request's due
 * time) at which a contestant's p99 stays within the objective over a measured window. Operators size fleets with
 * this number; throughput at full speed says nothing about the latency that came with it.
 *
 * The search, per contestant and repetition, on one running process:
 *   1. bracket: probe the start rate, then double while probes pass (halve while they fail) until one rate
 *      passes and the next fails (or the ceiling / floor is reached);
 *   2. bisect: probe the geometric middle of [highest pass, lowest fail] until hi ÷ lo ≤ 1 + tolerance.
 * The capacity is the highest rate that passed. Since the true knee lies in [lo, hi], the reported capacity is
 * within the tolerance of it (lo ≥ knee ÷ (1 + tolerance)), on the probes' own evidence; a probe on a noisy
 * machine can fail by accident, which is what repetitions, interleaving and the CI over them are for.
 * A probe passes when its p99 (the spec's percentile) is within the objective, nothing failed (errors, timeouts,
 * 5xx), the generator did not give up (it stops once a request is giveUpMs late: past capacity) and the achieved
 * rate is at least 95% of the offered one.
 */
import type { RunResult } from './results.js';
import { bootstrapMedianCI, compare, median, type Comparison, type Interval } from './stats.js';

export interface CapacitySpec {
  /** latency objective, ms */
  objectiveMs: number;
  /** the percentile held to the objective: 99 (p99) or 99.9 */
  percentile: 99 | 99.9;
  /** measured seconds per probe */
  windowS: number;
  /** seconds at the probe's rate before its window (discarded): queues and JIT settle at the new rate */
  probeWarmupS: number;
  /** first rate probed, req/s */
  startRate: number;
  /** no probe above this rate (bounds the requests a probe sends); a pass at it reports "at least" */
  maxRate: number;
  /** no probe below this rate; a fail at it reports capacity 0 */
  minRate: number;
  /** bisect until highest pass × (1 + tolerance) ≥ lowest fail */
  tolerance: number;
  /** probes per search at most (bounds the time of one search) */
  maxProbes: number;
}

export const DEFAULT_CAPACITY: CapacitySpec = {
  objectiveMs: 5,
  percentile: 99,
  windowS: 5,
  probeWarmupS: 1,
  startRate: 2000,
  maxRate: 100_000,
  minRate: 50,
  tolerance: 0.05,
  maxProbes: 12,
};

/** What a probe measured at one rate. */
export interface ProbeMeasure {
  rate: number;
  /** the measured window, as the runner records every run */
  run: RunResult;
  /** the generator stopped sending: the contestant fell behind the rate */
  abandoned: boolean;
}

export interface Probe {
  rate: number;
  pass: boolean;
  /** why it failed (objective, errors, gave up, behind the rate); absent when it passed */
  why?: string;
  achievedRps: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  /** contestant CPU µs per answered request in the window, null without a CPU sample */
  cpuUsPerRequest: number | null;
}

export interface CapacitySearch {
  variant: string;
  repetition: number;
  /** position in the interleaved schedule */
  order: number;
  /** highest rate that passed (0: none did, down to minRate) */
  capacity: number;
  /** the lowest rate that failed (null: every probe passed, up to maxRate) */
  lowestFail: number | null;
  /** hi ÷ lo ≤ 1 + tolerance at the end (false: maxProbes ran out, or capped at maxRate / minRate) */
  converged: boolean;
  /** in the order they ran */
  probes: Probe[];
}

/** Pass / fail of one probe against the spec. */
export function judgeProbe(spec: CapacitySpec, m: ProbeMeasure): Probe {
  const r = m.run;
  const tail = spec.percentile === 99 ? r.latencyMs.p99 : r.latencyMs.p999;
  const probe: Omit<Probe, 'pass'> = {
    rate: m.rate,
    achievedRps: r.rps,
    p50Ms: r.latencyMs.p50,
    p99Ms: r.latencyMs.p99,
    p999Ms: r.latencyMs.p999,
    cpuUsPerRequest: r.gateway !== null && r.gateway.cpuS !== undefined && r.requests > 0 ? (r.gateway.cpuS * 1e6) / r.requests : null,
  };
  const why: string[] = [];
  if (m.abandoned) why.push('fell behind the rate (the generator gave up)');
  if (r.errors + r.timeouts > 0) why.push(`${r.errors} errors, ${r.timeouts} timeouts`);
  if (r.status['5xx'] > 0) why.push(`${r.status['5xx']} answers were 5xx`);
  if (!m.abandoned && r.rps < m.rate * 0.95) why.push(`achieved ${Math.round(r.rps)} req/s of ${m.rate}`);
  if (r.requests === 0) why.push('no answer');
  if (tail > spec.objectiveMs) why.push(`p${spec.percentile} ${tail.toFixed(2)} ms > ${spec.objectiveMs} ms`);
  return why.length === 0 ? { ...probe, pass: true } : { ...probe, pass: false, why: why.join('; ') };
}

/** Rates are probed as whole requests per second. */
function roundRate(x: number): number {
  return Math.max(1, Math.round(x));
}

/**
 * The bracket-then-bisect search. `probe(rate)` measures one window at that rate on the running contestant.
 * Deterministic given the probes' answers, so it is tested against a synthetic knee.
 */
export async function searchCapacity(
  spec: CapacitySpec,
  probe: (rate: number) => Promise<Probe>,
): Promise<Omit<CapacitySearch, 'variant' | 'repetition' | 'order'>> {
  const probes: Probe[] = [];
  const run = async (rate: number): Promise<boolean> => {
    const p = await probe(rate);
    probes.push(p);
    return p.pass;
  };
  let lo = 0; // highest pass
  let hi: number | null = null; // lowest fail
  let rate = roundRate(Math.min(spec.maxRate, Math.max(spec.minRate, spec.startRate)));
  // 1. bracket
  if (await run(rate)) {
    lo = rate;
    while (hi === null && lo < spec.maxRate && probes.length < spec.maxProbes) {
      rate = roundRate(Math.min(spec.maxRate, lo * 2));
      if (await run(rate)) lo = rate;
      else hi = rate;
    }
  } else {
    hi = rate;
    while (lo === 0 && hi > spec.minRate && probes.length < spec.maxProbes) {
      rate = roundRate(Math.max(spec.minRate, hi / 2));
      if (await run(rate)) lo = rate;
      else hi = rate;
    }
  }
  // 2. bisect (geometric middle: the tolerance is relative)
  const narrow = () => lo > 0 && hi !== null && hi <= lo * (1 + spec.tolerance);
  while (lo > 0 && hi !== null && !narrow() && probes.length < spec.maxProbes) {
    const mid = roundRate(Math.sqrt(lo * hi));
    if (mid <= lo || mid >= hi) break;
    if (await run(mid)) lo = mid;
    else hi = mid;
  }
  return { capacity: lo, lowestFail: hi, converged: narrow() || (lo > 0 && hi !== null && hi - lo <= 1), probes };
}

/** Seconds one probe takes: its warm-up and window, plus the generator's start and the sampler's edges. */
export const PROBE_OVERHEAD_S = 0.5;

export function probeSeconds(spec: CapacitySpec): number {
  return spec.probeWarmupS + spec.windowS + PROBE_OVERHEAD_S;
}

/**
 * How late (ms) a request may fall before the generator gives up on a probe: late enough that the probe has
 * surely failed (requests due over the last giveUp ms are all unsent, so at least giveUp − objective of them are
 * over the objective; past (100 − percentile)% of the window the percentile is over it), and never under 1 s.
 */
export function giveUpMs(spec: CapacitySpec): number {
  const surelyFailed = spec.objectiveMs + ((100 - spec.percentile) / 100) * spec.windowS * 1000;
  return Math.max(1000, Math.ceil(2 * surelyFailed));
}

/** The spec a run uses: the defaults, the scenario's `capacity` block, then command-line overrides. */
export function capacitySpec(...layers: Array<Partial<CapacitySpec> | undefined>): CapacitySpec {
  const spec = Object.assign({}, DEFAULT_CAPACITY, ...layers.filter((l) => l !== undefined)) as CapacitySpec;
  const problems: string[] = [];
  if (!(spec.objectiveMs > 0)) problems.push('objectiveMs must be > 0');
  if (!(spec.windowS > 0)) problems.push('windowS must be > 0');
  if (!(spec.probeWarmupS >= 0)) problems.push('probeWarmupS must be >= 0');
  if (!(spec.minRate > 0 && spec.minRate <= spec.startRate && spec.startRate <= spec.maxRate)) problems.push('need 0 < minRate <= startRate <= maxRate');
  if (!(spec.tolerance > 0)) problems.push('tolerance must be > 0');
  if (!(Number.isInteger(spec.maxProbes) && spec.maxProbes >= 2)) problems.push('maxProbes must be an integer >= 2');
  if (problems.length > 0) throw new Error(`capacity: ${problems.join('; ')}`);
  return spec;
}

export interface CapacityVariantSummary {
  variant: string;
  searches: number;
  /** median capacity over repetitions, 95% bootstrap CI */
  capacity: Interval;
  /** searches whose bracket closed within the tolerance */
  converged: number;
  /** median over repetitions of the contestant's CPU µs per request in the probe at its capacity */
  cpuUsPerRequestAtCapacity: number | null;
  /** median over repetitions of p99 in the probe at its capacity */
  p99AtCapacityMs: number | null;
}

export interface CapacityResults {
  spec: CapacitySpec;
  searches: CapacitySearch[];
  summary: CapacityVariantSummary[];
  /** capacity ratio to the reference (higher is better), with its verdict */
  comparisons: Array<{ variant: string; reference: string; capacity: Comparison }>;
}

/** The probe that set a search's capacity (the highest passing rate), if any passed. */
export function capacityProbe(s: Pick<CapacitySearch, 'capacity' | 'probes'>): Probe | undefined {
  return s.probes.find((p) => p.pass && p.rate === s.capacity);
}

function medianOf(values: Array<number | null | undefined>): number | null {
  const v = values.filter((x): x is number => typeof x === 'number');
  return v.length === 0 ? null : median(v);
}

export function summarizeCapacity(spec: CapacitySpec, ids: string[], searches: CapacitySearch[], reference: string | null, seed: number): CapacityResults {
  const of = (id: string) => searches.filter((s) => s.variant === id).sort((a, b) => a.repetition - b.repetition);
  const summary = ids
    .filter((id) => of(id).length > 0)
    .map((id) => {
      const mine = of(id);
      return {
        variant: id,
        searches: mine.length,
        capacity: bootstrapMedianCI(
          mine.map((s) => s.capacity),
          { seed },
        ),
        converged: mine.filter((s) => s.converged).length,
        cpuUsPerRequestAtCapacity: medianOf(mine.map((s) => capacityProbe(s)?.cpuUsPerRequest)),
        p99AtCapacityMs: medianOf(mine.map((s) => capacityProbe(s)?.p99Ms)),
      };
    });
  const comparisons: CapacityResults['comparisons'] = [];
  const ref = reference !== null ? of(reference) : [];
  if (reference !== null && ref.length > 0 && median(ref.map((s) => s.capacity)) > 0) {
    for (const id of ids) {
      if (id === reference || of(id).length === 0) continue;
      comparisons.push({
        variant: id,
        reference,
        capacity: compare(
          of(id).map((s) => s.capacity),
          ref.map((s) => s.capacity),
          true,
          { seed },
        ),
      });
    }
  }
  return { spec, searches, summary, comparisons };
}
