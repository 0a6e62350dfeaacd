import { createCanvas } from '@napi-rs/canvas';
import { Chart, registerables, type ChartConfiguration, type Plugin } from 'chart.js';
import type { Results } from '../results.js';
import type { Interval } from '../stats.js';

Chart.register(...registerables);

const WIDTH = 1000;
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
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
        if (iv === undefined) return;
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

async function render(config: ChartConfiguration, height: number): Promise<Buffer> {
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

function title(text: string) {
  return { display: true, text, font: { size: 16 } };
}

export async function throughputChart(r: Results): Promise<Buffer> {
  const vs = r.summary.variants;
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
      plugins: { title: title(`${r.scenario.name}: throughput (median, 95% CI)`), legend: { display: false } },
      scales: { y: { beginAtZero: true, title: { display: true, text: 'requests / s' } } },
    },
  } as unknown as ChartConfiguration;
  return render(config, 500);
}

export async function latencyChart(r: Results): Promise<Buffer> {
  const labels = ['p50', 'p90', 'p99', 'p99.9', 'max'];
  const config = {
    type: 'line',
    data: {
      labels,
      datasets: r.summary.variants.map((v, i) => ({
        label: v.variant,
        data: [v.p50Ms.estimate, v.p90Ms, v.p99Ms.estimate, v.p999Ms, v.maxMs].map((x) => Math.max(x, 0.01)),
        borderColor: PALETTE[i % PALETTE.length],
        backgroundColor: PALETTE[i % PALETTE.length],
        fill: false,
        tension: 0,
      })),
    },
    options: {
      plugins: { title: title(`${r.scenario.name}: latency percentiles (medians over repetitions)`) },
      scales: { y: { type: 'logarithmic', title: { display: true, text: 'latency ms (log)' } }, x: { title: { display: true, text: 'percentile' } } },
    },
  } as unknown as ChartConfiguration;
  return render(config, 500);
}

export async function ratioChart(r: Results): Promise<Buffer | null> {
  const cs = r.summary.comparisons;
  if (cs.length === 0) return null;
  const hi = Math.max(1.1, ...cs.map((c) => c.throughput.ratio.hi)) * 1.05;
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
          ctx.restore();
        },
      },
    ],
  } as unknown as ChartConfiguration;
  return render(config, Math.max(250, 90 + cs.length * 45));
}
