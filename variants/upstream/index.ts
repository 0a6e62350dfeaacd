import type { UpstreamClientFactory } from '../../core/upstream-client.js';
import { createUpstreamClient as agent } from './agent/index.js';
import { createUpstreamClient as h1 } from './h1/index.js';
import { createUpstreamClient as undici } from './undici/index.js';

export const upstreamClientVariants: Record<string, UpstreamClientFactory> = { agent, h1, undici };

/**
 * Chosen with `npm run scenario -- upstream-clients` and CPU-per-request measurements (scripts/bench-proxy.ts,
 * proxy pinned to CPU 0): h1 needs the least gateway CPU per proxied request (≈39 µs against undici ≈50-59 and
 * http.Agent ≈61-74 on this 2-core box) because no ClientRequest/IncomingMessage, stream or AbortSignal is built
 * per request, and a small body that came with the head skips streaming altogether.
 */
export const DEFAULT_UPSTREAM_CLIENT = 'h1';
