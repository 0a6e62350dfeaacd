import { metricsVariants, DEFAULT_METRICS } from '../variants/metrics/index.js';
import { poolVariants, DEFAULT_POOL } from '../variants/pool/index.js';
import { routerVariants, DEFAULT_ROUTER } from '../variants/router/index.js';
import { serverEngineVariants, DEFAULT_SERVER_ENGINE } from '../variants/server/index.js';
import { upstreamClientVariants, DEFAULT_UPSTREAM_CLIENT } from '../variants/upstream/index.js';
import type { RecorderFactory } from './contracts/metrics.js';
import type { PoolFactory } from './contracts/pool.js';
import type { RouterFactory } from './contracts/router.js';
import type { ServerEngineFactory } from './contracts/server.js';
import type { UpstreamClientFactory } from './contracts/upstream.js';
import type { VariantFactories } from './contracts/variants.js';

/**
 * The composition root of the variant families: the only core module that imports variants/ (npm run lint
 * enforces it). Every swappable family, by name: what config `variants` and the CLI's --router/--pool/--metrics
 * select from; each family implements its contract in core/contracts/ (router, pool, metrics, upstream, server).
 * The control plane resolves a config's selection once (resolveVariants) and hands the factories down.
 */
export const variantFamilies = {
  router: { variants: routerVariants as Record<string, RouterFactory>, default: DEFAULT_ROUTER },
  pool: { variants: poolVariants as Record<string, PoolFactory>, default: DEFAULT_POOL },
  metrics: { variants: metricsVariants as Record<string, RecorderFactory>, default: DEFAULT_METRICS },
  upstream: { variants: upstreamClientVariants as Record<string, UpstreamClientFactory>, default: DEFAULT_UPSTREAM_CLIENT },
  server: { variants: serverEngineVariants as Record<string, ServerEngineFactory>, default: DEFAULT_SERVER_ENGINE },
} as const;

export type VariantFamily = keyof typeof variantFamilies;

export function variantNames(family: VariantFamily): string[] {
  return Object.keys(variantFamilies[family].variants);
}

export function hasVariant(family: VariantFamily, name: string): boolean {
  return Object.prototype.hasOwnProperty.call(variantFamilies[family].variants, name);
}

export function routerFactory(name: string): RouterFactory {
  return variantFamilies.router.variants[name]!;
}

export function poolFactory(name: string): PoolFactory {
  return variantFamilies.pool.variants[name]!;
}

export function recorderFactory(name: string): RecorderFactory {
  return variantFamilies.metrics.variants[name]!;
}

export function upstreamClientFactory(name: string): UpstreamClientFactory {
  return variantFamilies.upstream.variants[name]!;
}

export function serverEngineFactory(name: string): ServerEngineFactory {
  return variantFamilies.server.variants[name]!;
}

/**
 * The factories a validated config selects (its `variants` section, defaults filled in by the validator).
 * An unknown name is a programming error here: validateConfig refuses it with the JSON path first.
 */
export function resolveVariants(selection: Record<VariantFamily, string>): VariantFactories {
  for (const family of Object.keys(variantFamilies) as VariantFamily[]) {
    if (!hasVariant(family, selection[family])) throw new Error(`unknown ${family} variant "${selection[family]}" (known: ${variantNames(family).join(', ')})`);
  }
  return {
    router: routerFactory(selection.router),
    pool: poolFactory(selection.pool),
    metrics: recorderFactory(selection.metrics),
    upstream: upstreamClientFactory(selection.upstream),
    server: serverEngineFactory(selection.server),
  };
}
