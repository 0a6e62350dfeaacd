import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { load, request } from '../support/http.js';
import { needService } from '../support/services.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';

const promtool = needService('promtool');
const ALERTS_FILE = 'deploy/prometheus/alerts.yml';
const DASHBOARD_FILE = 'deploy/grafana/ts-gateway.json';

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string> }> }>;
}

interface Panel {
  type: string;
  title: string;
  targets?: Array<{ expr: string }>;
}

function alertExprs(): string[] {
  const file = parse(readFileSync(ALERTS_FILE, 'utf8')) as RuleFile;
  return file.groups.flatMap((g) => g.rules.map((r) => r.expr));
}

function dashboardExprs(): string[] {
  const dash = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as { panels: Panel[] };
  return dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
}

/** Grafana's variables, replaced by what they stand for so Prometheus' own parser can read the query. */
function asPromql(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');
}

const NOT_METRICS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression selects: identifiers outside strings, label matchers, ranges and groupings that are not calls. */
export function metricNames(expr: string): string[] {
  const e = asPromql(expr)
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of e.matchAll(/(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const rest = e.slice(m.index + m[0].length).trimStart();
    if (rest.startsWith('(') || NOT_METRICS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

describe('PromQL metric-name extraction', () => {
  it('finds selected metrics, not functions, labels, strings or ranges', () => {
    expect(
      metricNames('histogram_quantile(0.99, sum by (route, le) (rate(gateway_route_duration_seconds_bucket{route="a",code=~"5.."}[$__rate_interval]))) > 0.25'),
    ).toEqual(['gateway_route_duration_seconds_bucket']);
    expect(metricNames('sum(rate(a_total[1m])) / on(x) group_left sum(b) > bool 1 and c')).toEqual(['a_total', 'b', 'c']);
  });
});

describe('deploy/ files use only what the gateway exports', () => {
  let gw: RunningGateway;
  let users: RecordingUpstream;
  let exported: Set<string>;
  beforeAll(async () => {
    users = await startUpstream('users');
    gw = await startGateway({
      upstreams: {
        users: { targets: [users.url], healthCheck: { active: { enabled: true, path: '/', intervalMs: 1000 } } },
        'users-v2': { targets: [users.url] },
      },
      routes: [
        { name: 'orders', path: '/orders/*', upstream: 'users' },
        { name: 'hello', path: '/hello', response: { status: 200 } },
        // the traffic-splitting and mirroring series only exist for routes that split or mirror
        {
          name: 'split',
          path: '/split/*',
          backends: [
            { upstream: 'users', weight: 9 },
            { upstream: 'users-v2', weight: 1 },
          ],
          mirror: { upstream: 'users-v2', compare: true },
        },
      ],
    });
    await load(`${gw.url}/orders/1`, 20, 2);
    await load(`${gw.url}/split/1`, 10, 1);
    await load(`${gw.url}/hello`, 20, 2);
    await request(`${gw.url}/nowhere`);
    const text = (await request(`${gw.adminUrl}/metrics`)).body;
    exported = new Set(
      text
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith('#'))
        .map((l) => l.split(/[{ ]/)[0]!),
    );
  });
  afterAll(async () => {
    await gw?.close();
    await users?.close();
  });

  it('every metric in the Grafana dashboard and in alerts.yml is in a live /metrics scrape', () => {
    const exprs = [...dashboardExprs(), ...alertExprs()];
    expect(exprs.length).toBeGreaterThan(20);
    const used = new Set(exprs.flatMap(metricNames));
    // the extraction found the histogram series the latency panels and the orders-slow alert rest on
    for (const n of [
      'gateway_request_duration_seconds_bucket',
      'gateway_request_duration_seconds_sum',
      'gateway_request_duration_seconds_count',
      'gateway_route_duration_seconds_bucket',
    ]) {
      expect(used).toContain(n);
    }
    const missing = [...used].filter((n) => !exported.has(n));
    expect(missing).toEqual([]);
  });

  it('the dashboard covers requests/s, error ratio, p50/p95/p99, routes, upstream health, circuits, workers and watchdog kills', () => {
    const all = dashboardExprs().join('\n');
    for (const q of ['0.5', '0.95', '0.99']) expect(all).toContain(`histogram_quantile(${q},`);
    for (const n of [
      'gateway_requests_total',
      'gateway_http_responses_total',
      'gateway_upstream_unhealthy_targets',
      'gateway_upstream_open_circuits',
      'gateway_workers',
      'gateway_worker_restarts_total',
      'gateway_worker_watchdog_kills_total',
    ]) {
      expect(all).toContain(n);
    }
  });

  it('alerts.yml has the example config alerts with the gateway rule names and labels', () => {
    const file = parse(readFileSync(ALERTS_FILE, 'utf8')) as RuleFile;
    const rules = file.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => [r.alert, r.for, r.labels])).toEqual([
      ['high-5xx', '2m', { severity: 'critical' }],
      ['orders-slow', '1m', { severity: 'warning', route: 'orders' }],
      ['users-down', '10s', { severity: 'warning', upstream: 'users' }],
    ]);
  });

  describe.skipIf(!promtool.available)('promtool', () => {
    it('accepts alerts.yml', async () => {
      const out = await promisify(execFile)('promtool', ['check', 'rules', ALERTS_FILE]);
      expect(out.stdout).toContain('SUCCESS: 3 rules found');
    });

    it('parses every dashboard query (as recording rules)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'gw-promql-'));
      const file = join(dir, 'dashboard-rules.yml');
      const rules = dashboardExprs().map((e, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(asPromql(e))}`);
      writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
      const out = await promisify(execFile)('promtool', ['check', 'rules', file]);
      expect(out.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
    });
  });
});
