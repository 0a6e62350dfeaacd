import type { GatewayConfig } from '../config/types.js';
import type { HeartbeatReport } from '../data/server.js';
import type { WorkerMetricsExport } from '../observe/metrics.js';

/**
 * The orchestrator ⇄ worker protocol, over the cluster IPC channel of each worker process (core/control/worker.ts).
 * Workers are processes only: workerMode "threads" is refused (see THREADS_UNSUPPORTED in core/config/validator.ts).
 */
export type { HeartbeatReport };

export type ToWorker =
  | { type: 'CONFIG_UPDATE'; version: number; config: GatewayConfig }
  | { type: 'METRICS_REQUEST'; id: number }
  | { type: 'SHUTDOWN'; deadlineMs: number }
  /** the watchdog's question (server.watchdogMs): answered by a HEARTBEAT from the worker's event loop */
  | { type: 'PING'; id: number }
  /** the primary got SIGUSR2: reopen the access log file (logrotate moved it) */
  | { type: 'REOPEN_LOGS' };

export type FromWorker =
  /** sent once the worker listens for messages: IPC messages sent before that are dropped, so 'online' is too early */
  | { type: 'HELLO'; workerId: number }
  /** the worker listens, serving config `version` (sent once per process) */
  | { type: 'READY'; workerId: number; port: number; version: number }
  | { type: 'CONFIG_APPLIED'; workerId: number; version: number }
  | { type: 'CONFIG_REJECTED'; workerId: number; version: number; errors: string[] }
  | { type: 'METRICS_RESPONSE'; workerId: number; id: number; metrics: WorkerMetricsExport }
  | { type: 'FATAL'; workerId: number; errors: string[] }
  | ({ type: 'HEARTBEAT'; workerId: number; id: number } & HeartbeatReport);

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/**
 * Why `msg` is not a FromWorker message (or a worker's RPC request), or null when it is one. Plugins run in the
 * worker and may call process.send themselves, so the primary checks the fields it is about to use: a stray
 * `{ type: 'READY' }` must not count as a worker listening on port undefined.
 */
export function notWorkerMessage(msg: unknown): string | null {
  if (!isObject(msg) || typeof msg.type !== 'string') return 'not an object with a string "type"';
  const m = msg;
  const ok = ((): boolean => {
    switch (m.type) {
      case 'HELLO':
        return isNum(m.workerId);
      case 'READY':
        return isNum(m.workerId) && isNum(m.port) && isNum(m.version);
      case 'CONFIG_APPLIED':
        return isNum(m.workerId) && isNum(m.version);
      case 'CONFIG_REJECTED':
        return isNum(m.workerId) && isNum(m.version) && isStrings(m.errors);
      case 'METRICS_RESPONSE':
        return isNum(m.workerId) && isNum(m.id) && isObject(m.metrics) && isObject(m.metrics.sections);
      case 'FATAL':
        return isNum(m.workerId) && isStrings(m.errors);
      case 'HEARTBEAT':
        return isNum(m.workerId) && isNum(m.id) && isNum(m.inFlight) && (m.oldest === null || isObject(m.oldest));
      case 'RPC':
        return isNum(m.id) && typeof m.service === 'string';
      default:
        return false;
    }
  })();
  return ok ? null : `a "${m.type}" message without the fields it needs, or an unknown type`;
}
