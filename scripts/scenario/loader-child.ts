/**
 * The load generator process: runs one load job per request from the runner over IPC (wrk when it can run the
 * job, else autocannon's programmatic API; a fixed-rate job uses the open-loop generator, in C when it compiles
 * here) and answers with the result and its own CPU usage. It lives in its own process, pinned to its own CPU, so its
 * cost is measurable and it never shares an event loop with the runner's samplers and progress bar.
 */
import autocannon from 'autocannon';
import * as hdr from 'hdr-histogram-js';
import { openLoopBinary, runOpenLoopC } from './open-loop-c.js';
import { runOpenLoop } from './open-loop.js';
import type { LoadRequest } from './traffic.js';
import { runWrk, wrkCanRun } from './wrk.js';

export interface LoaderJob {
  url: string;
  connections: number;
  pipelining: number;
  durationS?: number;
  amount?: number;
  rate?: number;
  timeoutS?: number;
  requests: LoadRequest[];
  /** 'auto': wrk when it is installed and the run is closed-loop by duration without pipelining (wrk.ts) */
  engine?: 'auto' | 'autocannon' | 'wrk';
  /** fixed rate, C generator: stop sending once a request is this late (past capacity; capacity.ts) */
  giveUpMs?: number;
  /** fixed rate, C generator: also write the run's latencies as an HdrHistogram interval log (hdr-log.ts) */
  hdrLog?: { file: string; intervalS: number; tag: string };
}

export interface LoaderOutcome {
  startMs: number;
  endMs: number;
  /** process CPU (user + system) during the run, microseconds */
  cpuUs: number;
  wallMs: number;
  result: {
    requests: number;
    durationS: number;
    bytes: number;
    latency: { mean: number; p50: number; p90: number; p99: number; p999: number; max: number };
    errors: number;
    timeouts: number;
    non2xx: number;
    status: { '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number };
    /** the C generator gave up sending (giveUpMs): the server fell behind the rate */
    abandoned?: boolean;
  };
}

type Msg = { type: 'run'; id: number; job: LoaderJob };

function run(job: LoaderJob): Promise<LoaderOutcome> {
  return new Promise((resolve, reject) => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const startMs = Date.now();
    const opts: autocannon.Options = {
      url: job.url,
      connections: job.connections,
      pipelining: job.pipelining,
      requests: job.requests.map((r) => ({
        method: r.method as autocannon.Request['method'],
        path: r.path,
        ...(r.headers !== undefined ? { headers: r.headers } : {}),
        ...(r.body !== undefined ? { body: r.body } : {}),
      })),
      ...(job.durationS !== undefined ? { duration: job.durationS } : {}),
      ...(job.amount !== undefined ? { amount: job.amount } : {}),
      ...(job.rate !== undefined ? { overallRate: job.rate } : {}),
      timeout: job.timeoutS ?? 10,
    };
    // autocannon's own latency histogram truncates to whole milliseconds (p50 would read 0 ms on loopback) and
    // keeps 2xx only; this one records every response in microseconds.
    const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
    const instance = autocannon(opts, (err, r) => {
      if (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      const cpu = process.cpuUsage(cpu0);
      const us = (p: number) => hist.getValueAtPercentile(p) / 1000;
      const latency =
        hist.totalCount > 0
          ? { mean: hist.mean / 1000, p50: us(50), p90: us(90), p99: us(99), p999: us(99.9), max: hist.maxValue / 1000 }
          : { mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
      hist.destroy();
      resolve({
        startMs,
        endMs: Date.now(),
        cpuUs: cpu.user + cpu.system,
        wallMs: performance.now() - t0,
        result: {
          requests: r.requests.total,
          durationS: r.duration,
          bytes: r.throughput.total,
          latency,
          errors: r.errors,
          timeouts: r.timeouts,
          non2xx: r.non2xx,
          status: { '1xx': r['1xx'], '2xx': r['2xx'], '3xx': r['3xx'], '4xx': r['4xx'], '5xx': r['5xx'] },
        },
      });
    });
    instance.on('response', (_client, _status, _bytes, responseTimeMs: number) => {
      hist.recordValue(Math.max(1, Math.round(responseTimeMs * 1000)));
    });
  });
}

process.on('message', (msg: Msg) => {
  if (msg.type !== 'run') return;
  // fixed rate: open loop with latency from each request's due time (open-loop.ts says why not autocannon's rate)
  const job = msg.job;
  const useWrk = job.engine !== 'autocannon' && wrkCanRun(job);
  // open loop in C when it can be compiled here and needs no pipelining (open-loop-c.ts); else the Node one
  const openLoopC = job.rate !== undefined && job.pipelining === 1 ? openLoopBinary() : null;
  const fixedRate = (j: LoaderJob & { rate: number }): Promise<LoaderOutcome> => (openLoopC !== null ? runOpenLoopC(j, openLoopC) : runOpenLoop(j));
  (job.rate !== undefined ? fixedRate(job as LoaderJob & { rate: number }) : useWrk ? runWrk(job) : run(job)).then(
    (outcome) => process.send!({ type: 'result', id: msg.id, outcome }),
    (err: Error) => process.send!({ type: 'error', id: msg.id, message: err.message }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready' });
