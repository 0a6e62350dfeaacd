import { createCanvas } from '@napi-rs/canvas';
import { Chart, registerables, type ChartConfiguration, type Plugin } from 'chart.js';
import type { Results } from '../results.js';
import type { Interval } from '../stats.js';

Chart.register(...registerables);

const WIDTH = 1000;
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const VERDICT_COLOR = { faster: '#59a14f', slower: '#e15759', 'no difference': '#9d9d9d' } as const;

/** Draws CI whiskers on bar datasets; the intervals ride along in the dataset as `intervals`. */
const errorBars: Plugin = {
  id: 'ciWhiskers',
  afterDatasetsDraw(chart) {
    const ctx = chart.ctx;
    const horizontal = (chart.options as { indexAxis?: string }).indexAxis === 'y';
    chart.data.datasets.forEach((ds, di) => {
      const intervals = (ds as unknown as { intervals?: Interval[] }).intervals;
      if (intervals === undefined) return;
      const meta = chart.getDatasetMeta(di);
      const valueScale = horizontal ? chart.scales.x! : chart.scales.y!;
      ctx.save();
      ctx.strokeStyle = '#222';
      ctx.lineWidth = 2;
      meta.data.forEach((el, i) => {
        const iv = intervals[i];
        // a zero-width "interval" (a single repetition) is no interval: draw nothing rather than a flat whisker
        if (iv === undefined || !(iv.hi > iv.lo)) return;
        const a = valueScale.getPixelForValue(iv.lo);
        const b = valueScale.getPixelForValue(iv.hi);
        const cap = 8;
        ctx.beginPath();
        if (horizontal) {
          ctx.moveTo(a, el.y);
          ctx.lineTo(b, el.y);
          ctx.moveTo(a, el.y - cap);
          ctx.lineTo(a, el.y + cap);
          ctx.moveTo(b, el.y - cap);
          ctx.lineTo(b, el.y + cap);
        } else {
          ctx.moveTo(el.x, a);
          ctx.lineTo(el.x, b);
          ctx.moveTo(el.x - cap, a);
          ctx.lineTo(el.x + cap, a);
          ctx.moveTo(el.x - cap, b);
          ctx.lineTo(el.x + cap, b);
        }
        ctx.stroke();
      });
      ctx.restore();
    });
  },
};

/** White background: PNGs are viewed in dark-mode viewers too, where a transparent chart is unreadable. */
const background: Plugin = {
  id: 'whiteBackground',
  beforeDraw(chart) {
    const ctx = chart.ctx;
    ctx.save();
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, chart.width, chart.height);
    ctx.restore();
  },
};

export async function render(config: ChartConfiguration, height: number): Promise<Buffer> {
  const canvas = createCanvas(WIDTH, height);
  config.options = {
    ...config.options,
    responsive: false,
    animation: false,
    devicePixelRatio: 1,
  };
  config.plugins = [...(config.plugins ?? []), background, errorBars];
  // Chart.js only needs a 2D context; @napi-rs/canvas's is API-compatible with the DOM's.
  const chart = new Chart(canvas.getContext('2d') as unknown as CanvasRenderingContext2D, config);
  try {
    return Buffer.from(await canvas.encode('png'));
  } finally {
    chart.destroy();
  }
}

export function title(text: string) {
  return { display: true, text, font: { size: 16 } };
}

/** Up to this many variants the latency chart is one line per variant; above, one row per variant (dot plot). */
export const MAX_LATENCY_LINES = 4;
/** Above this many variants bar charts run horizontally so the variant names never overlap. */
const MAX_VERTICAL_BARS = 5;

/**
 * Ticks of a log axis: 1-2-5 × 10^k over up to 4 decades, powers of 10 only over more, so labels never crowd.
 * Chart.js's default puts a labelled tick at every integer mantissa (1, 2, 3 … 9), which overlap.
 */
export function logTicks(min: number, max: number): number[] {
  if (!(min > 0) || !(max >= min)) return [];
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const mantissas = hi - lo > 4 ? [1] : [1, 2, 5];
  const out: number[] = [];
  for (let e = lo; e <= hi; e++) {
    for (const m of mantissas) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) out.push(v);
    }
  }
  return out;
}

/** 0.05, 0.5, 2, 20, 500, 2k, 10k */
export function formatTick(v: number): string {
  if (v >= 1000) return `${Number((v / 1000).toPrecision(3))}k`;
  return String(Number(v.toPrecision(3)));
}

/** A Chart.js logarithmic axis with min/max snapped to the 1-2-5 grid around the data and only those ticks. */
function logAxis(values: number[], label: string) {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  const lo = finite.length > 0 ? Math.min(...finite) : 0.1;
  const hi = finite.length > 0 ? Math.max(...finite) : 1;
  // snap to the 1-2-5 grid just outside the data (the tick labels may then thin to powers of 10)
  const snap = (x: number, up: boolean) => {
    const e = Math.floor(Math.log10(x));
    const grid = [1, 2, 5, 10].map((m) => Number((m * 10 ** e).toPrecision(12)));
    return up ? (grid.find((t) => t >= x * (1 - 1e-9)) ?? x) : ([...grid].reverse().find((t) => t <= x * (1 + 1e-9)) ?? x);
  };
  const min = snap(lo, false);
  const max = snap(hi, true);
  return {
    type: 'logarithmic',
    min,
    max,
    title: { display: true, text: label },
    afterBuildTicks(scale: { ticks: Array<{ value: number }> }) {
      scale.ticks = logTicks(min, max).map((value) => ({ value }));
    },
    ticks: { autoSkip: false, callback: (v: number | string) => formatTick(Number(v)) },
  };
}

function ciLabel(r: Results): string {
  const n = Math.min(...r.summary.variants.map((v) => v.runs));
  if (n < 2) return `, n=${n}, no CI`;
  // two values make a "95 % CI" that is just the two values: say so on the chart
  return n === 2 ? ', n=2: whiskers span the two runs, not a 95% CI' : ', 95% CI';
}

export async function throughputChart(r: Results): Promise<Buffer> {
  const vs = r.summary.variants;
  const horizontal = vs.length > MAX_VERTICAL_BARS;
  const ci = ciLabel(r);
  const config = {
    type: 'bar',
    data: {
      labels: vs.map((v) => v.variant),
      datasets: [
        {
          label: 'req/s (median)',
          data: vs.map((v) => v.rps.estimate),
          backgroundColor: vs.map((_, i) => PALETTE[i % PALETTE.length]),
          intervals: vs.map((v) => v.rps),
        },
      ],
    },
    options: {
      ...(horizontal ? { indexAxis: 'y' } : {}),
      plugins: { title: title(`${r.scenario.name}: throughput (median${ci})`), legend: { display: false } },
      // room for the whiskers: the axis ends past the highest CI bound, not the highest bar
      scales: {
        [horizontal ? 'x' : 'y']: {
          beginAtZero: true,
          suggestedMax: Math.max(0, ...vs.map((v) => v.rps.hi)) * 1.03,
          title: { display: true, text: 'requests / s' },
        },
      },
    },
  } as unknown as ChartConfiguration;
  return render(config, horizontal ? Math.max(300, 90 + vs.length * 40) : 500);
}

/** Gateway CPU µs per request (median, CI whiskers): what to decide on when the machine was busy. */
export async function cpuChart(r: Results): Promise<Buffer | null> {
  const vs = r.summary.variants.filter((v) => v.cpuUsPerRequest !== undefined && v.cpuUsPerRequest !== null);
  if (vs.length === 0) return null;
  const horizontal = vs.length > MAX_VERTICAL_BARS;
  const config = {
    type: 'bar',
    data: {
      labels: vs.map((v) => v.variant),
      datasets: [
        {
          label: 'CPU µs per request (median)',
          data: vs.map((v) => v.cpuUsPerRequest!.estimate),
          backgroundColor: vs.map((_, i) => PALETTE[i % PALETTE.length]),
          intervals: vs.map((v) => v.cpuUsPerRequest!),
        },
      ],
    },
    options: {
      ...(horizontal ? { indexAxis: 'y' } : {}),
      plugins: { title: title(`${r.scenario.name}: CPU per request (median${ciLabel(r)}; lower is better)`), legend: { display: false } },
      scales: {
        [horizontal ? 'x' : 'y']: {
          beginAtZero: true,
          suggestedMax: Math.max(0, ...vs.map((v) => v.cpuUsPerRequest!.hi)) * 1.03,
          title: { display: true, text: 'CPU µs / request (process tree)' },
        },
      },
    },
  } as unknown as ChartConfiguration;
  return render(config, horizontal ? Math.max(300, 90 + vs.length * 40) : 500);
}

const PERCENTILES = ['p50', 'p90', 'p99', 'p99.9', 'max'] as const;
const POINT_STYLES = ['circle', 'rect', 'triangle', 'rectRot', 'crossRot'] as const;

function latencyValues(v: Results['summary']['variants'][number]): number[] {
  return [v.p50Ms.estimate, v.p90Ms, v.p99Ms.estimate, v.p999Ms, v.maxMs].map((x) => Math.max(x, 0.01));
}

/**
 * Latency percentiles. Up to MAX_LATENCY_LINES variants: one line per variant across p50 … max. More: one row per
 * variant with its five percentiles as marked points on a shared log axis (9 crossing lines are unreadable).
 */
export async function latencyChart(r: Results): Promise<Buffer> {
  const vs = r.summary.variants;
  const all = vs.flatMap(latencyValues);
  if (vs.length > MAX_LATENCY_LINES) {
    const config = {
      type: 'line',
      data: {
        labels: vs.map((v) => v.variant),
        datasets: PERCENTILES.map((p, i) => ({
          label: p,
          data: vs.map((v) => latencyValues(v)[i]),
          showLine: false,
          pointStyle: POINT_STYLES[i],
          pointRadius: 7,
          pointBorderWidth: 2,
          borderColor: PALETTE[i],
          backgroundColor: PALETTE[i],
        })),
      },
      options: {
        indexAxis: 'y',
        plugins: {
          title: title(`${r.scenario.name}: latency percentiles per variant (medians over repetitions, log scale)`),
          legend: { labels: { usePointStyle: true } },
        },
        scales: { x: logAxis(all, 'latency ms (log)'), y: { offset: true, grid: { display: true } } },
      },
    } as unknown as ChartConfiguration;
    return render(config, Math.max(320, 110 + vs.length * 42));
  }
  const config = {
    type: 'line',
    data: {
      labels: [...PERCENTILES],
      datasets: vs.map((v, i) => ({
        label: v.variant,
        data: latencyValues(v),
        borderColor: PALETTE[i % PALETTE.length],
        backgroundColor: PALETTE[i % PALETTE.length],
        fill: false,
        tension: 0,
      })),
    },
    options: {
      plugins: { title: title(`${r.scenario.name}: latency percentiles (medians over repetitions)`) },
      scales: { y: logAxis(all, 'latency ms (log)'), x: { title: { display: true, text: 'percentile' } } },
    },
  } as unknown as ChartConfiguration;
  return render(config, 500);
}

export async function ratioChart(r: Results): Promise<Buffer | null> {
  const cs = r.summary.comparisons;
  if (cs.length === 0) return null;
  const hi = Math.max(1.1, ...cs.map((c) => c.throughput.ratio.hi)) * 1.05;
  const ref = r.summary.baselineVariant ?? 'reference';
  const config = {
    type: 'bar',
    data: {
      labels: cs.map((c) => c.variant),
      datasets: [
        {
          label: `ratio to ${r.summary.baselineVariant}`,
          data: cs.map((c) => c.throughput.ratio.estimate),
          backgroundColor: cs.map((c) => VERDICT_COLOR[c.throughput.verdict]),
          intervals: cs.map((c) => c.throughput.ratio),
        },
      ],
    },
    options: {
      indexAxis: 'y',
      layout: { padding: { top: 18 } },
      plugins: {
        title: title(`${r.scenario.name}: throughput ÷ ${r.summary.baselineVariant} (green faster, red slower, grey no difference)`),
        legend: { display: false },
      },
      scales: { x: { min: 0, max: hi, title: { display: true, text: 'ratio (1 = same as reference)' } } },
    },
    plugins: [
      {
        id: 'unityLine',
        afterDatasetsDraw(chart: Chart) {
          const x = chart.scales.x!.getPixelForValue(1);
          const ctx = chart.ctx;
          ctx.save();
          ctx.strokeStyle = '#000';
          ctx.setLineDash([6, 4]);
          ctx.beginPath();
          ctx.moveTo(x, chart.chartArea.top);
          ctx.lineTo(x, chart.chartArea.bottom);
          ctx.stroke();
          ctx.setLineDash([]);
          ctx.fillStyle = '#000';
          ctx.font = 'bold 13px sans-serif';
          // inside the plot area, beside the line: above it, the label ran over the chart's title
          ctx.textAlign = 'left';
          ctx.textBaseline = 'top';
          ctx.fillText(`1.0 = ${ref}`, x + 4, chart.chartArea.top + 3);
          ctx.restore();
        },
      },
    ],
  } as unknown as ChartConfiguration;
  return render(config, Math.max(250, 90 + cs.length * 45));
}
