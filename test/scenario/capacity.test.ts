/**
 * Capacity at a latency objective (scripts/scenario/capacity.ts): the search finds a known knee within its stated
 * tolerance, on a synthetic answer function and on a real HTTP server whose latency rises at a known rate, driven
 * by the real C open-loop generator; and the generator's HdrHistogram interval logs parse with hdr-histogram-js.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as hdr from 'hdr-histogram-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capacitySpec, giveUpMs, judgeProbe, searchCapacity, summarizeCapacity, type CapacitySpec, type Probe } from '../../scripts/scenario/capacity.js';
import { writeHdrLog } from '../../scripts/scenario/hdr-log.js';
import { openLoopBinary, runOpenLoopC } from '../../scripts/scenario/open-loop-c.js';
import type { RunResult } from '../../scripts/scenario/results.js';
import { needService } from '../support/services.js';

/** A probe of a contestant whose p99 is 1 ms up to `knee` req/s and 50 ms above it. */
function kneeProbe(knee: number, seen: number[]) {
  return async (rate: number): Promise<Probe> => {
    seen.push(rate);
    const p99 = rate <= knee ? 1 : 50;
    return { rate, pass: p99 <= 5, achievedRps: rate, p50Ms: 0.3, p99Ms: p99, p999Ms: p99 * 1.5, cpuUsPerRequest: 30 };
  };
}

describe('capacity search: bracket, then bisect', () => {
  const spec = capacitySpec({ startRate: 2000, maxRate: 100_000, minRate: 50, tolerance: 0.05, maxProbes: 20 });

  it.each([137, 1999, 2000, 3100, 7777, 25_000, 63_000])('finds a knee at %i req/s within the 5%% tolerance', async (knee) => {
    const seen: number[] = [];
    const found = await searchCapacity(spec, kneeProbe(knee, seen));
    // the knee lies in [capacity, lowestFail] and the bracket closed to the tolerance: capacity ≥ knee ÷ 1.05
    expect(found.capacity).toBeLessThanOrEqual(knee);
    expect(found.capacity).toBeGreaterThanOrEqual(knee / (1 + spec.tolerance));
    expect(found.lowestFail).toBeGreaterThan(knee);
    expect(found.converged).toBe(true);
    expect(found.probes.map((p) => p.rate)).toEqual(seen);
    expect(seen.length).toBeLessThanOrEqual(spec.maxProbes);
  });

  it('stops at the ceiling (capacity "at least" maxRate) and at the floor (capacity 0)', async () => {
    const high = await searchCapacity(spec, kneeProbe(1e9, []));
    expect([high.capacity, high.lowestFail, high.converged]).toEqual([100_000, null, false]);
    const low = await searchCapacity(spec, kneeProbe(10, []));
    expect([low.capacity, low.lowestFail, low.converged]).toEqual([0, 50, false]);
  });

  it('never runs more probes than maxProbes (bounded time and requests)', async () => {
    const seen: number[] = [];
    const tight = { ...spec, tolerance: 0.0001, maxProbes: 6 };
    const found = await searchCapacity(tight, kneeProbe(12_345, seen));
    expect(seen).toHaveLength(6);
    expect(found.converged).toBe(false);
    expect(Math.max(...seen)).toBeLessThanOrEqual(tight.maxRate);
  });

  it('a probe fails on the objective, on errors, on 5xx, when behind the rate, or when the generator gave up', () => {
    const run = (over: Partial<RunResult>): RunResult =>
      ({
        rps: 1000,
        requests: 5000,
        errors: 0,
        timeouts: 0,
        status: { '1xx': 0, '2xx': 5000, '3xx': 0, '4xx': 0, '5xx': 0 },
        latencyMs: { mean: 1, p50: 0.5, p90: 1, p99: 4, p999: 9, max: 12 },
        gateway: { cpuPct: 50, cpuS: 0.15, rssMeanMB: 50, rssMaxMB: 50, processes: 1, samples: 10 },
        ...over,
      }) as RunResult;
    const s = capacitySpec({ objectiveMs: 5 });
    const ok = judgeProbe(s, { rate: 1000, run: run({}), abandoned: false });
    expect(ok).toMatchObject({ pass: true, p99Ms: 4, cpuUsPerRequest: 30 });
    expect(judgeProbe(s, { rate: 1000, run: run({ latencyMs: { mean: 1, p50: 1, p90: 2, p99: 6, p999: 9, max: 9 } }), abandoned: false }).why).toBe(
      'p99 6.00 ms > 5 ms',
    );
    expect(judgeProbe(s, { rate: 1000, run: run({ errors: 2 }), abandoned: false }).why).toContain('2 errors');
    expect(judgeProbe(s, { rate: 1000, run: run({ status: { '1xx': 0, '2xx': 4990, '3xx': 0, '4xx': 0, '5xx': 10 } }), abandoned: false }).why).toContain(
      '5xx',
    );
    expect(judgeProbe(s, { rate: 1000, run: run({ rps: 900 }), abandoned: false }).why).toContain('achieved 900');
    expect(judgeProbe(s, { rate: 1000, run: run({}), abandoned: true }).why).toContain('gave up');
    // p99.9 as the objective's percentile
    expect(judgeProbe(capacitySpec({ objectiveMs: 5, percentile: 99.9 }), { rate: 1000, run: run({}), abandoned: false }).why).toBe('p99.9 9.00 ms > 5 ms');
  });

  it('gives up a probe only once it has surely failed, and never within a second', () => {
    expect(giveUpMs(capacitySpec({ objectiveMs: 5, windowS: 5 }))).toBe(1000);
    // 1% of a 200 s window is 2 s: a request later than objective + 2 s does not yet decide p99
    expect(giveUpMs(capacitySpec({ objectiveMs: 5, windowS: 200 }))).toBeGreaterThan(2005);
  });

  it('rejects an impossible spec, naming the rule', () => {
    expect(() => capacitySpec({ startRate: 10, minRate: 100 })).toThrow(/minRate <= startRate <= maxRate/);
    expect(() => capacitySpec({ maxProbes: 1 })).toThrow(/maxProbes/);
  });

  it('summarizes capacity per variant with a CI, and compares it to the reference', () => {
    const probe = (rate: number, pass: boolean): Probe => ({ rate, pass, achievedRps: rate, p50Ms: 1, p99Ms: pass ? 3 : 9, p999Ms: 9, cpuUsPerRequest: 40 });
    const search = (variant: string, repetition: number, capacity: number) => ({
      variant,
      repetition,
      order: repetition,
      capacity,
      lowestFail: capacity + 100,
      converged: true,
      probes: [probe(capacity, true), probe(capacity + 100, false)],
    });
    const searches = [...[5000, 5100, 4900].map((c, i) => search('a', i, c)), ...[10_000, 10_200, 9_800].map((c, i) => search('b', i, c))];
    const out = summarizeCapacity(capacitySpec({}), ['a', 'b'], searches, 'a', 1);
    expect(out.summary.map((v) => [v.variant, v.capacity.estimate, v.converged, v.p99AtCapacityMs, v.cpuUsPerRequestAtCapacity])).toEqual([
      ['a', 5000, 3, 3, 40],
      ['b', 10_000, 3, 3, 40],
    ]);
    expect(out.comparisons[0]!.capacity.ratio.estimate).toBeCloseTo(2, 6);
    expect(out.comparisons[0]!.capacity.verdict).toBe('faster');
  });
});

const OPEN_LOOP_C = openLoopBinary();
const cc = OPEN_LOOP_C === null ? needService('cc') : { available: true, skipReason: '' };

/**
 * A server whose latency rises at a known rate: while the generator offers more than KNEE req/s it holds every
 * answer DELAY_MS, below it answers at once. It is told the offered rate (the probe sets it) rather than
 * estimating it from arrivals: on a loaded machine a stalled event loop bunches arrivals, and an estimate put the
 * knee anywhere within ±15% (seen: 336 for 400), which tests the estimator, not the search.
 */
const KNEE = 400;
const DELAY_MS = 800;

describe.skipIf(OPEN_LOOP_C === null)(
  `capacity search on a real server with a knee at ${KNEE} req/s (C generator)${OPEN_LOOP_C === null ? ` (skipped: ${cc.skipReason})` : ''}`,
  () => {
    let server: Server;
    let port: number;
    let offered = 0;

    beforeAll(async () => {
      server = createServer((req, res) => {
        req.resume();
        if (offered > KNEE) setTimeout(() => res.end('slow'), DELAY_MS);
        else res.end('fast');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as { port: number }).port;
    });

    afterAll(async () => {
      await new Promise<void>((r) => server.close(() => r()));
    });

    it('finds the knee within the search tolerance (the objective is far from both sides of it)', async () => {
      // an objective of 250 ms sits far between "answers at once" and DELAY_MS: below the knee a loaded machine's
      // hiccups stay under it (at 100 ms a p99 of 118 ms was seen under load average 15), above the knee every
      // answer is held past it
      const spec: CapacitySpec = capacitySpec({
        objectiveMs: 250,
        windowS: 1,
        probeWarmupS: 0.3,
        startRate: 100,
        minRate: 25,
        maxRate: 3200,
        tolerance: 0.1,
        maxProbes: 10,
      });
      const probe = async (rate: number): Promise<Probe> => {
        offered = rate;
        const job = {
          url: `http://127.0.0.1:${port}`,
          connections: 64,
          pipelining: 1,
          rate,
          timeoutS: 5,
          giveUpMs: giveUpMs(spec),
          requests: [{ method: 'GET', path: '/' }],
        };
        await runOpenLoopC({ ...job, durationS: spec.probeWarmupS }, OPEN_LOOP_C!);
        const out = await runOpenLoopC({ ...job, durationS: spec.windowS }, OPEN_LOOP_C!);
        const r = out.result;
        const run = { ...r, latencyMs: r.latency, rps: r.durationS > 0 ? r.requests / r.durationS : 0, gateway: null } as unknown as RunResult;
        return judgeProbe(spec, { rate, run, abandoned: r.abandoned === true });
      };
      const found = await searchCapacity(spec, probe);
      const trace = found.probes.map((p) => `${p.rate}:${p.pass ? 'pass' : p.why}`).join(', ');
      // within the stated tolerance of the knee: it lies in [capacity, lowestFail], closed to 10%
      expect(found.capacity, trace).toBeGreaterThanOrEqual(KNEE / (1 + spec.tolerance));
      expect(found.capacity, trace).toBeLessThanOrEqual(KNEE);
      expect(found.lowestFail!, trace).toBeGreaterThan(KNEE);
      expect(found.converged, trace).toBe(true);
    }, 60_000);
  },
);

describe.skipIf(OPEN_LOOP_C === null)(`HdrHistogram interval logs${OPEN_LOOP_C === null ? ` (skipped: ${cc.skipReason})` : ''}`, () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hdr-log-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("the open-loop generator's log parses with hdr-histogram-js's reader: every answer in some interval", async () => {
    const server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const file = join(dir, 'run.hlog');
    try {
      const out = await runOpenLoopC(
        {
          url: `http://127.0.0.1:${port}`,
          connections: 4,
          pipelining: 1,
          rate: 400,
          durationS: 2,
          requests: [{ method: 'GET', path: '/' }],
          hdrLog: { file, intervalS: 0.5, tag: 'gateway@400' },
        },
        OPEN_LOOP_C!,
      );
      const text = readFileSync(file, 'utf8');
      expect(text).toContain('#[Histogram log format version 1.3]');
      expect(text).toContain('"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"');
      expect(hdr.listTags(text)).toEqual(['gateway@400']);
      const reader = new hdr.HistogramLogReader(text);
      let total = 0;
      let intervals = 0;
      let max = 0;
      for (let h = reader.nextIntervalHistogram(); h !== null; h = reader.nextIntervalHistogram()) {
        intervals++;
        total += h.totalCount;
        max = Math.max(max, h.maxValue);
        expect(h.tag).toBe('gateway@400');
      }
      expect(out.result.requests).toBe(800);
      expect(total).toBe(out.result.requests);
      expect(intervals).toBeGreaterThanOrEqual(4);
      // values are microseconds: the slowest answer in the log is the run's max (ms), to HDR's 3 digits
      expect(max / 1000).toBeCloseTo(out.result.latency.max, 0);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 30_000);

  it('records every sample in the interval it was answered in, in microseconds', () => {
    const file = join(dir, 'synthetic.hlog');
    const samples: Array<[number, number]> = [
      [0.1, 1],
      [0.2, 2],
      [1.5, 10],
      [2.9, 0.25],
    ];
    expect(writeHdrLog(samples, { file, intervalS: 1, startMs: Date.UTC(2026, 0, 1), tag: 'build=a,server=own@500', comments: ['synthetic'] })).toBe(3);
    // a comma would end the tag early: variant ids with several dimensions keep theirs, joined by ";"
    expect(hdr.listTags(readFileSync(file, 'utf8'))).toEqual(['build=a;server=own@500']);
    const reader = new hdr.HistogramLogReader(readFileSync(file, 'utf8'));
    const got: Array<[number, number, number]> = [];
    for (let h = reader.nextIntervalHistogram(); h !== null; h = reader.nextIntervalHistogram()) got.push([h.totalCount, h.minNonZeroValue, h.maxValue]);
    expect(got.map(([n]) => n)).toEqual([2, 1, 1]);
    expect(got[0]![1]).toBeCloseTo(1000, -1);
    expect(got[0]![2]).toBeCloseTo(2000, -1);
    expect(got[1]![2]).toBeCloseTo(10_000, -2);
    expect(got[2]![2]).toBeCloseTo(250, 0);
  });
});
