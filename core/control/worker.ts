import cluster from 'node:cluster';
import { ConfigError } from '../base/errors.js';
import type { GatewayConfig } from '../config/types.js';
import { createLogger, type Logger } from '../observe/logger.js';
import { exitOnUncaught } from './fatal.js';
import { Gateway } from './gateway.js';
import { sendToPrimary } from './ipc.js';
import type { FromWorker, ToWorker } from './messages.js';

/** After a FATAL boot error: time for the message to cross the IPC channel before the process exits. */
const FATAL_EXIT_DELAY_MS = 50;
/** Drain deadline of a worker signalled directly, or orphaned, before it ever had a config (else server.shutdownTimeoutMs). */
const UNCONFIGURED_SHUTDOWN_MS = 10_000;

/**
 * A cluster worker: waits for its first CONFIG_UPDATE, serves on the shared listening socket, applies later
 * config updates, answers metrics requests, and drains on SHUTDOWN (or SIGTERM from outside).
 *
 * Boot and updates go through one queue: an update that arrives while the gateway is still being created
 * (plugin init, listen) is held and applied once it listens, so a worker never creates or listens twice.
 * Only the newest waiting update is kept: intermediate versions would be replaced at once anyway.
 */
export function runWorker(): void {
  const workerId = Number(process.env.GATEWAY_WORKER_ID ?? cluster.worker?.id ?? 0);
  const workerCount = Number(process.env.GATEWAY_WORKER_COUNT ?? 1);
  let gateway: Gateway | null = null;
  let shuttingDown = false;
  let appliedVersion = 0;
  let waiting: { version: number; config: GatewayConfig } | null = null;
  let busy = false;
  // Created from the first config so that what happens before the gateway exists can be logged too.
  let logger: Logger | null = null;
  const send = (msg: FromWorker): void => void sendToPrimary(msg);

  const shutdown = async (deadlineMs: number): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    if (gateway !== null) await gateway.close(deadlineMs);
    process.exit(0);
  };

  const boot = async (version: number, config: GatewayConfig): Promise<boolean> => {
    try {
      const gw = await Gateway.create(config, { workerId, workerCount, logger: logger ?? undefined });
      const port = await gw.listen(config.server.port, config.server.host);
      gateway = gw;
      appliedVersion = version;
      send({ type: 'READY', workerId, port, version });
      return true;
    } catch (err) {
      const errors = err instanceof ConfigError ? err.errors : [(err as Error).message];
      send({ type: 'FATAL', workerId, errors });
      setTimeout(() => process.exit(1), FATAL_EXIT_DELAY_MS);
      return false;
    }
  };

  const drain = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    while (waiting !== null && !shuttingDown) {
      const next = waiting;
      waiting = null;
      if (gateway === null) {
        if (!(await boot(next.version, next.config))) break;
        continue;
      }
      // The orchestrator's versions only grow; an older one (a greeting answered after a reload) is stale.
      if (next.version <= appliedVersion) continue;
      let r: { ok: boolean; errors: string[] };
      try {
        r = await gateway.apply(next.config, next.version);
      } catch (err) {
        // A throw here would leave `busy` set and every later update queued forever.
        r = { ok: false, errors: [`/: applying config ${next.version} failed: ${(err as Error).message}`] };
      }
      if (r.ok) appliedVersion = next.version;
      send(r.ok ? { type: 'CONFIG_APPLIED', workerId, version: next.version } : { type: 'CONFIG_REJECTED', workerId, version: next.version, errors: r.errors });
    }
    busy = false;
  };

  process.on('message', (msg: ToWorker) => {
    switch (msg.type) {
      case 'CONFIG_UPDATE':
        logger ??= createLogger(msg.config.logging, { pid: process.pid, worker: workerId });
        if (gateway === null && busy) logger.info({ version: msg.version }, 'config update arrived while the worker boots; applied once it listens');
        if (waiting === null || msg.version > waiting.version) waiting = { version: msg.version, config: msg.config };
        void drain();
        break;
      case 'METRICS_REQUEST':
        if (gateway !== null) send({ type: 'METRICS_RESPONSE', workerId, id: msg.id, metrics: gateway.exportMetrics() });
        break;
      case 'SHUTDOWN':
        void shutdown(msg.deadlineMs);
        break;
      case 'PING':
        // Answered right here, on this worker's event loop: a loop held by a busy plugin cannot answer, and the
        // primary's watchdog (server.watchdogMs) replaces the worker.
        send({ type: 'HEARTBEAT', workerId, id: msg.id, ...(gateway?.server.heartbeat() ?? { inFlight: 0, oldest: null }) });
        break;
      case 'REOPEN_LOGS':
        gateway?.reopenLogs();
        break;
    }
  });

  send({ type: 'HELLO', workerId });

  // The primary handles signals for the whole group; a worker signalled directly drains on its own.
  process.on('SIGTERM', () => void shutdown(gateway?.currentConfig.server.shutdownTimeoutMs ?? UNCONFIGURED_SHUTDOWN_MS));
  process.on('SIGINT', () => undefined);
  // like the primary: a SIGUSR2 sent to the whole process group must not end a serving worker
  process.on('SIGUSR2', () => undefined);
  exitOnUncaught(() => logger);
  // The primary is gone (killed, crashed): no new connection reaches this worker any more, but clients still
  // wait on the requests it is serving, so it drains like on SIGTERM. Cluster's own 'disconnect' handler would
  // exit at once, cutting them, unless exitedAfterDisconnect is set (documented on Worker.process).
  cluster.worker!.exitedAfterDisconnect = true;
  process.on('disconnect', () => void shutdown(gateway?.currentConfig.server.shutdownTimeoutMs ?? UNCONFIGURED_SHUTDOWN_MS));
}
