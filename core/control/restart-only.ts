import { listenerKind } from '../base/listener-kind.js';
import type { GatewayConfig } from '../config/types.js';

/**
 * Config fields read once per process (listener, object pool, metrics recorders, server options handed to
 * Node's http server at creation, the per-IP and overload monitors, the admin listener, the logger). A hot
 * reload cannot change them: they keep their running values until a restart, and the reload says so.
 * Everything else (routes, plugins, upstreams, trustedProxies, TLS material, HTTP/2 limits, HSTS,
 * accessLog, shutdownTimeoutMs) applies at once.
 */
const RESTART_ONLY: ReadonlyArray<readonly [string, (c: GatewayConfig) => unknown]> = [
  ['server.host', (c) => c.server.host],
  ['server.port', (c) => c.server.port],
  ['server.workers', (c) => c.server.workers],
  ['server.workerMode', (c) => c.server.workerMode],
  ['server.contextPoolSize', (c) => c.server.contextPoolSize],
  ['server.keepAliveTimeoutMs', (c) => c.server.keepAliveTimeoutMs],
  ['server.headersTimeoutMs', (c) => c.server.headersTimeoutMs],
  ['server.requestTimeoutMs', (c) => c.server.requestTimeoutMs],
  ['server.maxHeaderSize', (c) => c.server.maxHeaderSize],
  ['server.connectionsCheckingIntervalMs', (c) => c.server.connectionsCheckingIntervalMs],
  ['server.maxUrlLength', (c) => c.server.maxUrlLength],
  ['server.maxHeaderCount', (c) => c.server.maxHeaderCount],
  ['server.maxConnectionsPerIp', (c) => c.server.maxConnectionsPerIp],
  ['server.overload', (c) => c.server.overload],
  ['server.redirectHttp', (c) => c.server.redirectHttp],
  // TLS material and HTTP/2 limits reload, but the kind of listener (http, https, h2, h2c) is fixed at creation.
  ['server.tls/server.http2 (listener protocol)', (c) => listenerKind(c.server)],
  ['variants.pool', (c) => c.variants.pool],
  ['variants.metrics', (c) => c.variants.metrics],
  // the engine owns the listening socket and every open connection
  ['variants.server', (c) => c.variants.server],
  ['admin', (c) => c.admin],
  ['logging.level', (c) => c.logging.level],
  ['logging.pretty', (c) => c.logging.pretty],
];

export interface RestartOnlyResult {
  /** `next` with every restart-only field set back to its running value: what actually serves */
  config: GatewayConfig;
  /** the fields whose new value waits for a restart, e.g. ["server.port", "variants.pool"] */
  pending: string[];
}

/**
 * Splits a reload into what applies now and what waits for a restart. `boundPort` is the port actually
 * listened on: a config saying 0 (ephemeral) and one naming the bound port both describe the running listener.
 */
export function splitRestartOnly(running: GatewayConfig, next: GatewayConfig, boundPort = 0): RestartOnlyResult {
  const pending: string[] = [];
  for (const [field, read] of RESTART_ONLY) {
    if (field === 'server.port' && boundPort !== 0 && next.server.port === boundPort) continue;
    if (!sameValue(read(running), read(next))) pending.push(field);
  }
  if (pending.length === 0) return { config: next, pending };
  const r = running;
  const config: GatewayConfig = {
    ...next,
    server: {
      ...next.server,
      host: r.server.host,
      port: r.server.port,
      workers: r.server.workers,
      workerMode: r.server.workerMode,
      contextPoolSize: r.server.contextPoolSize,
      keepAliveTimeoutMs: r.server.keepAliveTimeoutMs,
      headersTimeoutMs: r.server.headersTimeoutMs,
      requestTimeoutMs: r.server.requestTimeoutMs,
      maxHeaderSize: r.server.maxHeaderSize,
      connectionsCheckingIntervalMs: r.server.connectionsCheckingIntervalMs,
      maxUrlLength: r.server.maxUrlLength,
      maxHeaderCount: r.server.maxHeaderCount,
      maxConnectionsPerIp: r.server.maxConnectionsPerIp,
      overload: r.server.overload,
      redirectHttp: r.server.redirectHttp,
    },
    variants: { ...next.variants, pool: r.variants.pool, metrics: r.variants.metrics, server: r.variants.server },
    admin: r.admin,
    logging: { ...next.logging, level: r.logging.level, pretty: r.logging.pretty },
  };
  if (config.server.redirectHttp === undefined) delete config.server.redirectHttp;
  return { config, pending };
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
