import { isIP } from 'node:net';
import { alertConfigWarnings } from '../alerts/config-check.js';
import type { GatewayConfig } from './types.js';

/**
 * What a valid config says that is probably not what its author meant. The gateway starts anyway (`--check` exits
 * 0 and prints these; startup logs them), because each can be deliberate: an upstream kept for a route about to be
 * added, an admin API behind a firewall.
 */
export function configWarnings(config: GatewayConfig): string[] {
  const warnings: string[] = [];
  if (config.routes.length === 0) warnings.push('/routes: no routes: every request will be answered 404');

  const used = new Set(config.routes.map((r) => r.upstream).filter((u) => u !== undefined));
  for (const name of Object.keys(config.upstreams)) {
    if (!used.has(name)) warnings.push(`/upstreams/${name}: no route uses this upstream`);
  }

  if (config.admin.enabled && !isLoopback(config.admin.host)) {
    warnings.push(
      `/admin/host: ${config.admin.host} is not a loopback address, and the admin API has no authentication (anyone who reaches it can read /config and trigger reloads)`,
    );
  }

  if (config.server.workerMode === 'threads' && config.server.workers === 0) {
    warnings.push('/server/workerMode: ignored with server.workers 0 (the gateway serves in one process)');
  }

  warnings.push(...alertConfigWarnings(config));

  return warnings;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}
