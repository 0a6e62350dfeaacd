import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import type { UpstreamConfig } from '../config/types.js';
import type { Target } from './target.js';

type ActiveConfig = UpstreamConfig['healthCheck']['active'];

/**
 * Active health checks: GET `path` on every target each interval, on a fresh connection (a check must not
 * depend on, or disturb, the request pool). 2xx/3xx within timeoutMs is a success; healthyThreshold successes
 * in a row put a target back, unhealthyThreshold failures in a row take it out.
 */
export class ActiveHealthChecker {
  private readonly timers: Array<NodeJS.Timeout | null>;
  private readonly successes: number[];
  private readonly failures: number[];
  private stopped = false;
  /** checks run (for stats) */
  checks = 0;

  constructor(
    private readonly targets: Target[],
    private readonly cfg: ActiveConfig,
    /** bound to the upstream's name (a child logger): lines name it once */
    private readonly logger: Logger,
  ) {
    this.timers = targets.map(() => null);
    this.successes = targets.map(() => 0);
    this.failures = targets.map(() => 0);
  }

  start(): void {
    if (!this.cfg.enabled) return;
    for (let i = 0; i < this.targets.length; i++) this.schedule(i);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) if (t !== null) clearTimeout(t);
  }

  private schedule(i: number): void {
    if (this.stopped) return;
    const timer = setTimeout(() => this.check(i), this.cfg.intervalMs);
    timer.unref();
    this.timers[i] = timer;
  }

  private check(i: number): void {
    const target = this.targets[i]!;
    const o = target.origin;
    const mod = o.protocol === 'https:' ? https : http;
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      this.checks++;
      this.verdict(i, ok);
      this.schedule(i);
    };
    try {
      const req = mod.request(
        {
          hostname: o.hostname.startsWith('[') ? o.hostname.slice(1, -1) : o.hostname,
          port: o.port === '' ? undefined : Number(o.port),
          method: 'GET',
          path: target.basePath + this.cfg.path,
          agent: false,
          headers: { host: target.host, 'user-agent': 'ts-gateway-health', connection: 'close' },
          timeout: this.cfg.timeoutMs,
        },
        (res) => {
          const code = res.statusCode ?? 0;
          res.resume();
          res.on('error', () => {});
          finish(code >= 200 && code < 400);
        },
      );
      // `timeout` is socket inactivity; the whole check is bounded too
      const deadline = setTimeout(() => req.destroy(), this.cfg.timeoutMs);
      deadline.unref();
      req.on('timeout', () => req.destroy());
      req.on('error', () => finish(false));
      req.on('close', () => {
        clearTimeout(deadline);
        finish(false);
      });
      req.end();
    } catch {
      finish(false);
    }
  }

  private verdict(i: number, ok: boolean): void {
    const target = this.targets[i]!;
    if (ok) {
      this.failures[i] = 0;
      if (!target.healthy && ++this.successes[i]! >= this.cfg.healthyThreshold) {
        target.healthy = true;
        // an active pass also lifts a passive mark: the target demonstrably answers again
        target.passiveDownUntil = 0;
        this.logger.info({ target: target.url }, 'target healthy'); // the logger names the upstream
      }
      return;
    }
    this.successes[i] = 0;
    if (target.healthy && ++this.failures[i]! >= this.cfg.unhealthyThreshold) {
      target.healthy = false;
      this.logger.warn({ target: target.url }, 'target unhealthy');
    }
  }
}
