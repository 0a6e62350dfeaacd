import http from 'node:http';
import http2 from 'node:http2';
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
  /** per target: its pending timer and the current run of successes/failures */
  private readonly state = new Map<Target, { timer: NodeJS.Timeout | null; successes: number; failures: number }>();
  private started = false;
  private stopped = false;
  /** checks run (for stats) */
  checks = 0;

  constructor(
    targets: readonly Target[],
    private readonly cfg: ActiveConfig,
    /** bound to the upstream's name (a child logger): lines name it once */
    private readonly logger: Logger,
  ) {
    for (const t of targets) this.state.set(t, { timer: null, successes: 0, failures: 0 });
  }

  start(): void {
    if (!this.cfg.enabled) return;
    this.started = true;
    for (const t of this.state.keys()) this.schedule(t);
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.state.values()) if (s.timer !== null) clearTimeout(s.timer);
  }

  /** DNS discovery changed the targets: new ones get checks, removed ones lose theirs. */
  setTargets(targets: readonly Target[]): void {
    const keep = new Set(targets);
    for (const [t, s] of this.state) {
      if (keep.has(t)) continue;
      if (s.timer !== null) clearTimeout(s.timer);
      this.state.delete(t);
    }
    for (const t of targets) {
      if (this.state.has(t)) continue;
      this.state.set(t, { timer: null, successes: 0, failures: 0 });
      if (this.started) this.schedule(t);
    }
  }

  private schedule(target: Target): void {
    const s = this.state.get(target);
    if (this.stopped || s === undefined) return;
    s.timer = setTimeout(() => this.check(target), this.cfg.intervalMs);
    s.timer.unref();
  }

  private check(target: Target): void {
    const o = target.origin;
    const mod = o.protocol === 'https:' ? https : http;
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      this.checks++;
      this.verdict(target, ok);
      this.schedule(target);
    };
    if (target.protocol !== 'http1') {
      probeH2(target, this.cfg.path, this.cfg.timeoutMs, finish);
      return;
    }
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
          // the same CA, client certificate and SNI as the requests: a check is only as good as the real path
          ...target.tls,
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

  private verdict(target: Target, ok: boolean): void {
    const s = this.state.get(target);
    if (s === undefined) return; // removed by DNS while its check ran
    if (ok) {
      s.failures = 0;
      if (!target.healthy && ++s.successes >= this.cfg.healthyThreshold) {
        target.healthy = true;
        // an active pass also lifts a passive mark: the target demonstrably answers again
        target.passiveDownUntil = 0;
        this.logger.info({ target: target.url }, 'target healthy'); // the logger names the upstream
      }
      return;
    }
    s.successes = 0;
    if (target.healthy && ++s.failures >= this.cfg.unhealthyThreshold) {
      target.healthy = false;
      this.logger.warn({ target: target.url }, 'target unhealthy');
    }
  }
}

/** The check over HTTP/2 (an h2/h2c upstream may speak nothing else), on a session of its own. */
function probeH2(target: Target, path: string, timeoutMs: number, finish: (ok: boolean) => void): void {
  const o = target.origin;
  const cleartext = target.protocol === 'h2c';
  let session: http2.ClientHttp2Session;
  try {
    session = http2.connect(`${cleartext ? 'http' : 'https'}://${o.host}`, cleartext ? {} : { ...target.tls, ALPNProtocols: ['h2'] });
  } catch {
    finish(false);
    return;
  }
  const deadline = setTimeout(() => session.destroy(), timeoutMs);
  deadline.unref();
  session.on('error', () => finish(false));
  session.on('close', () => {
    clearTimeout(deadline);
    finish(false);
  });
  try {
    const stream = session.request({ ':path': target.basePath + path, ':authority': target.host, 'user-agent': 'ts-gateway-health' }, { endStream: true });
    stream.on('error', () => finish(false));
    stream.on('response', (h) => {
      const code = Number(h[':status']);
      finish(code >= 200 && code < 400);
      session.close();
    });
    stream.resume();
  } catch {
    session.destroy();
  }
}
