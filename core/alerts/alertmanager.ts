import { createHash } from 'node:crypto';
import type { AlertRuleConfig } from '../config/types.js';
import type { RuleState } from './state.js';

/** Alertmanager's "not ended yet" endsAt (Go's zero time), which receivers expect on a firing alert. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** The labels that identify an alert: alertname, severity, and its route/upstream scope when it has one. */
export function alertLabels(rule: AlertRuleConfig): Record<string, string> {
  const labels: Record<string, string> = { alertname: rule.name, severity: rule.severity };
  if (rule.route !== undefined) labels.route = rule.route;
  if (rule.upstream !== undefined) labels.upstream = rule.upstream;
  return labels;
}

/** Stable id of a label set (16 hex digits, like Alertmanager's): receivers deduplicate firing and resolved by it. */
export function fingerprint(labels: Record<string, string>): string {
  const h = createHash('sha256');
  for (const k of Object.keys(labels).sort()) h.update(`${k}\u0000${labels[k]}\u0000`);
  return h.digest('hex').slice(0, 16);
}

export function thresholdText(rule: AlertRuleConfig): string {
  const parts: string[] = [];
  if (rule.above !== undefined) parts.push(`above ${rule.above}`);
  if (rule.below !== undefined) parts.push(`below ${rule.below}`);
  return parts.join(' or ');
}

function scopeText(rule: AlertRuleConfig): string {
  if (rule.route !== undefined) return ` on route ${rule.route}`;
  if (rule.upstream !== undefined) return ` on upstream ${rule.upstream}`;
  return '';
}

function formatValue(v: number | null): string {
  if (v === null) return 'no data';
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
}

export function annotations(rule: AlertRuleConfig, state: RuleState): Record<string, string> {
  const measured = `${rule.metric}${scopeText(rule)} is ${formatValue(state.value)} (threshold: ${thresholdText(rule)})`;
  return {
    summary: rule.summary ?? `${rule.name}: ${measured}`,
    description:
      rule.description ??
      `${measured}${rule.metric.endsWith('_targets') || rule.metric === 'overloaded' || rule.metric === 'open_circuits' ? '' : ` over the last ${rule.windowMs} ms`}; ` +
        `the condition must hold ${rule.forMs} ms before the alert fires.`,
  };
}

export interface AlertmanagerAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

/** Alertmanager's webhook payload (version 4), so any receiver written for Alertmanager takes the gateway's alerts. */
export interface AlertmanagerPayload {
  version: '4';
  groupKey: string;
  truncatedAlerts: number;
  status: 'firing' | 'resolved';
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: AlertmanagerAlert[];
}

/** One alert per payload, grouped by alertname: a firing and its resolution carry the same groupKey and fingerprint. */
export function alertmanagerPayload(
  rule: AlertRuleConfig,
  state: RuleState,
  status: 'firing' | 'resolved',
  opts: { receiver: string; externalUrl: string },
): AlertmanagerPayload {
  const labels = alertLabels(rule);
  const notes = annotations(rule, state);
  const alert: AlertmanagerAlert = {
    status,
    labels,
    annotations: notes,
    startsAt: new Date(state.firedAt ?? state.activeSince ?? Date.now()).toISOString(),
    endsAt: status === 'resolved' && state.resolvedAt !== null ? new Date(state.resolvedAt).toISOString() : ZERO_TIME,
    generatorURL: `${opts.externalUrl}/alerts`,
    fingerprint: fingerprint(labels),
  };
  return {
    version: '4',
    groupKey: `{}:{alertname="${rule.name}"}`,
    truncatedAlerts: 0,
    status,
    receiver: opts.receiver,
    groupLabels: { alertname: rule.name },
    commonLabels: labels,
    commonAnnotations: notes,
    externalURL: opts.externalUrl,
    alerts: [alert],
  };
}
