import type { UpstreamClientFactory } from '../../core/contracts/upstream.js';
import { createUpstreamClient as agent } from './agent/index.js';
import { createUpstreamClient as h1 } from './h1/index.js';
import { createUpstreamClient as undici } from './undici/index.js';

export const upstreamClientVariants: Record<string, UpstreamClientFactory> = { agent, h1, undici };

/**
 * Chosen with `npm run scenario -- upstream-clients` (reports/latest/upstream-clients): h1 proxied 33.3k req/s
 * against undici 17.3k and http.Agent 14.4k in one interleaved run on the 2-core reference box, because no
 * ClientRequest/IncomingMessage, stream or AbortSignal is built per request and a small body that came with the
 * head skips streaming altogether.
 */
export const DEFAULT_UPSTREAM_CLIENT = 'h1';
