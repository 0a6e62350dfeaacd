import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Scenario } from '../../scenarios/schema.js';
import { distScript } from './paths.js';
import type { ResolvedRoute } from './traffic.js';
import { FAMILIES, type VariantSpec } from './variants.js';

export interface GatewayPorts {
  port: number;
  adminPort: number;
  /** upstream stub port (proxy mode) */
  upstreamPort?: number;
  /** a second stub, the `stub-mirror` upstream (proxy mode with routeOptionSets); absent: the first stub */
  mirrorPort?: number;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Deep merge for config objects: objects merge, everything else (arrays included) replaces. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? deepMerge(out[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

/**
 * Writes N plugin modules named noop-1 … noop-N into dir (the gateway loads each .js/.mjs file of a pluginDir,
 * and a plugin's name is part of the module, so N instances need N files).
 */
export function writeNoopPlugins(dir: string, count: number): void {
  mkdirSync(dir, { recursive: true });
  const impl = pathToFileURL(distScript('plugins/noop.js')).href;
  for (let i = 1; i <= count; i++) {
    writeFileSync(join(dir, `noop-${i}.mjs`), `import { createNoopPlugin } from ${JSON.stringify(impl)};\nexport default createNoopPlugin('noop-${i}');\n`);
  }
}

/** The gateway config for one variant: scenario.gateway merged under the runner's ports, routes and variants. */
export function buildGatewayConfig(
  scenario: Scenario,
  routes: ResolvedRoute[],
  variant: VariantSpec,
  ports: GatewayPorts,
  pluginDir: string,
): Record<string, unknown> {
  const generated: Record<string, unknown> = {
    server: { host: '127.0.0.1', port: ports.port, workers: variant.workers ?? 0 },
    admin: { enabled: true, host: '127.0.0.1', port: ports.adminPort },
    logging: { level: 'warn', accessLog: false },
    upstreams: ports.upstreamPort !== undefined ? { stub: { targets: [`http://127.0.0.1:${ports.upstreamPort}`] } } : {},
    routes: routes.map((r) => ({
      ...(r.name !== undefined ? { name: r.name } : {}),
      path: r.path,
      methods: r.methods,
      ...(r.response !== undefined
        ? { response: { status: r.response.status, headers: r.response.headers ?? {}, body: r.response.body ?? '' } }
        : { upstream: 'stub' }),
    })),
  };
  const variants: Record<string, string> = {};
  for (const family of FAMILIES) {
    if (variant[family] !== undefined) variants[family] = variant[family]!;
  }
  if (Object.keys(variants).length > 0) generated.variants = variants;
  const plugins = variant.plugins ?? 0;
  if (plugins > 0) {
    generated.pluginDirs = [pluginDir];
    generated.plugins = Array.from({ length: plugins }, (_, i) => ({ name: `noop-${i + 1}`, enabled: true, options: {} }));
  }
  if (variant.pluginSet !== undefined) generated.plugins = scenario.pluginSets![variant.pluginSet]!;
  if (variant.accessLog !== undefined) generated.logging = { level: 'warn', accessLog: scenario.accessLogs![variant.accessLog] };
  if (variant.routeOptions !== undefined && ports.upstreamPort !== undefined) {
    const options = scenario.routeOptionSets![variant.routeOptions]!;
    generated.routes = (generated.routes as Array<Record<string, unknown>>).map((r) => (r.upstream === undefined ? r : { ...r, ...options }));
    // another stub process when the runner started one (a mirror is another service), else the same one under another name
    const mirrorPort = ports.mirrorPort ?? ports.upstreamPort;
    generated.upstreams = { ...(generated.upstreams as Record<string, unknown>), 'stub-mirror': { targets: [`http://127.0.0.1:${mirrorPort}`] } };
  }
  // The scenario may tune anything, but the runner owns where the gateway listens and what it serves.
  return deepMerge(scenario.gateway ?? {}, generated);
}
