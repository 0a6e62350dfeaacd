import { createHash } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from '../../../data/context.js';
import type { GatewayPlugin, PluginInstance } from '../../types.js';
import { clientAddress, clientIpSchema, trustForwardedSchema, type ClientAddress, type ClientIpSource, type TrustForwarded } from '../shared/client-ip.js';
import { sendError } from '../shared/headers.js';
import { redisOptionsSchema } from '../shared/redis.js';
import type { Algorithm, Decision } from './algorithms.js';
import { storeId, takeMemory } from './memory-store.js';
import { RedisStore } from './redis-store.js';

export interface RateLimitOptions {
  limit: number;
  windowMs: number;
  /** "ip" | "header:<name>" | "apiKey" | "subject" */
  key: string;
  algorithm: Algorithm;
  store: 'memory' | 'redis';
  redis: { url: string; keyPrefix: string; connectTimeoutMs: number; commandTimeoutMs: number };
  /** when the store cannot answer: let the request through ("open") or refuse it with 503 ("closed") */
  failMode: 'open' | 'closed';
  /** where the client address comes from (default: server.trustedProxies' resolution, ctx.clientIp) */
  clientIp?: ClientIpSource;
  /** deprecated: see shared/client-ip.ts */
  trustForwarded?: TrustForwarded;
  /** limiter identity: entries with the same bucket share counters. Default: derived from the options */
  bucket?: string;
  /** send RateLimit-* headers on allowed responses too (always on 429) */
  headers: boolean;
}

type KeyFn = (ctx: RequestContext) => string;

/**
 * Rate limiting per client key, token bucket or sliding window. The memory store lives in the primary process
 * when clustered (one limit across all workers), the Redis store is shared by any number of gateways. A store
 * failure never fails the gateway: fail open or closed, with a log line and the counter
 * gateway_plugin_rate_limit_store_errors_total.
 */
export const rateLimitPlugin: GatewayPlugin<RateLimitOptions> = {
  name: 'rate-limit',
  version: '1.0.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['limit', 'windowMs'],
    properties: {
      limit: { type: 'integer', minimum: 1 },
      windowMs: { type: 'integer', minimum: 1 },
      key: { type: 'string', pattern: "^(ip|apiKey|subject|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$", default: 'ip' },
      algorithm: { enum: ['token-bucket', 'sliding-window'], default: 'token-bucket' },
      store: { enum: ['memory', 'redis'], default: 'memory' },
      redis: redisOptionsSchema('gw:rl:'),
      failMode: { enum: ['open', 'closed'], default: 'open' },
      clientIp: clientIpSchema,
      trustForwarded: trustForwardedSchema,
      bucket: { type: 'string', minLength: 1 },
      headers: { type: 'boolean', default: true },
    },
    if: { properties: { store: { const: 'redis' } }, required: ['store'] },
    then: { required: ['redis'] },
  },

  async init(options, api): Promise<PluginInstance> {
    const { limit, windowMs, algorithm } = options;
    // Deterministic across workers (each builds the same config), so all of them address the same counters.
    const ns =
      options.bucket ??
      createHash('sha256')
        .update(JSON.stringify([limit, windowMs, options.key, algorithm]))
        .digest('hex')
        .slice(0, 16);
    const client = clientAddress('rate-limit', options, (msg) => api.logger.warn(msg));
    const keyOf = keyFunction(options.key, client);
    const rejected = api.counter('rate_limit_rejected_total', 'requests refused with 429 by rate-limit');
    const storeErrors = api.counter('rate_limit_store_errors_total', 'rate-limit decisions the store could not make (fail mode applied)');
    const limitText = String(limit);

    let redis: RedisStore | null = null;
    if (options.store === 'redis') {
      redis = new RedisStore(options.redis, api.logger);
      await redis.connect();
    }
    // A keep-alive connection asks with the same key request after request (always, when the key is the client
    // address and that comes from the peer alone): its last key and the memory store's id for it are remembered
    // per connection, so the store's lookup gets a string it has hashed before instead of a freshly built one.
    // A trusted proxy's connection carries many clients: its key is derived again for every request.
    const keyIsClient = options.key === 'ip';
    const lastOnConnection = new WeakMap<object, { key: string; id: string; fixed: boolean }>();
    const keyFor = (ctx: RequestContext): { key: string; id: string } => {
      const conn = ctx.req!.socket as object | null;
      const last = conn === null ? undefined : lastOnConnection.get(conn);
      if (last !== undefined && last.fixed) return last;
      const key = keyOf(ctx);
      if (last !== undefined && last.key === key) return last;
      const next = { key, id: storeId(ns, key), fixed: keyIsClient && client.fixedPerConnection(ctx) };
      if (conn !== null) lastOnConnection.set(conn, next);
      return next;
    };
    const take = (k: { key: string; id: string }): Decision | Promise<Decision> =>
      redis !== null ? redis.takeToken(ns, k.key, algorithm, limit, windowMs) : takeMemory({ ns, key: k.key, algorithm, limit, windowMs, id: k.id });

    let lastLog = 0;
    let suppressed = 0;
    const onStoreError = (ctx: RequestContext, err: unknown): void => {
      storeErrors.inc();
      const now = Date.now();
      // One line per 5 s at most: a dead store under load must not turn into a log flood.
      if (now - lastLog >= 5_000) {
        api.logger.warn({ err: (err as Error).message, failMode: options.failMode, suppressed }, 'rate-limit store unavailable');
        lastLog = now;
        suppressed = 0;
      } else suppressed++;
      if (options.failMode === 'closed') sendError(ctx, 503, 'Service Unavailable', { 'retry-after': '1' });
    };

    const apply = (ctx: RequestContext, d: Decision): void => {
      const resetS = String(Math.ceil(d.resetMs / 1000));
      if (!d.allowed) {
        rejected.inc();
        const headers: OutgoingHttpHeaders = {
          'retry-after': String(Math.max(1, Math.ceil(d.retryAfterMs / 1000))),
          'ratelimit-limit': limitText,
          'ratelimit-remaining': '0',
          'ratelimit-reset': resetS,
        };
        sendError(ctx, 429, 'Too Many Requests', headers);
        return;
      }
      const res = ctx.res;
      if (options.headers && res !== null && !res.headersSent) {
        ctx.addResponseHeader('ratelimit-limit', limitText);
        ctx.addResponseHeader('ratelimit-remaining', String(d.remaining));
        ctx.addResponseHeader('ratelimit-reset', resetS);
      }
    };

    return {
      preHandler(ctx: RequestContext): void | Promise<void> {
        const key = keyFor(ctx);
        let r: Decision | Promise<Decision>;
        try {
          r = take(key);
        } catch (err) {
          onStoreError(ctx, err);
          return;
        }
        if (r instanceof Promise) {
          return r.then(
            (d) => apply(ctx, d),
            (err) => onStoreError(ctx, err),
          );
        }
        apply(ctx, r);
      },
      destroy() {
        redis?.close();
      },
    };
  },
};

/**
 * A client-chosen value as a key of fixed size: a 14 KB header value costs what a 10-byte one does, in the
 * counters (the primary's when clustered, Redis) and over IPC; and the raw value (a key, a subject) does not sit
 * in Redis or in memory dumps. Client addresses are short already and stay readable.
 */
function hashedKey(kind: string, value: string): string {
  return `${kind}:${createHash('sha256').update(value).digest('base64url')}`;
}

function keyFunction(spec: string, client: ClientAddress): KeyFn {
  if (spec === 'ip') return (ctx) => `ip:${client.of(ctx)}`;
  if (spec === 'subject') {
    // Without a subject (auth not configured before us, anonymous access, a JWT without `sub`) the client
    // address is the key: an empty subject is shared by everyone who has none.
    return (ctx) => {
      const sub = ctx.identity?.sub;
      return typeof sub === 'string' && sub !== '' ? hashedKey('sub', sub) : `ip:${client.of(ctx)}`;
    };
  }
  if (spec === 'apiKey') {
    return (ctx) => {
      const k = ctx.identity?.apiKey;
      if (typeof k === 'string') return hashedKey('key', k);
      const raw = ctx.req!.headers['x-api-key'];
      return typeof raw === 'string' ? hashedKey('rawkey', raw) : `ip:${client.of(ctx)}`;
    };
  }
  const header = spec.slice('header:'.length).toLowerCase();
  return (ctx) => {
    const v = ctx.req!.headers[header];
    if (v === undefined) return `ip:${client.of(ctx)}`;
    return hashedKey('h', typeof v === 'string' ? v : v.join(','));
  };
}

export default rateLimitPlugin;
