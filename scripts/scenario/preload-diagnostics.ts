/**
 * Preloaded into the gateway (`node --import …/preload-diagnostics.js`), independent of the gateway's code:
 * observes GC pauses (perf_hooks 'gc' entries) and event-loop delay (monitorEventLoopDelay) and appends one
 * JSON line per interval to $SCENARIO_DIAG_DIR/<pid>.ndjson. Each line summarises only its own interval, so
 * the runner can aggregate exactly the measured window without any control channel into the gateway.
 * Cluster workers inherit execArgv, so every worker reports too.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

const dir = process.env.SCENARIO_DIAG_DIR;
const intervalMs = Number(process.env.SCENARIO_DIAG_INTERVAL_MS ?? 250);

if (dir !== undefined && dir !== '') {
  const file = join(dir, `${process.pid}.ndjson`);
  let gcCount = 0;
  let gcMs = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcCount++;
      gcMs += e.duration;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  // 10 ms resolution: the sampling timer itself is the cost, and p99s of interest are well above it
  const resolutionMs = 10;
  const eld = monitorEventLoopDelay({ resolution: resolutionMs });
  eld.enable();

  const flush = () => {
    // the histogram records the time between the sampling timer's callbacks, resolution included
    const ms = (v: number) => Math.max(0, v / 1e6 - resolutionMs);
    const line = {
      t: Date.now(),
      pid: process.pid,
      gcCount,
      gcMs,
      eldMeanMs: eld.count > 0 ? ms(eld.mean) : 0,
      eldP99Ms: eld.count > 0 ? ms(eld.percentile(99)) : 0,
      eldMaxMs: eld.count > 0 ? ms(eld.max) : 0,
      eldCount: eld.count,
    };
    gcCount = 0;
    gcMs = 0;
    eld.reset();
    try {
      appendFileSync(file, `${JSON.stringify(line)}\n`);
    } catch {
      // diagnostics must never take the gateway down
    }
  };
  setInterval(flush, intervalMs).unref();
}
