/**
 * The capacity section of a report (capacity mode, scripts/scenario/capacity.ts): the capacity of each contestant
 * at the latency objective with its CI and its ratio to the reference, and the latency-vs-rate curves every probe
 * of every search traced (p50, p99, p99.9 per contestant).
 */
import type { ChartConfiguration } from 'chart.js';
import { capacityProbe, type Probe } from '../capacity.js';
import type { Results } from '../results.js';
import { median, MIN_SAMPLES_FOR_CI } from '../stats.js';
import { formatTick, logTicks, PALETTE, render, title } from './charts.js';
import { fmt, fmtInterval, fmtRatio, type Table } from './tables.js';

export function capacityTable(r: Results): Table | null {
  const c = r.capacity;
  if (c === undefined) return null;
  const s = c.spec;
  const ref = c.comparisons[0]?.reference ?? null;
  const withheld = r.drift?.exceeded === true;
  const rows = c.summary.map((v) => {
    const cmp = c.comparisons.find((x) => x.variant === v.variant);
    const n = Math.min(v.searches, c.summary.find((x) => x.variant === ref)?.searches ?? 0);
    const verdict =
      v.variant === ref
        ? 'reference'
        : cmp === undefined
          ? '–'
          : withheld
            ? 'no verdict (control drifted)'
            : n < MIN_SAMPLES_FOR_CI
              ? `no verdict (n=${n}, no CI)`
              : cmp.capacity.verdict === 'no difference'
                ? 'no difference (within noise)'
                : cmp.capacity.verdict === 'faster'
                  ? '**more capacity**'
                  : '**less capacity**';
    const mine = c.searches.filter((x) => x.variant === v.variant);
    const capped = mine.filter((x) => x.lowestFail === null).length;
    return [
      `\`${v.variant}\``,
      `${fmtInterval(v.capacity, 0, v.searches)}${capped > 0 ? ` (${capped} at the ceiling ${fmt(s.maxRate)}: at least)` : ''}`,
      v.variant === ref ? '1' : cmp === undefined ? '–' : fmtRatio(cmp.capacity, n),
      verdict,
      fmt(v.p99AtCapacityMs, 2),
      fmt(v.cpuUsPerRequestAtCapacity, 1),
      `${v.converged}/${v.searches}`,
      String(mine.reduce((sum, x) => sum + x.probes.length, 0)),
    ];
  });
  return {
    title: `Capacity at p${s.percentile} ≤ ${s.objectiveMs} ms`,
    note:
      (withheld ? `**${r.drift!.note}** ` : '') +
      `The highest fixed rate (open loop, latency from each request's due time) at which p${s.percentile} stayed ≤ ${s.objectiveMs} ms over a ${s.windowS} s window ` +
      `with no errors, per repetition; median over repetitions with its 95% bootstrap CI, ratio to the reference with its CI (verdict only when it excludes 1 ` +
      `and the CIs do not overlap). Each search brackets by doubling, then bisects to within ${(s.tolerance * 100).toFixed(0)}%; "converged" counts the searches that got there ` +
      `within ${s.maxProbes} probes. p99 and CPU µs per request are those of the probe at the capacity (medians over repetitions).`,
    headers: ['variant', 'capacity req/s [95% CI]', 'ratio [95% CI]', 'capacity', `p99 ms at capacity`, 'CPU µs/req at capacity', 'converged', 'probes'],
    align: ['left', 'right', 'right', 'left', 'right', 'right', 'right', 'right'],
    rows,
  };
}

/** Every probe of the searches, per variant, as a table (rate, pass, percentiles): the curves' numbers. */
export function probesTable(r: Results): Table | null {
  const c = r.capacity;
  if (c === undefined) return null;
  return {
    title: 'Capacity probes (in execution order)',
    note: 'Every probe of every search: the curves in capacity.png are these numbers (one point per rate, the median over the repetitions that probed it).',
    headers: ['variant', 'rep', 'rate req/s', 'achieved req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'CPU µs/req', 'result'],
    align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
    rows: [...c.searches]
      .sort((a, b) => a.order - b.order)
      .flatMap((s) =>
        s.probes.map((p) => [
          `\`${s.variant}\``,
          String(s.repetition + 1),
          fmt(p.rate),
          fmt(p.achievedRps),
          fmt(p.p50Ms, 2),
          fmt(p.p99Ms, 2),
          fmt(p.p999Ms, 2),
          fmt(p.cpuUsPerRequest, 1),
          p.pass ? (capacityProbe(s) === p ? '**pass (capacity)**' : 'pass') : `fail: ${p.why ?? ''}`,
        ]),
      ),
  };
}

const CURVES = [
  { key: 'p50Ms', label: 'p50', dash: [2, 3], width: 1.5 },
  { key: 'p99Ms', label: 'p99', dash: [], width: 2.5 },
  { key: 'p999Ms', label: 'p99.9', dash: [8, 4], width: 1.5 },
] as const;

/**
 * Latency vs offered rate: per contestant (one colour) p50 dotted, p99 solid, p99.9 dashed, one point per rate
 * probed (the median over the repetitions that probed it); the objective as a horizontal line. Log latency axis:
 * a knee is a wall.
 */
export async function capacityChart(r: Results): Promise<Buffer | null> {
  const c = r.capacity;
  if (c === undefined) return null;
  const variants = c.summary.map((v) => v.variant);
  const datasets = variants.flatMap((id, i) => {
    // one point per rate probed: the median over the repetitions that probed it
    const byRate = new Map<number, Probe[]>();
    for (const p of c.searches.filter((x) => x.variant === id).flatMap((x) => x.probes)) byRate.set(p.rate, [...(byRate.get(p.rate) ?? []), p]);
    const rates = [...byRate.keys()].sort((a, b) => a - b);
    return CURVES.map((k) => ({
      label: `${id} ${k.label}`,
      data: rates.map((rate) => ({ x: rate, y: Math.max(median(byRate.get(rate)!.map((p) => p[k.key])), 0.01) })),
      showLine: true,
      borderColor: PALETTE[i % PALETTE.length],
      backgroundColor: PALETTE[i % PALETTE.length],
      borderDash: [...k.dash],
      borderWidth: k.width,
      pointRadius: k.key === 'p99Ms' ? 3 : 0,
      fill: false,
      tension: 0,
    }));
  });
  const ys = c.searches.flatMap((s) => s.probes.flatMap((p) => [p.p50Ms, p.p99Ms, p.p999Ms])).filter((y) => y > 0);
  const lo = Math.min(c.spec.objectiveMs, ...ys);
  const hi = Math.max(c.spec.objectiveMs, ...ys);
  const min = 10 ** Math.floor(Math.log10(Math.max(lo, 0.01)));
  const max = 10 ** Math.ceil(Math.log10(hi));
  const objective = c.spec.objectiveMs;
  const config = {
    type: 'scatter',
    data: { datasets },
    options: {
      plugins: {
        title: title(`${r.scenario.name}: latency vs offered rate (p50 dotted, p99 solid, p99.9 dashed; objective p${c.spec.percentile} ≤ ${objective} ms)`),
        legend: { labels: { filter: (item: { text: string }) => item.text.endsWith(' p99') } },
      },
      scales: {
        x: { type: 'linear', beginAtZero: true, title: { display: true, text: 'offered rate (req/s, open loop)' } },
        y: {
          type: 'logarithmic',
          min,
          max,
          title: { display: true, text: 'latency ms (log, from due time)' },
          afterBuildTicks(scale: { ticks: Array<{ value: number }> }) {
            scale.ticks = logTicks(min, max).map((value) => ({ value }));
          },
          ticks: { autoSkip: false, callback: (v: number | string) => formatTick(Number(v)) },
        },
      },
    },
    plugins: [
      {
        id: 'objectiveLine',
        afterDatasetsDraw(chart: {
          ctx: CanvasRenderingContext2D;
          scales: Record<string, { getPixelForValue(v: number): number }>;
          chartArea: { left: number; right: number };
        }) {
          const y = chart.scales.y!.getPixelForValue(objective);
          const ctx = chart.ctx;
          ctx.save();
          ctx.strokeStyle = '#000';
          ctx.setLineDash([6, 4]);
          ctx.beginPath();
          ctx.moveTo(chart.chartArea.left, y);
          ctx.lineTo(chart.chartArea.right, y);
          ctx.stroke();
          ctx.fillStyle = '#000';
          ctx.font = 'bold 13px sans-serif';
          ctx.fillText(`objective ${objective} ms`, chart.chartArea.left + 6, y - 5);
          ctx.restore();
        },
      },
    ],
  } as unknown as ChartConfiguration;
  return render(config, 560);
}
