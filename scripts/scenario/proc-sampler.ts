import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { processTree } from './processes.js';

let clockTicks: number | null = null;
function ticksPerSecond(): number {
  if (clockTicks === null) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout?.trim());
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** utime + stime in clock ticks, from /proc/<pid>/stat (fields 14 and 15; comm may contain spaces). */
export function readCpuTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return null;
  }
}

/** VmRSS in bytes, from /proc/<pid>/status. */
export function readRss(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

export interface ProcessUsage {
  /** CPU time over wall time, percent of one core (200 = two cores busy) */
  cpuPct: number;
  /** CPU seconds the tree used over the sampled window (clock ticks: 10 ms resolution) */
  cpuS?: number;
  rssMeanMB: number;
  rssMaxMB: number;
  /** processes seen in the tree (primary + workers) */
  processes: number;
  samples: number;
}

/**
 * Samples a process tree's CPU and RSS from /proc while a run is measured. Sampling every 250 ms costs the
 * runner a few file reads and costs the gateway nothing (the kernel answers /proc reads).
 */
export class ProcSampler {
  private readonly last = new Map<number, number>();
  private cpuTicks = 0;
  private readonly rss: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private startedAt = 0;
  private readonly seen = new Set<number>();

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 250,
  ) {}

  available(): boolean {
    return readCpuTicks(this.pid) !== null;
  }

  start(): void {
    this.startedAt = performance.now();
    this.sample(true);
    this.timer = setInterval(() => this.sample(false), this.intervalMs);
  }

  private sample(initial: boolean): void {
    let rss = 0;
    for (const pid of processTree(this.pid)) {
      const ticks = readCpuTicks(pid);
      if (ticks === null) continue;
      const prev = this.last.get(pid);
      // a process born mid-window (a respawned worker) contributes all its CPU; one present at the start only its delta
      if (!initial) this.cpuTicks += prev === undefined ? ticks : ticks - prev;
      this.last.set(pid, ticks);
      this.seen.add(pid);
      rss += readRss(pid) ?? 0;
    }
    if (rss > 0) this.rss.push(rss);
  }

  stop(): ProcessUsage {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.sample(false);
    const wallS = (performance.now() - this.startedAt) / 1000;
    const mb = (b: number) => b / (1024 * 1024);
    return {
      cpuPct: wallS > 0 ? (this.cpuTicks / ticksPerSecond() / wallS) * 100 : 0,
      cpuS: this.cpuTicks / ticksPerSecond(),
      rssMeanMB: this.rss.length > 0 ? mb(this.rss.reduce((s, x) => s + x, 0) / this.rss.length) : 0,
      rssMaxMB: this.rss.length > 0 ? mb(Math.max(...this.rss)) : 0,
      processes: this.seen.size,
      samples: this.rss.length,
    };
  }
}
