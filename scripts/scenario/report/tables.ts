import { non2xxText, readingLines, SATURATED_PCT } from '../interpret.js';
import type { Results } from '../results.js';
import { MIN_SAMPLES_FOR_CI, type Comparison, type Interval } from '../stats.js';

/** A table both renderers (Markdown and HTML) print: every number formatted here, once, deterministically. */
export interface Table {
  title: string;
  note?: string;
  headers: string[];
  /** right-align numeric columns */
  align: Array<'left' | 'right'>;
  rows: string[][];
}

export function fmt(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "n=1, no CI" instead of a zero-width interval when there are too few repetitions for one. */
export function noCi(n: number): string {
  return `n=${n}, no CI`;
}

/** `n`: the samples behind the interval; below MIN_SAMPLES_FOR_CI the interval is not one and is not printed. */
export function fmtInterval(i: Interval, digits = 0, n = MIN_SAMPLES_FOR_CI): string {
  if (n < MIN_SAMPLES_FOR_CI) return `${fmt(i.estimate, digits)} (${noCi(n)})`;
  return `${fmt(i.estimate, digits)} [${fmt(i.lo, digits)} – ${fmt(i.hi, digits)}]`;
}

/** `n`: the smaller side's repetitions. */
export function fmtRatio(c: Comparison, n = MIN_SAMPLES_FOR_CI): string {
  if (n < MIN_SAMPLES_FOR_CI) return `${c.ratio.estimate.toFixed(3)} (${noCi(n)})`;
  return `${c.ratio.estimate.toFixed(3)} [${c.ratio.lo.toFixed(3)} – ${c.ratio.hi.toFixed(3)}]`;
}

function verdictCell(c: Comparison, n: number): string {
  if (n < MIN_SAMPLES_FOR_CI) return `no verdict (${noCi(n)})`;
  return c.verdict === 'no difference' ? 'no difference (within noise)' : `**${c.verdict}**`;
}

/** CPU per request, compared lower-is-better: "faster" there means less CPU for the same request. */
function cpuVerdictCell(c: Comparison, n: number): string {
  if (n < MIN_SAMPLES_FOR_CI || c.verdict === 'no difference') return verdictCell(c, n);
  return c.verdict === 'faster' ? '**less CPU**' : '**more CPU**';
}

/** The verdict table: each variant against the reference; variants in matrix order, never ranked. */
export function verdictTable(r: Results): Table | null {
  const ref = r.summary.baselineVariant;
  if (ref === null || r.summary.comparisons.length === 0) return null;
  // the drift guard: the numbers stay, every verdict cell says why there is none
  const withheld = r.drift?.exceeded === true;
  const verdictText = (c: Comparison, n: number) => (withheld ? 'no verdict (control drifted)' : verdictCell(c, n));
  const cpuVerdictText = (c: Comparison, n: number) => (withheld ? 'no verdict (control drifted)' : cpuVerdictCell(c, n));
  const refSummary = r.summary.variants.find((v) => v.variant === ref)!;
  const cpu = (i: Interval | null | undefined, n: number): string => (i == null ? '–' : fmtInterval(i, 1, n));
  const rows: string[][] = [
    [
      `\`${ref}\` (reference)`,
      fmtInterval(refSummary.rps, 0, refSummary.runs),
      '1',
      '–',
      fmtInterval(refSummary.p99Ms, 2, refSummary.runs),
      '–',
      cpu(refSummary.cpuUsPerRequest, refSummary.runs),
      '1',
      '–',
    ],
  ];
  for (const c of r.summary.comparisons) {
    const s = r.summary.variants.find((v) => v.variant === c.variant)!;
    const n = Math.min(s.runs, refSummary.runs);
    rows.push([
      `\`${c.variant}\``,
      fmtInterval(s.rps, 0, s.runs),
      fmtRatio(c.throughput, n),
      verdictText(c.throughput, n),
      fmtInterval(s.p99Ms, 2, s.runs),
      verdictText(c.p99, n),
      cpu(s.cpuUsPerRequest, s.runs),
      c.cpuPerRequest === undefined ? '–' : fmtRatio(c.cpuPerRequest, n),
      c.cpuPerRequest === undefined ? '–' : cpuVerdictText(c.cpuPerRequest, n),
    ]);
  }
  return {
    title: `Verdicts against \`${ref}\``,
    note:
      (withheld ? `**${r.drift!.note}** ` : '') +
      'Medians over repetitions with 95% percentile-bootstrap confidence intervals (none with a single repetition). A variant is called faster/slower only when the ' +
      'ratio CI excludes 1 AND the two variants\' own CIs do not overlap; otherwise "no difference (within noise)". ' +
      'For p99 latency, "faster" means lower latency. CPU µs/req is the gateway process tree\'s CPU time over the measured window ÷ requests answered, ' +
      'per run: on a shared host it moves far less than req/s, and for a saturated single-core gateway its ratio is the throughput ratio inverted.',
    headers: [
      'variant',
      'req/s median [95% CI]',
      'throughput ratio [95% CI]',
      'throughput',
      'p99 ms [95% CI]',
      'p99 latency',
      'CPU µs/req [95% CI]',
      'CPU/req ratio [95% CI]',
      'CPU per request',
    ],
    align: ['left', 'right', 'right', 'left', 'right', 'left', 'right', 'right', 'left'],
    rows,
  };
}

export function detailTable(r: Results): Table {
  return {
    title: 'Per-variant detail (medians over repetitions)',
    note:
      "CPU is the gateway process tree's CPU time over wall time (100% = one core); req/s per core = req/s ÷ CPU; CPU µs/req = CPU time ÷ requests, per run. " +
      'GC is pause time per second of wall time; event-loop delay p99 is the worst 250 ms window.',
    headers: [
      'variant',
      'runs',
      'req/s',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'p99.9 ms',
      'max ms',
      'CPU %',
      'req/s per core',
      'CPU µs/req',
      'RSS max MB',
      'GC ms/s',
      'ELD p99 ms',
      'loader CPU %',
      'loader-bound runs',
      'errors',
      'timeouts',
      'non-2xx',
    ],
    align: ['left', ...Array<'right'>(18).fill('right')],
    rows: r.summary.variants.map((s) => [
      `\`${s.variant}\``,
      String(s.runs),
      fmt(s.rps.estimate),
      fmt(s.p50Ms.estimate, 2),
      fmt(s.p90Ms, 2),
      fmt(s.p99Ms.estimate, 2),
      fmt(s.p999Ms, 2),
      fmt(s.maxMs, 2),
      fmt(s.gatewayCpuPct),
      fmt(s.rpsPerCore),
      fmt(s.cpuUsPerRequest?.estimate, 1),
      fmt(s.rssMaxMB, 1),
      fmt(s.gcPauseMsPerS, 2),
      fmt(s.eventLoopDelayP99Ms, 2),
      fmt(s.loaderCpuPct),
      String(s.loaderBoundRuns),
      String(s.errors),
      String(s.timeouts),
      String(s.non2xx),
    ]),
  };
}

export function runsTable(r: Results): Table {
  return {
    title: 'All runs (in execution order)',
    note: 'Repetitions are interleaved across variants (A B C A B C …) so drift of the machine hits every variant alike.',
    headers: ['#', 'variant', 'rep', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'CPU %', 'RSS max MB', 'GC ms', 'loader CPU %', 'warnings'],
    align: ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
    rows: [...r.runs]
      .sort((a, b) => a.order - b.order)
      .map((x) => [
        String(x.order + 1),
        `\`${x.variant}\``,
        String(x.repetition + 1),
        fmt(x.rps),
        fmt(x.latencyMs.p50, 2),
        fmt(x.latencyMs.p99, 2),
        fmt(x.latencyMs.max, 2),
        fmt(x.gateway?.cpuPct),
        fmt(x.gateway?.rssMaxMB, 1),
        fmt(x.diagnostics?.gcPauseMs, 1),
        fmt(x.loader.cpuPct),
        x.warnings.join('; '),
      ]),
  };
}

export function environmentTable(r: Results): Table {
  const e = r.environment;
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
  return {
    title: 'Environment',
    headers: ['', ''],
    align: ['left', 'left'],
    rows: [
      ['Node', `${e.node} (V8 ${e.v8})`],
      ['platform', `${e.platform} ${e.arch}${e.kernel !== undefined ? `, ${e.kernel}` : ''}`],
      ['CPU', `${e.cpuModel} × ${e.cores}`],
      ...(e.cpuGovernor !== undefined ? [['CPU frequency governor', e.cpuGovernor ?? 'not exposed by this machine (no cpufreq)']] : []),
      ['memory', `${fmt(e.totalMemMB)} MB`],
      ['load average before (1/5/15 min)', la(e.loadavgBefore)],
      ['load average after (1/5/15 min)', la(e.loadavgAfter)],
      ['git commit', `${e.gitCommit ?? 'unknown'}${e.gitDirty === true ? ' (working tree had uncommitted changes)' : ''}`],
      ['CPU pinning', e.pinning.note],
      ['scenario hash', `\`${r.scenario.hash.slice(0, 16)}\``],
      ['started / finished', `${r.startedAt} / ${r.finishedAt}`],
    ],
  };
}

/** The scenario's ratio targets (issue 8's), met / missed, with the ratio's CI. */
export function targetsTable(r: Results): Table | null {
  if (r.targets === undefined || r.targets.length === 0) return null;
  const metricName = { throughput: 'throughput', p99: 'p99 latency', cpu: 'CPU efficiency' } as const;
  return {
    title: 'Targets',
    note:
      'ratio = median of the variant ÷ median of the reference over the interleaved repetitions of this one run, 95% bootstrap CI; ' +
      'for CPU efficiency the other way round: median CPU µs/req of the reference ÷ that of the variant (above 1: the variant spends less CPU per request). ' +
      '"met" / "missed" is judged on the point estimate; the last column says whether the CI agrees.',
    headers: ['target', 'metric', 'ratio [95% CI]', 'required', 'status', 'confidence'],
    align: ['left', 'left', 'right', 'right', 'left', 'left'],
    rows: r.targets.map((t) => [
      `\`${t.variant}\` ÷ \`${t.reference}\`${t.source !== undefined ? ` (${t.source})` : ''}`,
      metricName[t.metric],
      t.ratio === null
        ? '–'
        : t.confidence === null
          ? `${t.ratio.estimate.toFixed(3)} (${noCi(Math.min(...[t.variant, t.reference].map((v) => r.runs.filter((x) => x.variant === v).length)))})`
          : `${t.ratio.estimate.toFixed(3)} [${t.ratio.lo.toFixed(3)} – ${t.ratio.hi.toFixed(3)}]`,
      t.min !== undefined ? `≥ ${t.min}` : `≤ ${t.max}`,
      t.status === 'not run' ? 'not run' : r.drift?.exceeded === true ? `no verdict (control drifted; point estimate ${t.status})` : `**${t.status}**`,
      t.note,
    ]),
  };
}

/** Per variant: what bounded the run, and which non-2xx the traffic mix asked for. */
export function readingTable(r: Results): Table {
  return {
    title: 'Reading the numbers',
    note:
      `A side is saturated above ${SATURATED_PCT}% of its CPU (the gateway: of the cores its process tree can use; the loader: of its one core). ` +
      "When the gateway is, req/s is its capacity; when neither is, something else paced the run (the closed loop's own latency, a fixed rate, " +
      'other work on the machine), so req/s is not capacity and latency is the comparison. ' +
      'Expected non-2xx are the answers the traffic mix asks for on purpose (requests for paths no route serves get 404).',
    headers: ['variant', 'saturation', 'non-2xx'],
    align: ['left', 'left', 'left'],
    rows: readingLines(r).map((l) => [`\`${l.variant}\``, l.saturation.text, non2xxText(l.non2xx)]),
  };
}
