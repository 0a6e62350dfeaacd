import { fasterThanBareNote } from '../interpret.js';
import type { Results } from '../results.js';
import { capacityTable, probesTable } from './capacity.js';
import { detailTable, environmentTable, readingTable, runsTable, targetsTable, verdictTable, type Table } from './tables.js';

/** Chart files a report directory holds; the Markdown links them, the HTML embeds them. */
export const CHARTS = {
  throughput: { file: 'throughput.png', title: 'Throughput (median req/s, 95% CI whiskers)' },
  latency: { file: 'latency.png', title: 'Latency percentiles (medians over repetitions, log scale)' },
  ratio: { file: 'ratio.png', title: 'Throughput ratio to the reference (95% CI whiskers)' },
  cpu: { file: 'cpu.png', title: 'CPU µs per request (median, 95% CI whiskers; lower is better)' },
  capacity: { file: 'capacity.png', title: 'Latency vs offered rate, every capacity probe (p50, p99, p99.9 per variant)' },
} as const;

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function markdownTable(t: Table, level = '##'): string {
  const out: string[] = [`${level} ${t.title}`, ''];
  if (t.note !== undefined) out.push(t.note, '');
  out.push(`| ${t.headers.map(escapeCell).join(' | ')} |`);
  out.push(`|${t.align.map((a) => (a === 'right' ? ' ---: ' : ' --- ')).join('|')}|`);
  for (const row of t.rows) out.push(`| ${row.map(escapeCell).join(' | ')} |`);
  out.push('');
  return out.join('\n');
}

function rateText(r: Results): string {
  const c = r.calibration;
  if (c?.source === 'rateOfMax') {
    return `, fixed rate ${c.rate} req/s = ${c.fraction} × \`${c.variant}\`'s measured maximum (${Math.round(c.maxRps)} req/s in a calibration run${c.loaderBound ? ', loader-bound: a lower bound' : ''})`;
  }
  if (c?.source === 'option') return `, fixed rate ${c.rate} req/s (--rate)`;
  const rate = r.scenario.definition.load.rate;
  return rate !== undefined ? `, fixed rate ${rate} req/s` : ', as fast as possible';
}

/** Verify before timing: who answered the fixed requests as the scenario defines them, and who did not (not timed). */
export function answerCheckLines(checks: NonNullable<Results['answerChecks']>): string[] {
  const ok = checks.filter((c) => c.identical);
  const headers = checks.find((c) => c.headers !== undefined)?.headers;
  const what = `the expected status and body bytes${headers !== undefined ? ` and the same ${headers.map((h) => `\`${h}\``).join(', ')}` : ''}`;
  const lines: string[] = [];
  if (ok.length > 0) {
    lines.push(
      `- answer check: before measuring, ${ok.map((c) => `\`${c.variant}\``).join(', ')} answered ${ok[0]!.requests} fixed requests each with ${what}`,
    );
  }
  for (const c of checks.filter((x) => !x.identical)) lines.push(`- answer check: **\`${c.variant}\` answered differently, not timed**: ${c.mismatch}`);
  return lines;
}

/** One line naming what the intervals are (from results.json's `statistics`, or the defaults older reports used). */
export function statisticsText(r: Results): string {
  const st = r.statistics;
  const level = Math.round((st?.interval.level ?? 0.95) * 100);
  const resamples = st?.interval.resamples ?? 4000;
  if (r.options.repetitions < (st?.interval.minSamples ?? 2)) {
    return `median over repetitions; n=${r.options.repetitions}, no CI (intervals need at least ${st?.interval.minSamples ?? 2} repetitions), no verdicts`;
  }
  if (r.options.repetitions === 2) {
    return `median over repetitions; n=2: each [lo – hi] is the two runs' values, not a ${level}% CI (run --repetitions 3 or more for one); ratios are median ÷ median`;
  }
  return `median over repetitions, [lo – hi] = ${level}% percentile-bootstrap CI of the median (${resamples.toLocaleString('en-US')} resamples); ratios are median ÷ median with their own bootstrap CI`;
}

/** report.md: a pure function of results.json, so `npm run report` reproduces it byte for byte. */
export function renderMarkdown(r: Results, charts: Array<keyof typeof CHARTS>): string {
  const s = r.scenario;
  const d = s.definition;
  const load = d.load;
  const measure = r.options.durationS !== null ? `${r.options.durationS} s` : `${r.options.amount} requests`;
  const lines: string[] = [
    `# Scenario \`${s.name}\``,
    '',
    s.description,
    '',
    `- mode: **${d.mode}**, ${s.routeCount} routes${d.routeTable !== undefined ? ` (route table \`${d.routeTable}\`)` : ''}`,
    `- load: ${load.connections} connections, pipelining ${load.pipelining}${rateText(r)}`,
    `- per run: ${r.options.warmupS} s warmup (discarded) + ${measure} measured; ${r.options.repetitions} repetitions per variant, interleaved`,
    `- statistics: ${statisticsText(r)}`,
    `- variants: ${r.variants.map((v) => `\`${v.id}\``).join(', ')}`,
    `- run ${r.startedAt} on commit \`${r.environment.gitCommit ?? 'unknown'}\`${r.environment.gitDirty === true ? ' (dirty)' : ''}`,
    ...(r.answerChecks !== undefined ? answerCheckLines(r.answerChecks) : []),
    ...(r.drift !== undefined ? [`- drift guard: ${r.drift.exceeded ? `**${r.drift.note}**` : r.drift.note}`] : []),
    '',
    '## Caveats',
    '',
    ...r.caveats.map((c) => `- ${c}`),
    ...(r.runs.some((x) => x.loader.bound)
      ? [
          `- ${r.runs.filter((x) => x.loader.bound).length} of ${r.runs.length} runs were loader-bound (the load generator saturated its core): their throughput is a lower bound for the variant.`,
        ]
      : []),
    ...(r.runs.some((x) => x.errors > 0 || x.timeouts > 0 || x.status['5xx'] > 0)
      ? ['- some runs saw errors, timeouts or 5xx responses: see the runs table.']
      : []),
    '',
  ];
  const capacity = capacityTable(r);
  if (capacity !== null) lines.push(markdownTable(capacity));
  const targets = targetsTable(r);
  if (targets !== null) lines.push(markdownTable(targets));
  const verdicts = verdictTable(r);
  if (verdicts !== null) lines.push(markdownTable(verdicts));
  else lines.push('## Verdicts', '', 'No reference variant in this run: no ratios, no verdicts.', '');
  lines.push(markdownTable(readingTable(r)));
  const faster = fasterThanBareNote(r);
  if (faster !== null) lines.push(faster, '');
  lines.push(markdownTable(detailTable(r)));
  lines.push('## Charts', '');
  for (const c of charts) lines.push(`### ${CHARTS[c].title}`, '', `![${c}](${CHARTS[c].file})`, '');
  const probes = probesTable(r);
  if (probes !== null) lines.push(markdownTable(probes));
  lines.push(markdownTable(runsTable(r)));
  lines.push(markdownTable(environmentTable(r)));
  lines.push(
    '## How to reproduce',
    '',
    '```sh',
    `git checkout ${r.environment.gitCommit ?? '<commit>'}`,
    'npm ci',
    r.command,
    '```',
    '',
    'Re-render this report (Markdown, charts, HTML) from its results.json without re-running:',
    '',
    '```sh',
    'npm run report -- <this directory>',
    '```',
    '',
    'Numbers from another machine are not comparable in absolute terms; compare ratios and verdicts, and only between reports with the same scenario hash.',
    '',
  );
  return lines.join('\n');
}
