import type { AggregatedMetrics } from '../observe/metrics.js';

/** What the admin API reads; implemented by the orchestrator (cluster) and by an in-process gateway. */
export interface AdminSource {
  ready(): boolean;
  /**
   * Liveness for GET /health: false once restarting this process is the only fix left (in cluster mode: no worker
   * could take a request for longer than the watchdog can fix). Absent: always live while it answers.
   */
  live?(): boolean;
  stats(): Promise<{ configVersion: number; lastReloadError: string[] | null; metrics: AggregatedMetrics; workers: unknown[] } & Record<string, unknown>>;
  metricsText(): Promise<string>;
  config(): unknown;
  reload(): Promise<{ ok: boolean; version: number; errors: string[] }>;
  /**
   * GET /alerts' answer (core/alerts/engine.ts AlertsView) for the dashboard, or null when alerting is not
   * configured (no rule); absent: not built in
   */
  alerts?(): Promise<unknown>;
}
