import type { GatewayPlugin } from '../types.js';
import { authPlugin } from './auth/index.js';
import { bodyLimitPlugin } from './body-limit/index.js';
import { cachePlugin } from './cache/index.js';
import { compressionPlugin } from './compression/index.js';
import { corsPlugin } from './cors/index.js';
import { ipFilterPlugin } from './ip-filter/index.js';
import { rateLimitPlugin } from './rate-limit/index.js';
import { requestIdPlugin } from './request-id/index.js';
import { tracingPlugin } from './tracing/index.js';

/**
 * First-party plugins, available by name in config without a pluginDirs entry. Imported by the primary as well
 * as the workers (via the plugin loader), so module-level primary services (rate-limit's memory store) exist in both.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const builtinPlugins: Record<string, GatewayPlugin<any>> = {
  'request-id': requestIdPlugin,
  tracing: tracingPlugin,
  'ip-filter': ipFilterPlugin,
  cors: corsPlugin,
  'body-limit': bodyLimitPlugin,
  auth: authPlugin,
  'rate-limit': rateLimitPlugin,
  cache: cachePlugin,
  compression: compressionPlugin,
};
