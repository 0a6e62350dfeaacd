/**
 * The README's "how long each scenario takes" table, computed from each shipped scenario's own settings with the
 * runner's ETA function (eta.ts). `npm run scenario -- --eta-table` prints it; test/scenario/eta.test.ts checks
 * that the README quotes exactly this.
 */
import { capacitySpec, probeSeconds, type CapacitySpec } from './capacity.js';
import { estimateSeconds, formatDuration, type EtaPlan } from './eta.js';
import { isH2LoadScenario, loadH2Scenario } from './h2load.js';
import { loadScenario, scenarioNames } from './load-scenario.js';
import { expandMatrix } from './variants.js';

export interface ScenarioEta {
  name: string;
  plan: EtaPlan;
  seconds: number;
}

/** The ETA of one scenario at its own settings (every variant, as if every peer were installed). */
export async function scenarioEta(name: string): Promise<ScenarioEta> {
  if (isH2LoadScenario(name)) {
    const s = loadH2Scenario(name).scenario;
    const plan: EtaPlan = { variants: s.variants.length, repetitions: s.repetitions, warmupS: s.warmupS, durationS: s.load.durationS };
    return { name, plan, seconds: estimateSeconds(plan) };
  }
  const s = loadScenario(name).scenario;
  const variants = await expandMatrix(s);
  const capacity = s.capacity !== undefined ? capacitySpec(s.capacity) : null;
  const plan: EtaPlan = {
    variants: variants.length,
    repetitions: s.repetitions,
    warmupS: s.warmupS,
    durationS: s.load.amount !== undefined ? undefined : s.load.durationS,
    calibration: capacity === null && s.load.rate === undefined && s.load.rateOfMax !== undefined,
    ...(capacity !== null ? { capacity: { probes: capacity.maxProbes, probeS: probeSeconds(capacity) } } : {}),
  };
  return { name, plan, seconds: estimateSeconds(plan) };
}

export async function shippedScenarioEtas(): Promise<ScenarioEta[]> {
  return Promise.all(scenarioNames().map((n) => scenarioEta(n)));
}

/** Markdown rows: | scenario | variants × repetitions | per run | about | */
export function etaTableMarkdown(etas: ScenarioEta[]): string {
  const rows = [
    '| scenario | variants × repetitions | per run (warmup + measured) | takes about |',
    '| --- | ---: | ---: | ---: |',
    ...etas.map((e) => {
      const p = e.plan;
      // capacity: a "run" is one search of at most `probes` probes (probe warm-up + window + start-up each)
      const run = p.capacity !== undefined ? `${p.warmupS} + ≤ ${p.capacity.probes} × ${p.capacity.probeS} s` : `${p.warmupS} + ${p.durationS ?? 'n'} s`;
      const runs = `${p.variants} × ${p.repetitions}${p.calibration === true ? ' + 1 calibration' : ''}${p.capacity !== undefined ? ' searches' : ''}`;
      return `| \`${e.name}\` | ${runs} | ${run} | ${formatDuration(e.seconds)} |`;
    }),
  ];
  return rows.join('\n');
}

export interface EtaOverrides {
  repetitions?: number;
  warmupS?: number;
  durationS?: number;
  /** --only was given: the variant count is the scenario's full matrix, an upper bound */
  narrowed?: boolean;
  /** --capacity (and its options): every run is a capacity search */
  capacity?: Partial<CapacitySpec>;
}

/** One line: `routers: 11 variants × 5 repetitions × (3 s warmup + 10 s) + start-up ≈ 13 min 22 s`. */
export async function etaLine(name: string, overrides: EtaOverrides = {}): Promise<string> {
  const e = await scenarioEta(name);
  const s = isH2LoadScenario(name) ? null : loadScenario(name).scenario;
  const capacity = overrides.capacity !== undefined || s?.capacity !== undefined ? capacitySpec(s?.capacity, overrides.capacity) : null;
  const plan: EtaPlan = {
    ...e.plan,
    ...(capacity !== null ? { capacity: { probes: capacity.maxProbes, probeS: probeSeconds(capacity) }, calibration: false } : {}),
    ...(overrides.repetitions !== undefined ? { repetitions: overrides.repetitions } : {}),
    ...(overrides.warmupS !== undefined ? { warmupS: overrides.warmupS } : {}),
    ...(overrides.durationS !== undefined ? { durationS: overrides.durationS } : {}),
  };
  const each = plan.capacity !== undefined ? `≤ ${plan.capacity.probes} probes × ${plan.capacity.probeS} s` : `${plan.durationS ?? '?'} s`;
  return (
    `${name}: ${plan.variants} variants × ${plan.repetitions} repetitions × (${plan.warmupS} s warmup + ${each}) ` +
    `+ start-up ≈ ${formatDuration(estimateSeconds(plan))}${overrides.narrowed === true ? ' (before --only narrows the variants)' : ''}`
  );
}
