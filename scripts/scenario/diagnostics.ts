import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Diagnostics {
  gcCount: number;
  /** total GC pause over the window, summed over processes */
  gcPauseMs: number;
  /** GC pause per second of wall time (ms/s, summed over processes) */
  gcPauseMsPerS: number;
  /** mean of the per-interval event-loop delay means (worst process) */
  eventLoopDelayMeanMs: number;
  /** worst per-interval p99 of event-loop delay over the window and processes */
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  processes: number;
  intervals: number;
}

interface Line {
  t: number;
  pid: number;
  gcCount: number;
  gcMs: number;
  eldMeanMs: number;
  eldP99Ms: number;
  eldMaxMs: number;
  eldCount: number;
}

/**
 * Aggregates the preload's interval lines that fall inside [fromMs, toMs] (epoch ms). A line at time t covers
 * the interval before t, so lines are taken when most of their interval is inside the window.
 */
export function readDiagnostics(dir: string, fromMs: number, toMs: number, intervalMs = 250): Diagnostics | null {
  if (!existsSync(dir)) return null;
  const lines: Line[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.ndjson')) continue;
    for (const raw of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (raw === '') continue;
      try {
        const l = JSON.parse(raw) as Line;
        if (l.t - intervalMs / 2 >= fromMs && l.t - intervalMs / 2 <= toMs) lines.push(l);
      } catch {
        // a line cut by a concurrent append: skip it
      }
    }
  }
  if (lines.length === 0) return null;
  const byPid = new Map<number, Line[]>();
  for (const l of lines) byPid.set(l.pid, [...(byPid.get(l.pid) ?? []), l]);
  let gcCount = 0;
  let gcMs = 0;
  let worstMean = 0;
  let p99 = 0;
  let max = 0;
  for (const ls of byPid.values()) {
    let meanSum = 0;
    let n = 0;
    for (const l of ls) {
      gcCount += l.gcCount;
      gcMs += l.gcMs;
      if (l.eldCount > 0) {
        meanSum += l.eldMeanMs;
        n++;
      }
      p99 = Math.max(p99, l.eldP99Ms);
      max = Math.max(max, l.eldMaxMs);
    }
    if (n > 0) worstMean = Math.max(worstMean, meanSum / n);
  }
  const wallS = Math.max((toMs - fromMs) / 1000, 1e-3);
  return {
    gcCount,
    gcPauseMs: gcMs,
    gcPauseMsPerS: gcMs / wallS,
    eventLoopDelayMeanMs: worstMean,
    eventLoopDelayP99Ms: p99,
    eventLoopDelayMaxMs: max,
    processes: byPid.size,
    intervals: lines.length,
  };
}
