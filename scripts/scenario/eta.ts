/**
 * How long a scenario run takes: the runner prints it before starting and updates it as runs finish; the README's
 * "how long each scenario takes" table is computed with the same function (test/scenario/eta.test.ts checks it).
 */

/** Once per scenario: build checks, request cycle, load generator and upstream stub start-up, report rendering. */
export const STARTUP_S = 4;
/** Per run on top of warmup + measured time: start the variant, wait until ready, answer check, stop it. */
export const PER_RUN_OVERHEAD_S = 1.5;
/** Measured time assumed for a run bounded by a request count instead of a duration. */
export const AMOUNT_RUN_S = 5;

export interface EtaPlan {
  variants: number;
  repetitions: number;
  warmupS: number;
  /** measured seconds per run (undefined when runs are bounded by a request count) */
  durationS: number | undefined;
  /** a rateOfMax scenario first runs one full-speed calibration run */
  calibration?: boolean;
  /** capacity mode: each "run" is a search of at most `probes` probes of `probeS` seconds each */
  capacity?: { probes: number; probeS: number };
}

export function runSeconds(plan: Pick<EtaPlan, 'warmupS' | 'durationS' | 'capacity'>): number {
  const measured = plan.capacity !== undefined ? plan.capacity.probes * plan.capacity.probeS : (plan.durationS ?? AMOUNT_RUN_S);
  return plan.warmupS + measured + PER_RUN_OVERHEAD_S;
}

/** Seconds for the whole scenario: repetitions × variants × (warmup + duration + overhead) + start-up. */
export function estimateSeconds(plan: EtaPlan): number {
  const runs = plan.variants * plan.repetitions + (plan.calibration === true ? 1 : 0);
  return STARTUP_S + runs * runSeconds(plan);
}

/**
 * Remaining seconds once `done` of `total` runs finished in `elapsedS` (since the first run started): the planned
 * per-run time until a run finished, then the measured average, which absorbs this machine's start-up overhead.
 */
export function remainingSeconds(plan: EtaPlan, done: number, total: number, elapsedS: number): number {
  const perRun = done > 0 ? elapsedS / done : runSeconds(plan);
  return Math.max(0, total - done) * perRun;
}

/** 45 s, 3 min 20 s, 1 h 05 min */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 ? `${m} min` : `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}
