import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { alertmanagerPayload, fingerprint, ZERO_TIME } from '../../core/alerts/alertmanager.js';
import { AlertEngine } from '../../core/alerts/engine.js';
import { measure } from '../../core/alerts/measure.js';
import { SampleHistory, takeSample } from '../../core/alerts/samples.js';
import { conditionHolds, RuleState } from '../../core/alerts/state.js';
import type { AlertRuleConfig, GatewayConfig } from '../../core/config/types.js';
import { validateConfig } from '../../core/config/validator.js';
import { configWarnings } from '../../core/config/warnings.js';
import { GatewayMetrics, type WorkerMetricsExport, type WorkerSections } from '../../core/observe/metrics.js';
import { recorderFactory } from '../../core/variants.js';
import { writeConfig } from '../support/cli.js';
import { testClock } from '../support/clock.js';
import { sleep, until } from '../support/wait.js';

const silent = pino({ level: 'silent' });

function rule(r: Partial<AlertRuleConfig> & Pick<AlertRuleConfig, 'metric'>): AlertRuleConfig {
  return { name: 'r', windowMs: 1000, forMs: 0, severity: 'warning', ...r };
}

/** Real recorders behind a synthetic worker: what a worker would export after the requests it was given. */
class FakeWorker {
  readonly metrics: GatewayMetrics;
  upstreams: Record<string, unknown> = {};
  overloaded = false;
  constructor(
    readonly workerId: number,
    readonly pid: number,
  ) {
    this.metrics = new GatewayMetrics(recorderFactory('log-linear'), workerId);
  }
  serve(route: string, status: number, latencyMs: number, n = 1): void {
    const r = this.metrics.route(route);
    for (let i = 0; i < n; i++) this.metrics.record(r, status, latencyMs, 'GET');
  }
  export(): WorkerMetricsExport {
    const sections = {
      upstreams: this.upstreams,
      limits: { perIpRefused: 0, overload: this.overloaded ? { overloaded: true } : null },
    } as unknown as WorkerSections;
    return { ...this.metrics.export(sections), pid: this.pid };
  }
  close(): void {
    this.metrics.close();
  }
}

const workers: FakeWorker[] = [];
function worker(id: number, pid = 1000 + id): FakeWorker {
  const w = new FakeWorker(id, pid);
  workers.push(w);
  return w;
}
afterEach(() => {
  for (const w of workers.splice(0)) w.close();
});

describe('rule state machine', () => {
  it('inactive → pending → firing exactly when forMs has elapsed; a shorter blip never fires', () => {
    const clock = testClock();
    const s = new RuleState();
    expect(s.step(false, clock.now(), 300, 10_000)).toBeNull();
    expect(s.state).toBe('inactive');
    expect(s.step(true, clock.now(), 300, 10_000)).toBeNull();
    expect(s.state).toBe('pending');
    const since = clock.now();
    clock.advance(299);
    expect(s.step(true, clock.now(), 300, 10_000)).toBeNull();
    expect(s.state).toBe('pending');
    clock.advance(1);
    expect(s.step(true, clock.now(), 300, 10_000)).toBe('firing');
    expect(s).toMatchObject({ state: 'firing', activeSince: since, firedAt: since + 300, resolvedAt: null });
    clock.advance(100);
    expect(s.step(true, clock.now(), 300, 10_000)).toBeNull();
    expect(s.step(false, clock.now(), 300, 10_000)).toBe('resolved');
    expect(s).toMatchObject({ state: 'resolved', activeSince: null, resolvedAt: clock.now() });
    expect(s.step(false, clock.now(), 300, 10_000)).toBeNull();

    // a blip: pending, then back to inactive without a notification
    const blip = new RuleState();
    blip.step(true, clock.now(), 300, 10_000);
    clock.advance(200);
    expect(blip.step(false, clock.now(), 300, 10_000)).toBeNull();
    expect(blip.state).toBe('inactive');
  });

  it('forMs 0 fires at once; a long-firing alert is repeated every repeatIntervalMs; resolved goes back to pending', () => {
    const clock = testClock();
    const s = new RuleState();
    expect(s.step(true, clock.now(), 0, 1000)).toBe('firing');
    clock.advance(999);
    expect(s.step(true, clock.now(), 0, 1000)).toBeNull();
    clock.advance(1);
    expect(s.step(true, clock.now(), 0, 1000)).toBe('repeat');
    clock.advance(500);
    expect(s.step(true, clock.now(), 0, 1000)).toBeNull();
    expect(s.step(false, clock.now(), 0, 1000)).toBe('resolved');

    const p = new RuleState();
    p.step(true, clock.now(), 100, 1000);
    clock.advance(100);
    expect(p.step(true, clock.now(), 100, 1000)).toBe('firing');
    expect(p.step(false, clock.now(), 100, 1000)).toBe('resolved');
    expect(p.step(true, clock.now(), 100, 1000)).toBeNull();
    expect(p.state).toBe('pending');
  });

  it('above, below, both (outside a band), and no data', () => {
    expect(conditionHolds({ above: 1 }, 2)).toBe(true);
    expect(conditionHolds({ above: 1 }, 1)).toBe(false);
    expect(conditionHolds({ below: 10 }, 3)).toBe(true);
    expect(conditionHolds({ below: 10 }, 10)).toBe(false);
    expect(conditionHolds({ above: 5, below: 1 }, 0)).toBe(true);
    expect(conditionHolds({ above: 5, below: 1 }, 3)).toBe(false);
    expect(conditionHolds({ above: -1 }, null)).toBe(false);
  });
});

describe('metrics over windows of merged workers', () => {
  it('error_ratio and rps over the window, per route, with a restarted worker counting from zero', () => {
    const h = new SampleHistory();
    const a = worker(0);
    const b = worker(1);
    a.serve('api', 200, 1, 100); // before the window
    b.serve('api', 500, 1, 100);
    h.push(takeSample(0, [a.export(), b.export()], { reloadFailures: 0, workerRestarts: 0, watchdogKills: 0 }), 10_000);
    a.serve('api', 200, 1, 90);
    a.serve('other', 500, 1, 30);
    // worker 1 restarted: a new pid, counters from zero
    const b2 = worker(1, 2001);
    b2.serve('api', 500, 1, 10);
    h.push(takeSample(1000, [a.export(), b2.export()], { reloadFailures: 2, workerRestarts: 1, watchdogKills: 1 }), 10_000);

    expect(measure(rule({ metric: 'error_ratio', route: 'api' }), h)).toBeCloseTo(10 / 100);
    expect(measure(rule({ metric: 'error_ratio' }), h)).toBeCloseTo(40 / 130);
    expect(measure(rule({ metric: 'rps' }), h)).toBeCloseTo(130);
    expect(measure(rule({ metric: 'rps', route: 'api' }), h)).toBeCloseTo(100);
    expect(measure(rule({ metric: 'error_ratio', route: 'nope' }), h)).toBeNull();
    expect(measure(rule({ metric: 'reload_failures' }), h)).toBe(2);
    expect(measure(rule({ metric: 'worker_restarts' }), h)).toBe(1);
    expect(measure(rule({ metric: 'watchdog_kills' }), h)).toBe(1);
  });

  it('p99 over the window only: slow requests older than the window do not count', () => {
    const h = new SampleHistory();
    const a = worker(0);
    h.push(takeSample(0, [a.export()], { reloadFailures: 0, workerRestarts: 0, watchdogKills: 0 }), 10_000);
    expect(measure(rule({ metric: 'p99_ms' }), h)).toBeNull(); // one sample: no window yet
    a.serve('api', 200, 900, 50); // slow, in the first 2 s
    a.serve('api', 200, 5, 100);
    h.push(takeSample(2000, [a.export()], { reloadFailures: 0, workerRestarts: 0, watchdogKills: 0 }), 10_000);
    a.serve('api', 200, 20, 100);
    h.push(takeSample(3000, [a.export()], { reloadFailures: 0, workerRestarts: 0, watchdogKills: 0 }), 10_000);
    // window 1000: only the 20 ms requests
    expect(measure(rule({ metric: 'p99_ms', windowMs: 1000 }), h)).toBeCloseTo(20, 0);
    // window 3000: every request, 20 % of them slow
    expect(measure(rule({ metric: 'p99_ms', windowMs: 3000 }), h)).toBeCloseTo(900, -1);
    expect(measure(rule({ metric: 'p50_ms', windowMs: 3000 }), h)).toBeCloseTo(20, 0);
    expect(measure(rule({ metric: 'p50_ms', windowMs: 1000 }), h)).toBeCloseTo(20, 0);
  });

  it('gauges: unhealthy targets and open circuits if any worker sees them, overloaded workers', () => {
    const h = new SampleHistory();
    const a = worker(0);
    const b = worker(1);
    const target = (url: string, healthy: boolean, circuit: string): unknown => ({ url, healthy, circuit });
    a.upstreams = { users: { targets: [target('http://u1', true, 'closed'), target('http://u2', false, 'closed')] }, orders: { targets: [] } };
    b.upstreams = { users: { targets: [target('http://u1', false, 'open'), target('http://u2', false, 'closed')] }, orders: { targets: [] } };
    b.overloaded = true;
    h.push(takeSample(0, [a.export(), b.export()], { reloadFailures: 0, workerRestarts: 0, watchdogKills: 0 }), 1000);
    expect(measure(rule({ metric: 'unhealthy_targets', upstream: 'users' }), h)).toBe(2);
    expect(measure(rule({ metric: 'unhealthy_targets', upstream: 'orders' }), h)).toBe(0);
    expect(measure(rule({ metric: 'unhealthy_targets', upstream: 'missing' }), h)).toBeNull();
    expect(measure(rule({ metric: 'open_circuits' }), h)).toBe(1);
    expect(measure(rule({ metric: 'overloaded' }), h)).toBe(1);
  });
});

describe('Alertmanager payload', () => {
  it('has the webhook v4 shape; endsAt is the zero time while firing; one fingerprint per label set', () => {
    const r = rule({ name: 'orders-slow', metric: 'p99_ms', above: 250, route: 'orders', windowMs: 60_000, forMs: 60_000 });
    const s = new RuleState();
    s.value = 312.5;
    s.step(true, Date.parse('2026-01-01T00:00:00Z'), 0, 1000);
    const firing = alertmanagerPayload(r, s, 'firing', { receiver: 'ops', externalUrl: 'http://gw:9901' });
    expect(firing).toEqual({
      version: '4',
      groupKey: '{}:{alertname="orders-slow"}',
      truncatedAlerts: 0,
      status: 'firing',
      receiver: 'ops',
      groupLabels: { alertname: 'orders-slow' },
      commonLabels: { alertname: 'orders-slow', severity: 'warning', route: 'orders' },
      commonAnnotations: firing.alerts[0]!.annotations,
      externalURL: 'http://gw:9901',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'orders-slow', severity: 'warning', route: 'orders' },
          annotations: {
            summary: 'orders-slow: p99_ms on route orders is 312.5 (threshold: above 250)',
            description:
              'p99_ms on route orders is 312.5 (threshold: above 250) over the last 60000 ms; the condition must hold 60000 ms before the alert fires.',
          },
          startsAt: '2026-01-01T00:00:00.000Z',
          endsAt: ZERO_TIME,
          generatorURL: 'http://gw:9901/alerts',
          fingerprint: fingerprint({ route: 'orders', alertname: 'orders-slow', severity: 'warning' }),
        },
      ],
    });
    s.step(false, Date.parse('2026-01-01T00:05:00Z'), 0, 1000);
    const resolved = alertmanagerPayload(r, s, 'resolved', { receiver: 'ops', externalUrl: 'http://gw:9901' });
    expect(resolved.alerts[0]).toMatchObject({ status: 'resolved', startsAt: '2026-01-01T00:00:00.000Z', endsAt: '2026-01-01T00:05:00.000Z' });
    expect(resolved.alerts[0]!.fingerprint).toBe(firing.alerts[0]!.fingerprint);
    expect(fingerprint({ alertname: 'x' })).not.toBe(fingerprint({ alertname: 'y' }));
  });
});

describe('AlertEngine on an injected clock', () => {
  it('evaluates merged workers, keeps unchanged rules over a reconfigure and resets changed ones', async () => {
    const clock = testClock();
    const a = worker(0);
    const b = worker(1);
    const source = { collect: async () => [a.export(), b.export()], control: () => ({ reloadFailures: 0, workerRestarts: 0, watchdogKills: 0 }) };
    const rules: AlertRuleConfig[] = [
      rule({ name: 'errors', metric: 'error_ratio', above: 0.5, windowMs: 1000, forMs: 2000, severity: 'critical' }),
      rule({ name: 'traffic', metric: 'rps', below: 1, windowMs: 1000 }),
    ];
    const config = { evaluateEveryMs: 1000, repeatIntervalMs: 60_000, rules, notify: [] };
    const engine = new AlertEngine(config, source, silent, { now: clock.now, externalUrl: 'http://x' });
    try {
      await engine.evaluate();
      expect(engine.view().rules.map((r) => [r.name, r.state, r.value])).toEqual([
        ['errors', 'inactive', null],
        ['traffic', 'inactive', null],
      ]);
      for (let t = 0; t < 3; t++) {
        clock.advance(1000);
        a.serve('api', 500, 1, 10); // split over two workers: only the merge is above 0.5
        b.serve('api', 200, 1, 8);
        await engine.evaluate();
      }
      let view = engine.view();
      expect(view.evaluatedAt).toBe(new Date(clock.now()).toISOString());
      const errors = view.rules[0]!;
      expect(errors.value).toBeCloseTo(10 / 18);
      expect(errors.state).toBe('firing');
      expect(errors.threshold).toEqual({ above: 0.5 });
      expect(Date.parse(errors.firedAt!) - Date.parse(errors.activeSince!)).toBe(2000);
      expect(view.rules[1]).toMatchObject({ state: 'inactive', value: 18, threshold: { below: 1 } });

      engine.reconfigure({ ...config, rules: [rules[0]!, { ...rules[1]!, below: 100 }] });
      view = engine.view();
      expect(view.rules[0]).toMatchObject({ state: 'firing', firedAt: errors.firedAt });
      expect(view.rules[1]).toMatchObject({ state: 'inactive', value: null });
      clock.advance(1000);
      await engine.evaluate();
      expect(engine.view().rules[1]).toMatchObject({ state: 'firing', value: 0 });
    } finally {
      await engine.close();
    }
  });

  it('an rps "below" rule reports no data, not 0, while no worker answers the metrics poll (every one frozen)', async () => {
    const clock = testClock();
    const a = worker(0);
    let answering = true;
    const source = {
      collect: async () => (answering ? [a.export()] : []),
      control: () => ({ reloadFailures: 0, workerRestarts: 0, watchdogKills: 0 }),
    };
    const config = { evaluateEveryMs: 1000, repeatIntervalMs: 60_000, rules: [rule({ name: 'traffic', metric: 'rps', below: 1, windowMs: 1000 })], notify: [] };
    const engine = new AlertEngine(config, source, silent, { now: clock.now, externalUrl: 'http://x' });
    try {
      await engine.evaluate();
      clock.advance(1000);
      a.serve('api', 200, 1, 5);
      await engine.evaluate();
      expect(engine.view().rules[0]).toMatchObject({ state: 'inactive', value: 5 });
      answering = false;
      for (let t = 0; t < 3; t++) {
        clock.advance(1000);
        await engine.evaluate();
        expect(engine.view().rules[0]).toMatchObject({ state: 'inactive', value: null });
      }
      // answering again after a gap: the window starts at a sample without data, so still no value
      answering = true;
      clock.advance(1000);
      await engine.evaluate();
      expect(engine.view().rules[0]).toMatchObject({ state: 'inactive', value: null });
      clock.advance(1000);
      await engine.evaluate();
      expect(engine.view().rules[0]).toMatchObject({ state: 'firing', value: 0 });
    } finally {
      await engine.close();
    }
  });

  it('starts evaluating when a reload brings the first rule, and stops when the last one goes', async () => {
    const a = worker(0);
    const source = { collect: async () => [a.export()], control: () => ({ reloadFailures: 0, workerRestarts: 0, watchdogKills: 0 }) };
    const none = { evaluateEveryMs: 20, repeatIntervalMs: 60_000, rules: [], notify: [] };
    const engine = new AlertEngine(none, source, silent, { externalUrl: 'http://x' });
    try {
      engine.start();
      expect(engine.view()).toEqual({ evaluatedAt: null, rules: [] });
      engine.reconfigure({ ...none, rules: [rule({ name: 'quiet', metric: 'rps', below: 1 })] });
      await until(() => engine.view().rules[0]!.value !== null, { message: 'the new rule evaluated twice (rps needs two samples)' });
      engine.reconfigure(none);
      const last = engine.view().evaluatedAt;
      await sleep(100);
      expect(engine.view().evaluatedAt).toBe(last);
    } finally {
      await engine.close();
    }
  });
});

describe('alerts config', () => {
  const base = (alerts: unknown): unknown => ({
    upstreams: { users: { targets: ['http://127.0.0.1:1'] } },
    routes: [
      { name: 'orders', path: '/orders', upstream: 'users' },
      { path: '/x', methods: ['GET'], response: { status: 200 } },
    ],
    alerts,
  });

  it('applies defaults: every rule gets windowMs, forMs, severity; a webhook gets timeouts, retries and a bounded queue', () => {
    const v = validateConfig(base({ rules: [{ name: 'a', metric: 'rps', below: 1 }], notify: [{ type: 'webhook', url: 'http://127.0.0.1:9/h' }] }));
    if (!v.ok) throw new Error(v.errors.join('\n'));
    const c: GatewayConfig = v.value;
    expect(c.alerts).toMatchObject({ evaluateEveryMs: 1000, repeatIntervalMs: 14_400_000 });
    expect(c.alerts.rules[0]).toMatchObject({ windowMs: 60_000, forMs: 0, severity: 'warning' });
    expect(c.alerts.notify[0]).toEqual({
      type: 'webhook',
      url: 'http://127.0.0.1:9/h',
      headers: {},
      name: 'gateway',
      timeoutMs: 5000,
      maxAttempts: 5,
      backoffMs: 500,
      maxBackoffMs: 30_000,
      maxQueue: 100,
    });
    const empty = validateConfig(base(undefined));
    expect(empty.ok && empty.value.alerts).toEqual({ evaluateEveryMs: 1000, repeatIntervalMs: 14_400_000, rules: [], notify: [{ type: 'log' }] });
  });

  it('names the JSON path and the rule broken', () => {
    const v = validateConfig(
      base({
        rules: [
          { name: 'a', metric: 'latency', above: 1 },
          { name: 'b', metric: 'p99_ms' },
          { name: 'b', metric: 'rps', above: 1 },
          { name: 'c', metric: 'overloaded', above: 0, route: 'orders' },
          { name: 'd', metric: 'error_ratio', above: 0, upstream: 'users' },
        ],
        notify: [{ type: 'webhook' }, { type: 'log', url: 'x' }],
      }),
    );
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.errors).toContain(
      '/alerts/rules/0/metric: must be one of "error_ratio", "p50_ms", "p95_ms", "p99_ms", "rps", "unhealthy_targets", "open_circuits", "reload_failures", "overloaded", "worker_restarts", "watchdog_kills"',
    );
    expect(v.errors).toContain('/alerts/notify/0: must have required property "url"');
    expect(v.errors).toContain('/alerts/notify/1: must NOT have additional property "url"');
    expect(v.errors.filter((e) => e.startsWith('/alerts/notify'))).toHaveLength(2);

    const semantic = validateConfig(
      base({
        rules: [
          { name: 'b', metric: 'p99_ms' },
          { name: 'b', metric: 'rps', above: 1 },
          { name: 'c', metric: 'overloaded', above: 0, route: 'orders' },
          { name: 'd', metric: 'error_ratio', above: 0, upstream: 'users' },
        ],
      }),
    );
    expect(semantic.ok).toBe(false);
    if (semantic.ok) return;
    expect(semantic.errors).toEqual([
      '/alerts/rules/0: rule "b" must have "above" or "below" (the threshold the p99_ms value is compared with)',
      '/alerts/rules/1/name: duplicate rule name "b" (also /alerts/rules/0/name)',
      '/alerts/rules/2/route: rule "c": metric overloaded cannot be scoped to a route',
      '/alerts/rules/3/upstream: rule "d": metric error_ratio cannot be scoped to an upstream',
    ]);
  });

  it('a route or upstream naming nothing configured is a warning, also from --check', async () => {
    const raw = base({
      rules: [
        { name: 'ok', metric: 'p99_ms', above: 250, route: 'orders' },
        { name: 'unnamed-route', metric: 'rps', below: 1, route: 'GET /x' },
        { name: 'typo', metric: 'p99_ms', above: 250, route: 'order' },
        { name: 'gone', metric: 'unhealthy_targets', above: 0, upstream: 'user' },
      ],
    });
    const v = validateConfig(raw);
    if (!v.ok) throw new Error(v.errors.join('\n'));
    const expected = [
      '/alerts/rules/2/route: rule "typo" names route "order", which no configured route is called (it will never have data)',
      '/alerts/rules/3/upstream: rule "gone" names upstream "user", which is not configured (it will never have data)',
    ];
    expect(configWarnings(v.value).filter((w) => w.startsWith('/alerts'))).toEqual(expected);
    const out = await promisify(execFile)(process.execPath, ['dist/core/cli.js', '--config', writeConfig(raw), '--check']);
    expect(out.stdout).toMatch(/is valid \(2 warnings\)/);
    for (const w of expected) expect(out.stderr).toContain(`warning: ${w}`);
  });
});
