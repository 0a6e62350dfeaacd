import type { RecorderFactory } from './metrics.js';
import type { PoolFactory } from './pool.js';
import type { RouterFactory } from './router.js';
import type { ServerEngineFactory } from './server.js';
import type { UpstreamClientFactory } from './upstream.js';

/**
 * The factories one config's `variants` section selects, one per family. Resolved from names by the composition
 * root (core/variants.ts, called by core/control/) and handed down: the data plane builds with what it is given
 * and never looks a variant up itself.
 */
export interface VariantFactories {
  router: RouterFactory;
  pool: PoolFactory;
  metrics: RecorderFactory;
  upstream: UpstreamClientFactory;
  server: ServerEngineFactory;
}
