import type { HookStats } from '../plugins/types.js';
import { ControlCounters, NO_CONTROL_COUNTERS } from './control-counters.js';
import type { ProtocolStats, AggregatedMetrics, WorkerMetricsExport } from './metrics.js';
import { COUNTED_METHODS, cumulativeLatency } from './metrics.js';
import { histogramLines, LatencyHistogram } from './prometheus-histogram.js';
import { upstreamHealth } from './upstream-health.js';

/**
 * Prometheus text exposition (format 0.0.4) of the aggregated metrics, plus per-worker and per-route series.
 * `control` carries what only the process that owns the workers knows (reload failures, worker restarts).
 */
/**
 * Per-worker upstream gauges that are not counts: a certificate's days left is the soonest expiry any worker
 * saw; a DNS answer's size and a failing lookup are the same fact in each worker, not one per worker.
 */
const UPSTREAM_NOT_SUMMED = new Map<string, (a: number, b: number) => number>([
  ['gateway_upstream_target_tls_cert_expiry_days', Math.min],
  ['gateway_upstream_tls_client_cert_expiry_days', Math.min],
  ['gateway_upstream_dns_addresses', Math.max],
  ['gateway_upstream_dns_failing', Math.max],
  ['gateway_route_backend_weight', Math.max],
]);

export function renderPrometheus(m: AggregatedMetrics, workers: WorkerMetricsExport[], control: ControlCounters = NO_CONTROL_COUNTERS): string {
  const out: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[string, number]>): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) out.push(`${name}${labels} ${Number.isFinite(value) ? value : 0}`);
  };

  metric(
    'gateway_requests_total',
    'counter',
    'Requests answered, by status class.',
    Object.entries(m.statusClasses).map(([c, v]) => [`{code="${c}"}`, v]),
  );
  metric('gateway_errors_total', 'counter', 'Requests answered with a 5xx or aborted.', [['', m.errors]]);
  metric('gateway_requests_per_second', 'gauge', 'Request rate over the last second.', [['', m.rps]]);
  metric('gateway_active_connections', 'gauge', 'Open client connections.', [['', m.activeConnections]]);
  metric('gateway_connections_total', 'counter', 'Client connections accepted.', [['', m.totalConnections]]);
  metric('gateway_in_flight_requests', 'gauge', 'Requests being processed.', [['', m.inFlight]]);
  // Histograms, not summaries: histogram_quantile() over summed buckets aggregates across instances, quantiles cannot.
  const total = new LatencyHistogram();
  for (const w of workers) total.add(cumulativeLatency(w));
  out.push('# HELP gateway_request_duration_seconds Request latency, merged over workers.', '# TYPE gateway_request_duration_seconds histogram');
  out.push(...histogramLines('gateway_request_duration_seconds', '', total));

  const routeEntries = Object.entries(m.routes);
  metric(
    'gateway_route_requests_total',
    'counter',
    'Requests per route.',
    routeEntries.map(([n, r]) => [`{route="${esc(n)}"}`, r.requests]),
  );
  metric(
    'gateway_route_errors_total',
    'counter',
    'Errors per route.',
    routeEntries.map(([n, r]) => [`{route="${esc(n)}"}`, r.errors]),
  );
  const perRoute = new Map<string, LatencyHistogram>();
  const responses = new Map<string, number>();
  for (const w of workers) {
    for (const [n, r] of Object.entries(w.routes)) {
      let h = perRoute.get(n);
      if (h === undefined) perRoute.set(n, (h = new LatencyHistogram()));
      h.add(cumulativeLatency(r));
      const rr = r.responses;
      for (let i = 0; i + 2 < rr.length; i += 3) {
        const code = rr[i + 1] === 0 ? 'other' : String(rr[i + 1]);
        const key = `{route="${esc(n)}",method="${COUNTED_METHODS[rr[i]!] ?? 'OTHER'}",code="${code}"}`;
        responses.set(key, (responses.get(key) ?? 0) + rr[i + 2]!);
      }
    }
  }
  out.push('# HELP gateway_route_duration_seconds Request latency per route.', '# TYPE gateway_route_duration_seconds histogram');
  for (const [n, h] of perRoute) out.push(...histogramLines('gateway_route_duration_seconds', `route="${esc(n)}"`, h));
  metric('gateway_http_responses_total', 'counter', 'Responses by route, method (standard methods, others as OTHER) and status code.', [...responses]);

  metric(
    'gateway_worker_requests_total',
    'counter',
    'Requests per worker.',
    workers.map((w) => [`{worker="${w.workerId}"}`, w.requests]),
  );
  metric(
    'gateway_worker_rss_bytes',
    'gauge',
    'Resident memory per worker.',
    workers.map((w) => [`{worker="${w.workerId}"}`, w.memory.rss]),
  );
  metric(
    'gateway_worker_heap_used_bytes',
    'gauge',
    'V8 heap used per worker.',
    workers.map((w) => [`{worker="${w.workerId}"}`, w.memory.heapUsed]),
  );
  metric(
    'gateway_worker_cpu_percent',
    'gauge',
    'CPU use per worker over the last second (100 = one core).',
    workers.map((w) => [`{worker="${w.workerId}"}`, w.cpuPercent]),
  );
  metric('gateway_workers', 'gauge', 'Processes serving requests (1 for a single-process gateway).', [['', workers.length]]);
  metric('gateway_worker_restarts_total', 'counter', 'Workers restarted after they exited.', [['', control.workerRestarts]]);
  metric('gateway_worker_watchdog_kills_total', 'counter', 'Workers killed because their event loop did not answer the heartbeat within server.watchdogMs.', [
    ['', control.watchdogKills],
  ]);
  metric('gateway_config_reload_failures_total', 'counter', 'Config reloads rejected (the previous config kept serving).', [['', control.reloadFailures]]);
  metric('gateway_protocol_requests_total', 'counter', 'Requests by client protocol.', [
    ['{protocol="h1"}', m.protocols.h1],
    ['{protocol="h2"}', m.protocols.h2],
  ]);

  metric(
    'gateway_overloaded',
    'gauge',
    '1 while the worker sheds new requests (event-loop delay or heap over threshold).',
    workers.map((w) => [`{worker="${w.workerId}"}`, w.sections.limits.overload?.overloaded === true ? 1 : 0]),
  );
  metric(
    'gateway_overload_shed_total',
    'counter',
    'Requests answered 503 by overload protection.',
    workers.map((w) => [`{worker="${w.workerId}"}`, w.sections.limits.overload?.shed ?? 0]),
  );
  metric(
    'gateway_per_ip_refused_total',
    'counter',
    'Connections refused by the per-IP connection cap.',
    workers.map((w) => [`{worker="${w.workerId}"}`, w.sections.limits.perIpRefused]),
  );

  const tls = (key: keyof ProtocolStats): number => workers.reduce((sum, w) => sum + w.sections.tls[key], 0);
  metric('gateway_tls_handshake_errors_total', 'counter', 'Failed TLS handshakes.', [['', tls('tlsHandshakeErrors')]]);
  metric('gateway_h2_sessions_total', 'counter', 'HTTP/2 sessions opened.', [['', tls('h2Sessions')]]);
  metric('gateway_h2_active_sessions', 'gauge', 'HTTP/2 sessions open now.', [['', tls('h2ActiveSessions')]]);
  metric('gateway_h2_client_resets_total', 'counter', 'HTTP/2 streams reset by the client before the answer was finished.', [['', tls('h2ClientResets')]]);
  metric('gateway_h2_rapid_reset_closes_total', 'counter', 'HTTP/2 sessions closed by the rapid-reset guard.', [['', tls('h2RapidResetCloses')]]);
  metric(
    'gateway_server_handler_errors_total',
    'counter',
    'Request/upgrade handler exceptions the server engine caught by cutting the connection or HTTP/2 stream.',
    [['', tls('handlerErrors')]],
  );
  metric('gateway_redirects_total', 'counter', 'HTTP to HTTPS redirects answered.', [['', tls('redirects')]]);

  // Plugin hook statistics and plugin-owned counters, summed over workers.
  const hookSamples = new Map<string, HookStats>();
  const counters = new Map<string, { help: string; value: number }>();
  for (const w of workers) {
    for (const [plugin, p] of Object.entries(w.sections.plugins)) {
      for (const [hook, s] of Object.entries(p.hooks)) {
        if (s.calls === 0 && s.errors === 0) continue;
        const key = `{plugin="${esc(plugin)}",hook="${hook}"}`;
        const acc = hookSamples.get(key) ?? { calls: 0, errors: 0, totalMs: 0 };
        acc.calls += s.calls;
        acc.errors += s.errors;
        acc.totalMs += s.totalMs;
        hookSamples.set(key, acc);
      }
    }
    for (const [name, c] of Object.entries(w.sections.counters)) {
      const acc = counters.get(name) ?? { help: c.help, value: 0 };
      acc.value += c.value;
      counters.set(name, acc);
    }
  }
  metric(
    'gateway_plugin_hook_calls_total',
    'counter',
    'Plugin hook invocations.',
    [...hookSamples].map(([k, s]) => [k, s.calls]),
  );
  metric(
    'gateway_plugin_hook_errors_total',
    'counter',
    'Plugin hook invocations that threw.',
    [...hookSamples].map(([k, s]) => [k, s.errors]),
  );
  metric(
    'gateway_plugin_hook_seconds_total',
    'counter',
    'Time spent in plugin hooks.',
    [...hookSamples].map(([k, s]) => [k, s.totalMs / 1000]),
  );
  for (const [name, c] of counters) metric(`gateway_plugin_${sanitize(name)}`, 'counter', c.help, [['', c.value]]);

  // Merged over workers the way alert rules see it: a target counts unhealthy (or open) if any worker sees it so.
  const health = upstreamHealth(workers);
  metric(
    'gateway_upstream_unhealthy_targets',
    'gauge',
    'Targets out of rotation (health checks) in at least one worker.',
    [...health].map(([u, h]) => [`{upstream="${esc(u)}"}`, h.unhealthy]),
  );
  metric(
    'gateway_upstream_open_circuits',
    'gauge',
    'Targets whose circuit breaker is open in at least one worker.',
    [...health].map(([u, h]) => [`{upstream="${esc(u)}"}`, h.openCircuits]),
  );

  // Upstream series are rendered by the proxy module per worker; sum samples with identical name+labels, except
  // the few that describe one thing every worker sees alike (see UPSTREAM_NOT_SUMMED).
  const upstream = new Map<string, number>();
  const headers: string[] = [];
  for (const w of workers) {
    for (const line of w.sections.upstreamPrometheus) {
      if (line.startsWith('#')) {
        if (!headers.includes(line)) headers.push(line);
        continue;
      }
      const i = line.lastIndexOf(' ');
      const key = line.slice(0, i);
      const v = Number(line.slice(i + 1));
      const prev = upstream.get(key);
      const combine = prev === undefined ? undefined : UPSTREAM_NOT_SUMMED.get(key.slice(0, key.indexOf('{')));
      upstream.set(key, prev === undefined ? v : combine === undefined ? prev + v : combine(prev, v));
    }
  }
  if (upstream.size > 0 || headers.length > 0) {
    // Keep each HELP/TYPE header directly above its samples.
    const byName = new Map<string, string[]>();
    for (const [k, v] of upstream) {
      const name = k.split('{')[0]!;
      const list = byName.get(name) ?? [];
      list.push(`${k} ${v}`);
      byName.set(name, list);
    }
    const emitted = new Set<string>();
    for (const h of headers) {
      const name = h.split(' ')[2]!;
      out.push(h);
      if (h.startsWith('# TYPE') && !emitted.has(name)) {
        out.push(...(byName.get(name) ?? []));
        emitted.add(name);
      }
    }
    for (const [name, lines] of byName) if (!emitted.has(name)) out.push(...lines);
  }
  return out.join('\n') + '\n';
}

function esc(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function sanitize(s: string): string {
  return s.replace(/[^a-zA-Z0-9_]/g, '_');
}
