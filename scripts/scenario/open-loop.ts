/**
 * Fixed-rate load, open loop (the wrk2 method): request i is DUE at t0 + i / rate whatever happened before, and
 * its latency is measured from that due time, not from when a connection was free to send it. A server stall
 * therefore shows up as latency of every request that should have been sent during the stall, instead of
 * silently pausing the client (coordinated omission, which autocannon's per-connection, per-second rate limit
 * suffers from: each connection sends its share of a second back to back and then idles).
 *
 * Requests go through an undici Pool of `connections` keep-alive connections; when all are busy undici queues
 * them, and that queueing is part of the measured latency, as it would be for real clients arriving at that rate.
 */
import * as hdr from 'hdr-histogram-js';
import { Pool } from 'undici';
import type { LoaderJob, LoaderOutcome } from './loader-child.js';

const TICK_MS = 1;

export async function runOpenLoop(job: LoaderJob & { rate: number }): Promise<LoaderOutcome> {
  const cpu0 = process.cpuUsage();
  const startMs = Date.now();
  const timeoutMs = (job.timeoutS ?? 10) * 1000;
  const pool = new Pool(job.url, {
    connections: job.connections,
    pipelining: job.pipelining,
    keepAliveTimeout: 60_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  const status = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  const keys = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
  let completed = 0;
  let bytes = 0;
  let errors = 0;
  let timeouts = 0;
  let non2xx = 0;
  let inFlight = 0;
  const intervalMs = 1000 / job.rate;
  const total = job.amount ?? Math.max(1, Math.round(job.rate * (job.durationS ?? 10)));
  let issued = 0;
  let drained: (() => void) | null = null;

  const issue = (dueAt: number, i: number) => {
    const r = job.requests[i % job.requests.length]!;
    inFlight++;
    pool
      .request({
        method: r.method as 'GET',
        path: r.path,
        ...(r.headers !== undefined ? { headers: r.headers } : {}),
        ...(r.body !== undefined ? { body: r.body } : {}),
      })
      .then(async (res) => {
        for await (const chunk of res.body) bytes += (chunk as Buffer).length;
        hist.recordValue(Math.max(1, Math.round((performance.now() - dueAt) * 1000)));
        completed++;
        const k = keys[Math.floor(res.statusCode / 100) - 1];
        if (k !== undefined) status[k]++;
        if (res.statusCode < 200 || res.statusCode >= 300) non2xx++;
      })
      .catch((err: { code?: string }) => {
        if (err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT') timeouts++;
        else errors++;
      })
      .finally(() => {
        inFlight--;
        if (inFlight === 0 && drained !== null) drained();
      });
  };

  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      // everything due by now goes out now: a late timer never lowers the offered rate
      const due = Math.min(total, Math.floor((now - t0) / intervalMs) + 1);
      while (issued < due) {
        issue(t0 + issued * intervalMs, issued);
        issued++;
      }
      if (issued < total) setTimeout(tick, TICK_MS);
      else resolve();
    };
    tick();
  });
  const sendEnd = performance.now();
  if (inFlight > 0) {
    await Promise.race([new Promise<void>((r) => (drained = r)), new Promise<void>((r) => setTimeout(r, timeoutMs + 1000).unref())]);
  }
  timeouts += inFlight;
  await pool.destroy();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const us = (p: number) => hist.getValueAtPercentile(p) / 1000;
  const latency =
    hist.totalCount > 0
      ? { mean: hist.mean / 1000, p50: us(50), p90: us(90), p99: us(99), p999: us(99.9), max: hist.maxValue / 1000 }
      : { mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  hist.destroy();
  // the offered rate held over the sending window: requests / that window is the achieved rate
  const durationS = (sendEnd - t0) / 1000;
  return {
    startMs,
    endMs: Date.now(),
    cpuUs: cpu.user + cpu.system,
    wallMs,
    result: { requests: completed, durationS, bytes, latency, errors, timeouts, non2xx, status },
  };
}
