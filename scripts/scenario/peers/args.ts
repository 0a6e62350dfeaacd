import { parseArgs } from 'node:util';

/** What every Node peer process is told: where to listen, where the upstream stub is, which path prefixes to route. */
export interface PeerArgs {
  port: number;
  upstreamPort: number;
  /** route prefixes ("/api", "/users"): each forwards its whole subtree, path unchanged */
  prefixes: string[];
}

/** argv: --port N --upstream-port N [--prefix /p]… */
export function peerArgs(argv: string[] = process.argv.slice(2)): PeerArgs {
  const { values } = parseArgs({
    args: argv,
    options: { port: { type: 'string' }, 'upstream-port': { type: 'string' }, prefix: { type: 'string', multiple: true } },
  });
  const port = Number(values.port);
  const upstreamPort = Number(values['upstream-port']);
  if (!Number.isInteger(port) || !Number.isInteger(upstreamPort)) throw new Error('usage: --port N --upstream-port N [--prefix /p]…');
  return { port, upstreamPort, prefixes: values.prefix ?? [] };
}

/** Graceful stop on SIGTERM/SIGINT (the runner sends SIGTERM, then SIGKILL after a grace period). */
export function onStop(close: () => Promise<unknown> | void): void {
  const stop = () => {
    void Promise.resolve(close()).finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
