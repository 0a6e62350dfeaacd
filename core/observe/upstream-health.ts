import type { WorkerMetricsExport } from './metrics.js';

export interface UpstreamHealth {
  targets: number;
  /** targets out of rotation (active or passive health) in at least one worker */
  unhealthy: number;
  /** targets whose circuit breaker is open in at least one worker */
  openCircuits: number;
}

interface TargetSnapshot {
  url?: unknown;
  healthy?: unknown;
  circuit?: unknown;
}

/**
 * Target health per upstream, merged over workers. Each worker runs its own checks and breakers, so they can
 * disagree for a moment; a target counts as down if any worker has taken it out, which is what an operator
 * alerting on "users has an unhealthy target" wants to hear first. Read by /metrics and by the alert rules, so
 * both say the same thing.
 */
export function upstreamHealth(workers: WorkerMetricsExport[]): Map<string, UpstreamHealth> {
  const acc = new Map<string, { targets: Set<string>; unhealthy: Set<string>; open: Set<string> }>();
  for (const w of workers) {
    for (const [name, stats] of Object.entries(w.sections.upstreams)) {
      let a = acc.get(name);
      if (a === undefined) acc.set(name, (a = { targets: new Set(), unhealthy: new Set(), open: new Set() }));
      const targets = (stats as { targets?: unknown }).targets;
      if (!Array.isArray(targets)) continue;
      for (const t of targets as TargetSnapshot[]) {
        const url = String(t.url);
        a.targets.add(url);
        if (t.healthy === false) a.unhealthy.add(url);
        if (t.circuit === 'open') a.open.add(url);
      }
    }
  }
  const out = new Map<string, UpstreamHealth>();
  for (const [name, a] of acc) out.set(name, { targets: a.targets.size, unhealthy: a.unhealthy.size, openCircuits: a.open.size });
  return out;
}
