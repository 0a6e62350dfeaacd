import { isIP } from 'node:net';
import { alertConfigWarnings } from '../alerts/config-check.js';
import { routeUpstreams, trafficWarnings } from './traffic-check.js';
import type { GatewayConfig } from './types.js';

/**
 * What a valid config says that is probably not what its author meant. The gateway starts anyway (`--check` exits
 * 0 and prints these; startup logs them), because each can be deliberate: an upstream kept for a route about to be
 * added, an admin API behind a firewall.
 */
export function configWarnings(config: GatewayConfig): string[] {
  const warnings: string[] = [];
  if (config.routes.length === 0) warnings.push('/routes: no routes: every request will be answered 404');

  const used = new Set(config.routes.flatMap(routeUpstreams));
  for (const name of Object.keys(config.upstreams)) {
    if (!used.has(name)) warnings.push(`/upstreams/${name}: no route uses this upstream`);
  }

  for (const [name, u] of Object.entries(config.upstreams)) {
    const urls = u.targets.map((t) => t.url);
    if (u.tls !== undefined && !urls.some((url) => url.startsWith('https:') || url.startsWith('dns+srv:'))) {
      warnings.push(`/upstreams/${name}/tls: no effect: every target is http:// (tls applies to https:// and dns+srv:// targets)`);
    }
    if (u.dns !== undefined && !urls.some((url) => url.startsWith('dns+srv:') || isIP(hostOf(url)) === 0)) {
      warnings.push(`/upstreams/${name}/dns: no effect: every target is an IP address`);
    }
  }

  const exposed = adminExposedWithoutAuth(config);
  if (exposed !== null) warnings.push(exposed);

  if (config.server.workerMode === 'threads' && config.server.workers === 0) {
    warnings.push('/server/workerMode: ignored with server.workers 0 (the gateway serves in one process)');
  }

  warnings.push(...alertConfigWarnings(config));
  warnings.push(...trafficWarnings(config));

  return warnings;
}

/**
 * The warning for an admin listener reachable from other machines with no `admin.auth`, or null. Startup also
 * logs it on its own line (core/cli.ts): the listener serves /config, reloads and the dashboard to anyone.
 */
export function adminExposedWithoutAuth(config: GatewayConfig): string | null {
  if (!config.admin.enabled || config.admin.auth !== undefined || isLoopback(config.admin.host)) return null;
  return `/admin/host: ${config.admin.host} is not a loopback address, and the admin API has no authentication (anyone who reaches it can read /config, see the dashboard and trigger reloads; set admin.auth)`;
}

/** A target URL's host, IPv6 brackets removed. */
function hostOf(url: string): string {
  const h = new URL(url).hostname;
  return h.startsWith('[') ? h.slice(1, -1) : h;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}
