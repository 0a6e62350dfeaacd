import cluster from 'node:cluster';
import { Gateway } from './gateway.js';
import { ConfigError } from './config/validator.js';
import type { FromWorker, ToWorker } from './messages.js';

/**
 * A cluster worker: waits for its first CONFIG_UPDATE, serves on the shared listening socket, applies later
 * config updates, answers metrics requests, and drains on SHUTDOWN (or SIGTERM from outside).
 */
export function runWorker(): void {
  const workerId = Number(process.env.GATEWAY_WORKER_ID ?? cluster.worker?.id ?? 0);
  const workerCount = Number(process.env.GATEWAY_WORKER_COUNT ?? 1);
  let gateway: Gateway | null = null;
  let shuttingDown = false;
  const send = (msg: FromWorker): void => {
    if (process.connected) process.send!(msg);
  };

  const shutdown = async (deadlineMs: number): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    if (gateway !== null) await gateway.close(deadlineMs);
    process.exit(0);
  };

  process.on('message', (msg: ToWorker) => {
    switch (msg.type) {
      case 'CONFIG_UPDATE':
        if (gateway === null) {
          void (async () => {
            try {
              gateway = await Gateway.create(msg.config, { workerId, workerCount });
              const port = await gateway.listen(msg.config.server.port, msg.config.server.host);
              send({ type: 'READY', workerId, port });
            } catch (err) {
              const errors = err instanceof ConfigError ? err.errors : [(err as Error).message];
              send({ type: 'FATAL', workerId, errors });
              setTimeout(() => process.exit(1), 50);
            }
          })();
        } else {
          void gateway.apply(msg.config, msg.version).then((r) =>
            send(r.ok ? { type: 'CONFIG_APPLIED', workerId, version: msg.version } : { type: 'CONFIG_REJECTED', workerId, version: msg.version, errors: r.errors }),
          );
        }
        break;
      case 'METRICS_REQUEST':
        if (gateway !== null) send({ type: 'METRICS_RESPONSE', workerId, id: msg.id, metrics: gateway.exportMetrics() });
        break;
      case 'SHUTDOWN':
        void shutdown(msg.deadlineMs);
        break;
    }
  });

  send({ type: 'HELLO', workerId });

  // The primary handles signals for the whole group; a worker signalled directly drains on its own.
  process.on('SIGTERM', () => void shutdown(gateway?.currentConfig.server.shutdownTimeoutMs ?? 10_000));
  process.on('SIGINT', () => undefined);
  process.on('disconnect', () => void shutdown(1000));
}
