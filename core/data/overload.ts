import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

/** Event-loop delay sampling period: finer sampling costs a timer wakeup per tick, and thresholds worth shedding on are far above it. */
const EVENT_LOOP_SAMPLE_MS = 10;

export interface OverloadConfig {
  /** shed while the event loop's p99 delay over the last interval exceeds this (ms); 0 = not checked */
  maxEventLoopDelayMs: number;
  /** shed while heapUsed / heap_size_limit exceeds this (0..1); 0 = not checked */
  maxHeapUsedRatio: number;
  /** shed while heapUsed exceeds this many bytes; 0 = not checked */
  maxHeapUsedBytes: number;
  /** how often pressure is sampled (ms) */
  checkIntervalMs: number;
  /** Retry-After (seconds) on shed responses */
  retryAfterS: number;
}

export function overloadEnabled(c: OverloadConfig): boolean {
  return c.maxEventLoopDelayMs > 0 || c.maxHeapUsedRatio > 0 || c.maxHeapUsedBytes > 0;
}

export interface OverloadStats {
  overloaded: boolean;
  reason: string;
  shed: number;
  episodes: number;
  eventLoopDelayP99Ms: number;
  heapUsed: number;
}

/**
 * Load shedding for one process. Pressure is sampled on a timer, never per request: the request path reads
 * one boolean. While `overloaded` is set the server answers new requests 503 + Retry-After without routing
 * them (no plugin, no upstream call); requests already admitted finish normally. The flag clears at the first
 * sample under every threshold, so recovery takes at most one interval once pressure drops.
 */
export class OverloadMonitor {
  overloaded = false;
  /** requests answered 503 because of overload */
  shed = 0;
  /** times the monitor entered the overloaded state */
  episodes = 0;
  lastEventLoopDelayMs = 0;
  lastHeapUsed = 0;
  reason = '';
  private readonly histogram: IntervalHistogram | null;
  private readonly timer: NodeJS.Timeout;
  private readonly heapLimit: number;

  constructor(private readonly cfg: OverloadConfig) {
    this.histogram = cfg.maxEventLoopDelayMs > 0 ? monitorEventLoopDelay({ resolution: EVENT_LOOP_SAMPLE_MS }) : null;
    this.histogram?.enable();
    this.heapLimit = getHeapStatistics().heap_size_limit;
    this.timer = setInterval(() => this.sample(), cfg.checkIntervalMs);
    this.timer.unref();
  }

  get retryAfter(): string {
    return String(this.cfg.retryAfterS);
  }

  /** One sample; public so tests and callers can force an immediate evaluation. */
  sample(): boolean {
    let reason = '';
    if (this.histogram !== null) {
      // p99 rather than max: one GC pause is not overload; a loop that is late for most of the interval is.
      const p99 = this.histogram.count > 0 ? this.histogram.percentile(99) / 1e6 : 0;
      this.lastEventLoopDelayMs = p99;
      this.histogram.reset();
      if (p99 > this.cfg.maxEventLoopDelayMs) reason = `event loop delay p99 ${p99.toFixed(1)} ms > ${this.cfg.maxEventLoopDelayMs} ms`;
    }
    if (this.cfg.maxHeapUsedRatio > 0 || this.cfg.maxHeapUsedBytes > 0) {
      const used = process.memoryUsage().heapUsed;
      this.lastHeapUsed = used;
      if (this.cfg.maxHeapUsedBytes > 0 && used > this.cfg.maxHeapUsedBytes) reason = `heap used ${used} B > ${this.cfg.maxHeapUsedBytes} B`;
      else if (this.cfg.maxHeapUsedRatio > 0 && used / this.heapLimit > this.cfg.maxHeapUsedRatio) {
        reason = `heap used ratio ${(used / this.heapLimit).toFixed(3)} > ${this.cfg.maxHeapUsedRatio}`;
      }
    }
    const over = reason !== '';
    if (over && !this.overloaded) this.episodes++;
    this.overloaded = over;
    this.reason = reason;
    return over;
  }

  stats(): OverloadStats {
    return {
      overloaded: this.overloaded,
      reason: this.reason,
      shed: this.shed,
      episodes: this.episodes,
      eventLoopDelayP99Ms: this.lastEventLoopDelayMs,
      heapUsed: this.lastHeapUsed,
    };
  }

  close(): void {
    clearInterval(this.timer);
    this.histogram?.disable();
  }
}
