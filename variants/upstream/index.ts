import type { UpstreamClientFactory } from '../../core/upstream-client.js';
import { createUpstreamClient as agent } from './agent/index.js';
import { createUpstreamClient as undici } from './undici/index.js';

export const upstreamClientVariants: Record<string, UpstreamClientFactory> = { agent, undici };

/** chosen with scripts/bench-proxy.ts (see the report in the commit that set it) */
export const DEFAULT_UPSTREAM_CLIENT = 'agent';
