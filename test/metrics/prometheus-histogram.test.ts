import { afterEach, describe, expect, it } from 'vitest';
import { LogLinearHistogram } from '../../core/base/histogram.js';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { COUNTED_METHODS, GatewayMetrics, methodSlot, STATUS_COLUMNS } from '../../core/observe/metrics.js';
import { histogramLines, LatencyHistogram, LE_BOUNDS_S } from '../../core/observe/prometheus-histogram.js';
import { recorderFactory } from '../../core/variants.js';
import { WINDOW } from '../../variants/metrics/ring/index.js';
import { load, request } from '../support/http.js';

describe('LatencyHistogram (log-linear buckets folded onto fixed le bounds)', () => {
  it('counts each sample under the first bound at or above it; _bucket is cumulative, +Inf = _count', () => {
    const h = new LogLinearHistogram();
    for (const ms of [0.5, 0.9, 3, 40, 40, 900, 20_000]) h.record(ms);
    const l = new LatencyHistogram();
    l.add(h.exportDistribution());
    const lines = histogramLines('x_seconds', 'route="a"', l);
    const value = (le: string): number => Number(lines.find((s) => s.startsWith(`x_seconds_bucket{route="a",le="${le}"}`))!.split(' ')[1]);
    expect(value('0.001')).toBe(2);
    expect(value('0.0025')).toBe(2);
    expect(value('0.005')).toBe(3);
    expect(value('0.05')).toBe(5);
    expect(value('1')).toBe(6);
    expect(value('10')).toBe(6);
    expect(value('+Inf')).toBe(7);
    expect(lines).toContain('x_seconds_count{route="a"} 7');
    expect(Number(lines.find((s) => s.startsWith('x_seconds_sum'))!.split(' ')[1])).toBeCloseTo(20.9844, 4);
    expect(lines.filter((s) => s.includes('_bucket'))).toHaveLength(LE_BOUNDS_S.length + 1);
  });
});

describe.each(['log-linear', 'ring'])('/metrics histograms and response counters (%s recorder)', (variant) => {
  let gw: RunningGateway | null = null;
  afterEach(async () => {
    await gw?.close();
    gw = null;
  });

  it('exports histograms whose counts only grow, and responses by route, method and code', async () => {
    gw = await startGateway({
      variants: { metrics: variant },
      routes: [
        { name: 'ok', path: '/ok', methods: ['*'], response: { status: 200, body: 'ok' } },
        { name: 'made', path: '/made', methods: ['POST'], response: { status: 201 } },
      ],
    });
    // more than ring's window: a windowed export would stop counting at WINDOW
    const n = WINDOW + 200;
    const r = await load(`${gw.url}/ok`, n, 16);
    expect(r.errors).toEqual([]);
    await request(`${gw.url}/made`, { method: 'POST' });
    await request(`${gw.url}/ok`, { method: 'PROPFIND' });
    await request(`${gw.url}/ok`, { method: 'DELETE' });
    await request(`${gw.url}/missing`);

    const text = (await request(`${gw.adminUrl}/metrics`)).body;
    expect(text).toContain('# TYPE gateway_request_duration_seconds histogram');
    expect(text).toContain('# TYPE gateway_route_duration_seconds histogram');
    expect(text).toContain('# TYPE gateway_http_responses_total counter');
    expect(text).not.toContain('summary');
    const s1 = samples(text);
    const okBuckets = s1.filter((x) => x.name === 'gateway_route_duration_seconds_bucket' && x.labels.route === 'ok');
    expect(okBuckets.map((x) => x.labels.le)).toEqual([...LE_BOUNDS_S.map(String), '+Inf']);
    const counts = okBuckets.map((x) => x.value);
    for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeGreaterThanOrEqual(counts[i - 1]!);
    expect(counts.at(-1)).toBe(n + 2);
    expect(value(s1, 'gateway_route_duration_seconds_count', { route: 'ok' })).toBe(n + 2);
    expect(value(s1, 'gateway_route_duration_seconds_sum', { route: 'ok' })).toBeGreaterThan(0);
    expect(value(s1, 'gateway_request_duration_seconds_count', {})).toBe(n + 4);
    expect(value(s1, 'gateway_request_duration_seconds_bucket', { le: '+Inf' })).toBe(n + 4);

    const responses = (method: string, code: string, route = 'ok'): number | undefined => value(s1, 'gateway_http_responses_total', { route, method, code });
    expect(responses('GET', '200')).toBe(n);
    expect(responses('POST', '201', 'made')).toBe(1);
    expect(responses('OTHER', '200')).toBe(1); // PROPFIND folds into OTHER
    expect(responses('DELETE', '200')).toBe(1);
    expect(responses('GET', '404', '(unmatched)')).toBe(1);
    const methods = new Set(s1.filter((x) => x.name === 'gateway_http_responses_total').map((x) => x.labels.method));
    expect(methods).toEqual(new Set(['GET', 'POST', 'OTHER', 'DELETE']));

    // monotonic across scrapes: every bucket of the second scrape ≥ the first
    await load(`${gw.url}/ok`, 50, 4);
    const s2 = samples((await request(`${gw.adminUrl}/metrics`)).body);
    for (const b of okBuckets) expect(value(s2, b.name, b.labels)).toBeGreaterThanOrEqual(b.value);
    expect(value(s2, 'gateway_route_duration_seconds_count', { route: 'ok' })).toBe(n + 52);
  });
});

describe('per-route response counter', () => {
  it('keeps exact codes in 64 shared columns; codes beyond them are counted as "other", none lost', () => {
    const m = new GatewayMetrics(recorderFactory('log-linear'));
    try {
      const route = m.route('r');
      const statuses = [...Array.from({ length: 100 }, (_, i) => 100 + i), ...Array.from({ length: 100 }, (_, i) => 300 + i)];
      for (const s of statuses) m.record(route, s, 1, 'GET');
      m.record(route, 200, 1, 'MKCOL');
      const rr = route.exportResponses();
      const rows: Array<[number, number, number]> = [];
      for (let i = 0; i < rr.length; i += 3) rows.push([rr[i]!, rr[i + 1]!, rr[i + 2]!]);
      expect(rows.reduce((n, r) => n + r[2], 0)).toBe(statuses.length + 1);
      const codes = rows.filter((r) => r[0] === methodSlot('GET')).map((r) => r[1]);
      expect(codes.length).toBeLessThanOrEqual(STATUS_COLUMNS);
      expect(codes).toContain(0); // the overflow column
      for (const c of codes) if (c !== 0) expect(statuses).toContain(c);
      expect(rows.find((r) => r[0] === COUNTED_METHODS.indexOf('OTHER'))![2]).toBe(1);
      expect(route.responses.length).toBe(COUNTED_METHODS.length * STATUS_COLUMNS);
    } finally {
      m.close();
    }
  });
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The exposition's sample lines (this test reads histogram labels, which parse-prometheus-text-format drops). */
function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function value(list: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels);
  return list.find((s) => s.name === name && Object.keys(s.labels).length === want.length && want.every(([k, v]) => s.labels[k] === v))?.value;
}
