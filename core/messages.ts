import type { GatewayConfig } from './config/types.js';
import type { WorkerMetricsExport } from './metrics.js';

/**
 * The orchestrator ⇄ worker protocol, over the cluster IPC channel of each worker process (core/worker.ts).
 * Workers are processes only: workerMode "threads" is refused (see THREADS_UNSUPPORTED in core/config/validator.ts).
 */
export type ToWorker =
  { type: 'CONFIG_UPDATE'; version: number; config: GatewayConfig } | { type: 'METRICS_REQUEST'; id: number } | { type: 'SHUTDOWN'; deadlineMs: number };

export type FromWorker =
  /** sent once the worker listens for messages: IPC messages sent before that are dropped, so 'online' is too early */
  | { type: 'HELLO'; workerId: number }
  /** the worker listens, serving config `version` (sent once per process) */
  | { type: 'READY'; workerId: number; port: number; version: number }
  | { type: 'CONFIG_APPLIED'; workerId: number; version: number }
  | { type: 'CONFIG_REJECTED'; workerId: number; version: number; errors: string[] }
  | { type: 'METRICS_RESPONSE'; workerId: number; id: number; metrics: WorkerMetricsExport }
  | { type: 'FATAL'; workerId: number; errors: string[] };
