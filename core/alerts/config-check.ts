import { validateHeaderName, validateHeaderValue } from 'node:http';
import { routeName } from '../config/route-name.js';
import type { AlertMetric, GatewayConfig } from '../config/types.js';

/** Which scope label each metric takes: a route-scoped rule on a gateway-wide metric would silently measure nothing. */
export const METRIC_SCOPE: Record<AlertMetric, 'route' | 'upstream' | 'none'> = {
  error_ratio: 'route',
  p50_ms: 'route',
  p95_ms: 'route',
  p99_ms: 'route',
  rps: 'route',
  unhealthy_targets: 'upstream',
  open_circuits: 'upstream',
  reload_failures: 'none',
  overloaded: 'none',
  worker_restarts: 'none',
  watchdog_kills: 'none',
};

/** What the schema cannot say about `alerts`: each problem names its JSON path and the rule broken. */
export function alertConfigErrors(config: GatewayConfig): string[] {
  const errors: string[] = [];
  const seen = new Map<string, number>();
  config.alerts.rules.forEach((rule, i) => {
    const at = `/alerts/rules/${i}`;
    if (rule.above === undefined && rule.below === undefined) {
      errors.push(`${at}: rule "${rule.name}" must have "above" or "below" (the threshold the ${rule.metric} value is compared with)`);
    }
    const first = seen.get(rule.name);
    if (first !== undefined) errors.push(`${at}/name: duplicate rule name "${rule.name}" (also /alerts/rules/${first}/name)`);
    else seen.set(rule.name, i);
    const scope = METRIC_SCOPE[rule.metric];
    if (rule.route !== undefined && scope !== 'route') {
      errors.push(`${at}/route: rule "${rule.name}": metric ${rule.metric} cannot be scoped to a route`);
    }
    if (rule.upstream !== undefined && scope !== 'upstream') {
      errors.push(`${at}/upstream: rule "${rule.name}": metric ${rule.metric} cannot be scoped to an upstream`);
    }
  });
  config.alerts.notify.forEach((n, i) => {
    if (n.type === 'webhook') errors.push(...webhookErrors(n.url, n.headers ?? {}, `/alerts/notify/${i}`));
  });
  return errors;
}

/**
 * What http.request would refuse by throwing when the first alert is sent, hours after the config was accepted:
 * a URL that does not parse (`http://[::1`) and header names or values HTTP forbids. Node's own checks, so the
 * config is refused for exactly what the request would be.
 */
function webhookErrors(url: string, headers: Record<string, string>, at: string): string[] {
  const errors: string[] = [];
  try {
    new URL(url);
  } catch {
    errors.push(`${at}/url: ${JSON.stringify(url)} is not a valid URL`);
  }
  for (const [name, value] of Object.entries(headers)) {
    try {
      validateHeaderName(name);
    } catch {
      errors.push(`${at}/headers: header name ${JSON.stringify(name)} is not an HTTP token`);
      continue;
    }
    try {
      validateHeaderValue(name, value);
    } catch {
      errors.push(`${at}/headers/${name}: header value has a character HTTP forbids`);
    }
  }
  return errors;
}

/**
 * Scopes naming nothing configured: warnings, not errors, because a rule may be written before its route, and a
 * rule on a missing route simply never has data (its value stays null, so it never fires).
 */
export function alertConfigWarnings(config: GatewayConfig): string[] {
  const warnings: string[] = [];
  const routes = new Set(config.routes.map(routeName));
  config.alerts.rules.forEach((rule, i) => {
    if (rule.route !== undefined && !routes.has(rule.route)) {
      warnings.push(`/alerts/rules/${i}/route: rule "${rule.name}" names route "${rule.route}", which no configured route is called (it will never have data)`);
    }
    if (rule.upstream !== undefined && !Object.prototype.hasOwnProperty.call(config.upstreams, rule.upstream)) {
      warnings.push(`/alerts/rules/${i}/upstream: rule "${rule.name}" names upstream "${rule.upstream}", which is not configured (it will never have data)`);
    }
  });
  return warnings;
}
