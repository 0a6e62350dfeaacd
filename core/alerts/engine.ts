import type { Logger } from 'pino';
import type { AlertRuleConfig, AlertsConfig, WebhookNotifierConfig } from '../config/types.js';
import type { ControlCounters } from '../observe/control-counters.js';
import type { WorkerMetricsExport } from '../observe/metrics.js';
import { alertmanagerPayload, thresholdText } from './alertmanager.js';
import { measure } from './measure.js';
import { SampleHistory, takeSample } from './samples.js';
import { conditionHolds, RuleState, type AlertState } from './state.js';
import { WebhookNotifier } from './webhook.js';

/** Where the engine reads metrics: the orchestrator (merged over its workers) or a single-process gateway. */
export interface AlertSource {
  collect(): Promise<WorkerMetricsExport[]>;
  control(): ControlCounters;
}

/** One rule in GET /alerts (the admin dashboard reads these exact names). */
export interface AlertRuleView {
  name: string;
  metric: string;
  severity: string;
  state: AlertState;
  value: number | null;
  threshold: { above?: number; below?: number };
  route?: string;
  upstream?: string;
  activeSince: string | null;
  firedAt: string | null;
  resolvedAt: string | null;
  lastNotifyError: string | null;
}

export interface AlertsView {
  /** the last evaluation, null before the first one */
  evaluatedAt: string | null;
  rules: AlertRuleView[];
}

export interface AlertEngineOptions {
  /** epoch ms; tests inject a clock they move (test/support/clock.ts) */
  now?: () => number;
  /** externalURL / generatorURL base when the config sets none */
  externalUrl: string;
}

/** How long close() lets queued notifications drain: shutdown must not wait on a dead receiver. */
export const NOTIFY_SHUTDOWN_GRACE_MS = 1000;

interface RuleEntry {
  rule: AlertRuleConfig;
  key: string;
  state: RuleState;
}

/**
 * Evaluates the alert rules on a timer over the metrics of every serving process, runs each rule's state machine,
 * logs transitions and hands notifications to the notifiers without waiting for them. One evaluation at a time: a
 * collect() that takes longer than evaluateEveryMs skips ticks instead of piling them up.
 */
export class AlertEngine {
  private config: AlertsConfig;
  private entries: RuleEntry[] = [];
  private webhooks: WebhookNotifier[] = [];
  private notifyKey = '';
  private readonly history = new SampleHistory();
  private timer: NodeJS.Timeout | null = null;
  private evaluating: Promise<void> | null = null;
  private evaluatedAt: number | null = null;
  private closed = false;
  private started = false;
  private readonly now: () => number;

  constructor(
    config: AlertsConfig,
    private readonly source: AlertSource,
    private readonly logger: Logger,
    private readonly opts: AlertEngineOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.config = config;
    this.reconfigure(config);
  }

  /** Starts the evaluation timer (no timer while there is no rule). */
  start(): void {
    this.started = true;
    this.schedule();
  }

  /**
   * Applies a reloaded `alerts` section. A rule whose definition did not change keeps its state (a firing alert
   * stays firing, with its firedAt, and is not notified again); a changed or new rule starts inactive.
   */
  reconfigure(config: AlertsConfig): void {
    const previous = new Map(this.entries.map((e) => [e.rule.name, e]));
    this.entries = config.rules.map((rule) => {
      const key = ruleKey(rule);
      const old = previous.get(rule.name);
      return { rule, key, state: old !== undefined && old.key === key ? old.state : new RuleState() };
    });
    const notifyKey = JSON.stringify(config.notify);
    if (notifyKey !== this.notifyKey) {
      for (const w of this.webhooks) void w.close(NOTIFY_SHUTDOWN_GRACE_MS);
      this.webhooks = config.notify
        .filter((n): n is WebhookNotifierConfig => n.type === 'webhook')
        .map((n) => new WebhookNotifier(n, (rule, error) => this.noteDelivery(rule, error)));
      this.notifyKey = notifyKey;
    }
    const retime = config.evaluateEveryMs !== this.config.evaluateEveryMs || (config.rules.length === 0) !== (this.config.rules.length === 0);
    this.config = config;
    // a reload can bring the first rule (no timer yet) or remove the last one
    if (retime && this.started) this.schedule();
  }

  private schedule(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.closed || this.config.rules.length === 0) return;
    this.timer = setInterval(() => void this.evaluate(), this.config.evaluateEveryMs);
    this.timer.unref();
    void this.evaluate();
  }

  /** One evaluation (the timer's, or a test's); resolves when it is done. Never rejects. */
  evaluate(): Promise<void> {
    if (this.evaluating !== null) return this.evaluating;
    const run = this.source
      .collect()
      .then((exports) => {
        if (!this.closed) this.evaluateSample(exports);
      })
      .catch((err: Error) => this.logger.error({ err: err.message }, 'alert evaluation failed'))
      .finally(() => {
        this.evaluating = null;
      });
    this.evaluating = run;
    return run;
  }

  private evaluateSample(exports: WorkerMetricsExport[]): void {
    const now = this.now();
    const keepMs = Math.max(0, ...this.entries.map((e) => e.rule.windowMs)) + 2 * this.config.evaluateEveryMs;
    this.history.push(takeSample(now, exports, this.source.control()), keepMs);
    for (const e of this.entries) {
      const value = measure(e.rule, this.history);
      e.state.value = value;
      const transition = e.state.step(conditionHolds(e.rule, value), now, e.rule.forMs, this.config.repeatIntervalMs);
      if (transition === null) continue;
      if (transition !== 'repeat') this.log(e, transition);
      this.notify(e, transition === 'resolved' ? 'resolved' : 'firing');
    }
    this.evaluatedAt = now;
  }

  private log(e: RuleEntry, transition: 'firing' | 'resolved'): void {
    const { rule, state } = e;
    const fields = {
      alert: rule.name,
      severity: rule.severity,
      metric: rule.metric,
      value: state.value,
      threshold: thresholdText(rule),
      ...(rule.route === undefined ? {} : { route: rule.route }),
      ...(rule.upstream === undefined ? {} : { upstream: rule.upstream }),
    };
    const line = `alert ${rule.name} ${transition}`;
    if (rule.severity === 'critical') this.logger.error(fields, line);
    else this.logger.warn(fields, line);
  }

  private notify(e: RuleEntry, status: 'firing' | 'resolved'): void {
    const externalUrl = this.config.externalUrl ?? this.opts.externalUrl;
    for (const w of this.webhooks) {
      const payload = alertmanagerPayload(e.rule, e.state, status, { receiver: w.config.name, externalUrl });
      w.send({ rule: e.rule.name, body: JSON.stringify(payload) });
    }
  }

  private noteDelivery(rule: string, error: string | null): void {
    const e = this.entries.find((x) => x.rule.name === rule);
    if (e !== undefined) e.state.lastNotifyError = error;
    if (error !== null) this.logger.warn({ alert: rule, err: error }, 'alert notification failed');
  }

  view(): AlertsView {
    const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
    return {
      evaluatedAt: iso(this.evaluatedAt),
      rules: this.entries.map(({ rule, state }) => {
        const threshold: AlertRuleView['threshold'] = {};
        if (rule.above !== undefined) threshold.above = rule.above;
        if (rule.below !== undefined) threshold.below = rule.below;
        const v: AlertRuleView = {
          name: rule.name,
          metric: rule.metric,
          severity: rule.severity,
          state: state.state,
          value: state.value,
          threshold,
          activeSince: iso(state.activeSince),
          firedAt: iso(state.firedAt),
          resolvedAt: iso(state.resolvedAt),
          lastNotifyError: state.lastNotifyError,
        };
        if (rule.route !== undefined) v.route = rule.route;
        if (rule.upstream !== undefined) v.upstream = rule.upstream;
        return v;
      }),
    };
  }

  /** What AdminSource.alerts() answers: the view, or null while no rule is configured (the dashboard says so). */
  report(): AlertsView | null {
    return this.entries.length === 0 ? null : this.view();
  }

  /** Delivery counters per webhook, for tests and /stats. */
  webhookStats(): Array<{ url: string } & WebhookNotifier['stats']> {
    return this.webhooks.map((w) => ({ url: w.config.url, ...w.stats }));
  }

  /** Stops evaluating; waits at most `graceMs` for queued notifications. */
  async close(graceMs = NOTIFY_SHUTDOWN_GRACE_MS): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await Promise.all(this.webhooks.map((w) => w.close(graceMs)));
  }
}

/** A rule's identity for hot reload: every field that changes what it measures or says. */
function ruleKey(r: AlertRuleConfig): string {
  return JSON.stringify([r.name, r.metric, r.above, r.below, r.route, r.upstream, r.windowMs, r.forMs, r.severity, r.summary, r.description]);
}
