import AjvModule from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { Scenario } from '../../scenarios/schema.js';
import type { AnswerCheck } from './answer-check.js';
import type { CapacityResults } from './capacity.js';
import type { Diagnostics } from './diagnostics.js';
import type { DriftCheck } from './drift.js';
import type { ProcessUsage } from './proc-sampler.js';
import { BOOTSTRAP_ITERATIONS, CONFIDENCE_LEVEL, MIN_SAMPLES_FOR_CI, type Comparison, type Interval } from './stats.js';
import type { TargetResult } from './targets.js';
import type { VariantSpec } from './variants.js';

/** Where a fixed-rate scenario's rate came from. */
export type Calibration =
  { source: 'option'; rate: number } | { source: 'rateOfMax'; variant: string; maxRps: number; fraction: number; rate: number; loaderBound: boolean };

const Ajv = AjvModule.default ?? AjvModule;
// CommonJS under NodeNext: the callable plugin is the namespace's default.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (ajv: InstanceType<typeof Ajv>) => void;

export interface RunResult {
  variant: string;
  repetition: number;
  /** position in the interleaved schedule (0-based) */
  order: number;
  startedAt: string;
  durationS: number;
  requests: number;
  rps: number;
  bytesPerS: number;
  latencyMs: { mean: number; p50: number; p90: number; p99: number; p999: number; max: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  status: { '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number };
  gateway: ProcessUsage | null;
  diagnostics: Diagnostics | null;
  loader: { cpuPct: number; bound: boolean };
  warnings: string[];
}

export interface VariantSummary {
  variant: string;
  runs: number;
  rps: Interval;
  p50Ms: Interval;
  p99Ms: Interval;
  /** medians over repetitions */
  p90Ms: number;
  p999Ms: number;
  maxMs: number;
  gatewayCpuPct: number | null;
  rssMaxMB: number | null;
  gcPauseMsPerS: number | null;
  eventLoopDelayP99Ms: number | null;
  loaderCpuPct: number;
  loaderBoundRuns: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** throughput per gateway CPU-second: req/s ÷ (cpu%/100) */
  rpsPerCore: number | null;
  /**
   * gateway process-tree CPU µs per answered request, per run (CPU time over the measured window ÷ requests),
   * median and CI over repetitions: on a shared host far steadier than req/s; null without CPU samples
   */
  cpuUsPerRequest?: Interval | null;
}

export interface VariantComparison {
  variant: string;
  reference: string;
  throughput: Comparison;
  p99: Comparison;
  /** CPU µs per request, variant ÷ reference (< 1: less CPU per request); absent when either side lacks CPU samples */
  cpuPerRequest?: Comparison;
}

export interface Environment {
  node: string;
  v8: string;
  platform: string;
  arch: string;
  /** `uname -sr`, e.g. "Linux 6.1.0-18-amd64" (absent in reports written before it was recorded) */
  kernel?: string;
  cpuModel: string;
  /** cpufreq scaling governor(s) of the CPUs, null when the machine does not expose them (absent in older reports) */
  cpuGovernor?: string | null;
  cores: number;
  totalMemMB: number;
  loadavgBefore: number[];
  loadavgAfter: number[];
  gitCommit: string | null;
  gitDirty: boolean | null;
  pinning: { taskset: boolean; gatewayCpus: number[]; loaderCpus: number[]; note: string };
}

/**
 * What every `{ estimate, lo, hi }` in results.json means, stated in the file itself so a reader of the JSON alone
 * (no report, no source) can interpret it.
 */
export interface StatisticsInfo {
  /** the per-variant point estimate: the median over repetitions of each run's value */
  statistic: 'median';
  over: 'repetitions';
  interval: {
    method: 'percentile bootstrap';
    level: number;
    resamples: number;
    seed: number;
    /** with fewer samples than this, lo = hi = estimate and there is no interval ("n=1, no CI") */
    minSamples: number;
  };
  ratio: {
    /** comparisons: median(variant) ÷ median(reference); both groups resampled independently */
    statistic: 'ratio of medians';
    method: 'percentile bootstrap';
    level: number;
  };
  fields: Record<'estimate' | 'lo' | 'hi', string>;
  verdict: string;
}

export function statisticsInfo(seed: number): StatisticsInfo {
  const pct = `${Math.round(CONFIDENCE_LEVEL * 100)}%`;
  return {
    statistic: 'median',
    over: 'repetitions',
    interval: { method: 'percentile bootstrap', level: CONFIDENCE_LEVEL, resamples: BOOTSTRAP_ITERATIONS, seed, minSamples: MIN_SAMPLES_FOR_CI },
    ratio: { statistic: 'ratio of medians', method: 'percentile bootstrap', level: CONFIDENCE_LEVEL },
    fields: {
      estimate: 'median over the repetitions of the per-run value (for a ratio: median of the variant ÷ median of the reference)',
      lo: `lower bound of the ${pct} percentile-bootstrap confidence interval of that median (equal to estimate when runs < ${MIN_SAMPLES_FOR_CI})`,
      hi: `upper bound of the ${pct} percentile-bootstrap confidence interval of that median (equal to estimate when runs < ${MIN_SAMPLES_FOR_CI})`,
    },
    verdict:
      'faster/slower only when the ratio CI excludes 1 AND the two variants\' own median CIs do not overlap; otherwise "no difference"; ' +
      `no verdict with fewer than ${MIN_SAMPLES_FOR_CI} repetitions, nor when \`drift.exceeded\` (the control moved beyond \`drift.limit\` between its first and last repetition: the verdict fields are then not to be read)`,
  };
}

/** The share of the request cycle whose correct answer is not 2xx (e.g. the mix's deliberate misses → 404). */
export interface TrafficInfo {
  /** requests in the replayed cycle */
  cycle: number;
  /** expected share of responses per non-2xx status code, e.g. { "404": 0.1 } */
  expectedStatusShare: Record<string, number>;
}

export interface Results {
  schemaVersion: 1;
  scenario: { name: string; description: string; hash: string; definition: Scenario; routeCount: number };
  options: { repetitions: number; durationS: number | null; amount: number | null; warmupS: number; only: string[]; seed: number };
  command: string;
  startedAt: string;
  finishedAt: string;
  environment: Environment;
  variants: VariantSpec[];
  runs: RunResult[];
  summary: { baselineVariant: string | null; variants: VariantSummary[]; comparisons: VariantComparison[] };
  /** machine-level caveats the report must state */
  caveats: string[];
  /** the scenario's ratio targets, judged */
  targets?: TargetResult[];
  /** proxy mode: each variant's pre-measurement answer check */
  answerChecks?: AnswerCheck[];
  /** fixed-rate scenarios: where the rate came from */
  calibration?: Calibration;
  /** variants that could not run on this machine (e.g. nginx absent), with why */
  skipped?: Array<{ variant: string; reason: string }>;
  /** what estimate / lo / hi mean (absent in reports written before it existed) */
  statistics?: StatisticsInfo;
  /** non-2xx answers the traffic mix asks for on purpose (absent in older reports) */
  traffic?: TrafficInfo;
  /** capacity mode (capacity.ts): every search with its probes, the capacity per variant and its comparisons */
  capacity?: CapacityResults;
  /** the drift guard (drift.ts): the control's first vs last repetition; exceeded = numbers without verdicts */
  drift?: DriftCheck;
}

const num = { type: 'number' } as const;
const nullableNum = { type: ['number', 'null'] } as const;
const interval = { type: 'object', required: ['estimate', 'lo', 'hi'], properties: { estimate: num, lo: num, hi: num } } as const;
const comparison = {
  type: 'object',
  required: ['ratio', 'verdict', 'reason'],
  properties: { ratio: interval, verdict: { enum: ['faster', 'slower', 'no difference'] }, reason: { type: 'string' } },
} as const;
const usage = {
  type: ['object', 'null'],
  required: ['cpuPct', 'rssMeanMB', 'rssMaxMB', 'processes', 'samples'],
  properties: { cpuPct: num, cpuS: num, rssMeanMB: num, rssMaxMB: num, processes: { type: 'integer' }, samples: { type: 'integer' } },
} as const;
const diagnostics = {
  type: ['object', 'null'],
  required: ['gcCount', 'gcPauseMs', 'gcPauseMsPerS', 'eventLoopDelayMeanMs', 'eventLoopDelayP99Ms', 'eventLoopDelayMaxMs'],
} as const;
const latency = {
  type: 'object',
  required: ['mean', 'p50', 'p90', 'p99', 'p999', 'max'],
  properties: { mean: num, p50: num, p90: num, p99: num, p999: num, max: num },
} as const;

export const resultsSchema = {
  type: 'object',
  required: ['schemaVersion', 'scenario', 'options', 'command', 'startedAt', 'finishedAt', 'environment', 'variants', 'runs', 'summary', 'caveats'],
  properties: {
    schemaVersion: { const: 1 },
    scenario: {
      type: 'object',
      required: ['name', 'description', 'hash', 'definition', 'routeCount'],
      properties: {
        name: { type: 'string' },
        hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        definition: { type: 'object' },
        routeCount: { type: 'integer' },
      },
    },
    options: { type: 'object', required: ['repetitions', 'warmupS', 'only', 'seed'] },
    command: { type: 'string' },
    startedAt: { type: 'string', format: 'date-time' },
    finishedAt: { type: 'string', format: 'date-time' },
    environment: {
      type: 'object',
      required: ['node', 'cpuModel', 'cores', 'loadavgBefore', 'loadavgAfter', 'gitCommit', 'pinning'],
      properties: {
        node: { type: 'string' },
        kernel: { type: 'string' },
        cpuModel: { type: 'string' },
        cpuGovernor: { type: ['string', 'null'] },
        cores: { type: 'integer', minimum: 1 },
        loadavgBefore: { type: 'array', items: num, minItems: 3, maxItems: 3 },
        loadavgAfter: { type: 'array', items: num, minItems: 3, maxItems: 3 },
        gitCommit: { type: ['string', 'null'] },
      },
    },
    variants: {
      type: 'array',
      minItems: 1,
      items: { type: 'object', required: ['id', 'kind'], properties: { id: { type: 'string' }, kind: { enum: ['gateway', 'baseline', 'peer'] } } },
    },
    runs: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: [
          'variant',
          'repetition',
          'order',
          'startedAt',
          'durationS',
          'requests',
          'rps',
          'latencyMs',
          'errors',
          'timeouts',
          'non2xx',
          'status',
          'gateway',
          'diagnostics',
          'loader',
          'warnings',
        ],
        properties: {
          variant: { type: 'string' },
          repetition: { type: 'integer', minimum: 0 },
          order: { type: 'integer', minimum: 0 },
          durationS: num,
          requests: { type: 'integer', minimum: 0 },
          rps: { type: 'number', minimum: 0 },
          latencyMs: latency,
          errors: { type: 'integer', minimum: 0 },
          timeouts: { type: 'integer', minimum: 0 },
          non2xx: { type: 'integer', minimum: 0 },
          gateway: usage,
          diagnostics,
          loader: { type: 'object', required: ['cpuPct', 'bound'], properties: { cpuPct: num, bound: { type: 'boolean' } } },
          warnings: { type: 'array', items: { type: 'string' } },
        },
      },
    },
    summary: {
      type: 'object',
      required: ['baselineVariant', 'variants', 'comparisons'],
      properties: {
        baselineVariant: { type: ['string', 'null'] },
        variants: {
          type: 'array',
          items: {
            type: 'object',
            required: ['variant', 'runs', 'rps', 'p50Ms', 'p99Ms', 'gatewayCpuPct', 'rssMaxMB', 'loaderBoundRuns'],
            properties: {
              rps: interval,
              p50Ms: interval,
              p99Ms: interval,
              gatewayCpuPct: nullableNum,
              rssMaxMB: nullableNum,
              cpuUsPerRequest: { anyOf: [interval, { type: 'null' }] },
            },
          },
        },
        comparisons: {
          type: 'array',
          items: {
            type: 'object',
            required: ['variant', 'reference', 'throughput', 'p99'],
            properties: { throughput: comparison, p99: comparison, cpuPerRequest: comparison },
          },
        },
      },
    },
    caveats: { type: 'array', items: { type: 'string' } },
    capacity: {
      type: 'object',
      required: ['spec', 'searches', 'summary', 'comparisons'],
      properties: {
        spec: { type: 'object', required: ['objectiveMs', 'percentile', 'windowS', 'tolerance', 'maxProbes'] },
        searches: {
          type: 'array',
          items: {
            type: 'object',
            required: ['variant', 'repetition', 'capacity', 'lowestFail', 'converged', 'probes'],
            properties: {
              capacity: { type: 'number', minimum: 0 },
              probes: {
                type: 'array',
                minItems: 1,
                items: { type: 'object', required: ['rate', 'pass', 'achievedRps', 'p50Ms', 'p99Ms', 'p999Ms', 'cpuUsPerRequest'] },
              },
            },
          },
        },
        summary: { type: 'array', items: { type: 'object', required: ['variant', 'searches', 'capacity', 'converged'], properties: { capacity: interval } } },
        comparisons: { type: 'array', items: { type: 'object', required: ['variant', 'reference', 'capacity'], properties: { capacity: comparison } } },
      },
    },
    drift: {
      type: 'object',
      required: ['control', 'metric', 'first', 'last', 'change', 'limit', 'exceeded', 'note'],
      properties: { control: { type: 'string' }, first: num, last: num, change: num, limit: num, exceeded: { type: 'boolean' }, note: { type: 'string' } },
    },
    statistics: {
      type: 'object',
      required: ['statistic', 'interval', 'fields'],
      properties: {
        statistic: { const: 'median' },
        interval: {
          type: 'object',
          required: ['method', 'level', 'resamples', 'minSamples'],
          properties: {
            method: { type: 'string' },
            level: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
            resamples: { type: 'integer', minimum: 1 },
          },
        },
      },
    },
    traffic: {
      type: 'object',
      required: ['cycle', 'expectedStatusShare'],
      properties: {
        cycle: { type: 'integer', minimum: 1 },
        expectedStatusShare: { type: 'object', additionalProperties: { type: 'number', minimum: 0, maximum: 1 } },
      },
    },
  },
} as const;

type Validator = ((data: unknown) => boolean) & { errors?: Array<{ instancePath: string; message?: string }> | null };
let validator: Validator | null = null;

/** Validates a parsed results.json; returns the list of problems (empty when valid). */
export function validateResults(data: unknown): string[] {
  if (validator === null) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    validator = ajv.compile(resultsSchema) as unknown as Validator;
  }
  const v = validator;
  if (v(data)) return [];
  return (v.errors ?? []).map((e) => `${e.instancePath === '' ? '/' : e.instancePath}: ${e.message ?? 'invalid'}`);
}
