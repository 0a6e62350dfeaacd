import type { Logger } from '../observe/logger.js';

/** Bound on flushing the fatal log line before the process exits anyway. */
const FATAL_FLUSH_MS = 500;

/**
 * An exception nobody catches (plugin code outside a hook: a timer or an event handler of its own that throws, a
 * promise rejection nobody handles) leaves the process in a state nobody knows, so the process still exits 1, as
 * Node's default does. What changes: the cause is in the JSON log as one `fatal` line, not only as a stack on
 * stderr that log shipping often drops. In cluster mode the primary then replaces the worker; with
 * `server.workers: 0` the supervisor (systemd, Kubernetes) restarts the process.
 */
export function exitOnUncaught(logger: () => Logger | null): void {
  process.on('uncaughtException', (err: unknown, origin: string) => {
    // what Node itself would have printed
    process.stderr.write(`${origin}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    const log = logger();
    if (log === null) process.exit(1);
    log.fatal({ err, origin }, 'uncaught exception (plugin code outside a hook, e.g. a timer of its own, or an unhandled rejection); the process exits');
    setTimeout(() => process.exit(1), FATAL_FLUSH_MS).unref();
    log.flush(() => process.exit(1));
  });
}
