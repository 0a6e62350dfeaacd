import type { AggregatedMetrics } from '../observe/metrics.js';

/** What the admin API reads; implemented by the orchestrator (cluster) and by an in-process gateway. */
export interface AdminSource {
  ready(): boolean;
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
