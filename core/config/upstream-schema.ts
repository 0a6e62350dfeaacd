import type { UpstreamConfig, UpstreamTargetConfig } from './types.js';

/**
 * JSON Schema (draft-07, ajv with useDefaults) for one `upstreams.NAME` entry and for the proxy options of a
 * route. Every field has a default so that a validated upstream has every field of UpstreamConfig; the only
 * remaining normalisation (string targets → { url, weight }) is done by normalizeUpstream after validation.
 */

const targetUrlSchema = {
  type: 'string',
  // an origin, optionally with a base path; no query, no fragment, no credentials; or an SRV name
  // (dns+srv://_service._proto.name, optionally with a base path) whose records give hosts and ports
  pattern: '^(https?://[^/?#@\\s]+|dns\\+srv://_[A-Za-z0-9-]+\\._(tcp|udp)\\.[A-Za-z0-9.-]+)(/[^?#\\s]*)?$',
} as const;

/** `tls` of an upstream: how the gateway connects to its https:// (and dns+srv://) targets. */
const upstreamTlsSchema = {
  type: 'object',
  additionalProperties: false,
  dependencies: { cert: ['key'], key: ['cert'] },
  properties: {
    /** PEM file of the CA certificates that sign the upstream's certificate (instead of the system roots) */
    ca: { type: 'string', minLength: 1 },
    /** PEM files of the client certificate and its key, presented to upstreams that require one (mTLS) */
    cert: { type: 'string', minLength: 1 },
    key: { type: 'string', minLength: 1 },
    /** SNI name sent and name the certificate must carry (default: the target's host name) */
    servername: { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9.-]+$' },
    /** false accepts any certificate (chain and name unchecked): for tests, never for production */
    verify: { type: 'boolean', default: true },
    minVersion: { enum: ['TLSv1.2', 'TLSv1.3'], default: 'TLSv1.2' },
  },
} as const;

/** `dns`: the gateway resolves the upstream's host-name targets itself and balances over every address. */
const upstreamDnsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    /** re-resolve interval; with respectTtl, used when an answer carries no TTL (SRV) and after a failed lookup */
    refreshMs: { type: 'integer', minimum: 100, default: 30000 },
    /** re-resolve when the shortest record TTL runs out (floored at 1 s) instead of every refreshMs */
    respectTtl: { type: 'boolean', default: false },
    /** DNS servers (host:port, port optional) to ask instead of the system resolver */
    servers: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', minLength: 1 },
    },
  },
} as const;

export const headerEditsSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    add: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
    remove: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
  },
} as const;

/** The active-check settings an upstream without a `healthCheck.active` block gets (disabled). */
const ACTIVE_DEFAULTS = { enabled: false, path: '/health', intervalMs: 5000, timeoutMs: 2000, healthyThreshold: 2, unhealthyThreshold: 3 } as const;

export const upstreamSchema = {
  type: 'object',
  required: ['targets'],
  additionalProperties: false,
  properties: {
    targets: {
      type: 'array',
      minItems: 1,
      items: {
        anyOf: [
          targetUrlSchema,
          {
            type: 'object',
            required: ['url'],
            additionalProperties: false,
            properties: {
              url: targetUrlSchema,
              weight: { type: 'integer', minimum: 1, maximum: 1000 },
            },
          },
        ],
      },
    },
    tls: upstreamTlsSchema,
    dns: upstreamDnsSchema,
    balancer: {
      enum: ['round-robin', 'weighted-round-robin', 'least-connections', 'p2c', 'consistent-hash'],
      default: 'round-robin',
    },
    /** consistent-hash key: the (trusted-proxy-aware) client IP, or the value of one request header */
    hashKey: { type: 'string', pattern: "^(ip|header:[A-Za-z0-9!#$%&'*+.^_`|~-]+)$", default: 'ip' },
    timeouts: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** TCP (and TLS) connect */
        connectMs: { type: 'integer', minimum: 1, default: 5000 },
        /** per attempt: request sent → response headers */
        headersMs: { type: 'integer', minimum: 1, default: 30000 },
        /** response body: longest silence between two chunks; also the request body upload */
        idleMs: { type: 'integer', minimum: 1, default: 60000 },
        /** whole exchange up to response headers, all attempts included (a route's timeoutMs overrides it and headersMs) */
        requestMs: { type: 'integer', minimum: 1, default: 60000 },
      },
    },
    retries: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        count: { type: 'integer', minimum: 0, maximum: 10, default: 1 },
        /** only idempotent methods may be listed: a retried request must be safe to repeat */
        methods: {
          type: 'array',
          items: { enum: ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'] },
          uniqueItems: true,
          default: ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'],
        },
        on: {
          type: 'array',
          items: { enum: ['connect-error', 'reset', 'timeout', '500', '502', '503', '504'] },
          uniqueItems: true,
          default: ['connect-error', '502', '503', '504'],
        },
        /** retries allowed per window: budgetRatio × requests (plus a small floor so a quiet upstream can retry) */
        budgetRatio: { type: 'number', minimum: 0, maximum: 1, default: 0.2 },
      },
    },
    healthCheck: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /**
         * No default: a written block is how an operator asks for probes, so it is on unless it says
         * `enabled: false`; an absent block becomes a disabled one in normalizeUpstream.
         */
        active: {
          type: 'object',
          additionalProperties: false,
          description: 'active probes: a configured block is enabled unless it says "enabled": false; absent = no probes',
          properties: {
            enabled: { type: 'boolean', default: true },
            path: { type: 'string', pattern: '^/', default: ACTIVE_DEFAULTS.path },
            intervalMs: { type: 'integer', minimum: 10, default: ACTIVE_DEFAULTS.intervalMs },
            timeoutMs: { type: 'integer', minimum: 1, default: ACTIVE_DEFAULTS.timeoutMs },
            healthyThreshold: { type: 'integer', minimum: 1, default: ACTIVE_DEFAULTS.healthyThreshold },
            unhealthyThreshold: { type: 'integer', minimum: 1, default: ACTIVE_DEFAULTS.unhealthyThreshold },
          },
        },
        passive: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            enabled: { type: 'boolean', default: true },
            /** consecutive failures that take a target out ... */
            failures: { type: 'integer', minimum: 1, default: 5 },
            /** ... for this long (or until an active check finds it healthy) */
            windowMs: { type: 'integer', minimum: 1, default: 10000 },
          },
        },
      },
    },
    circuitBreaker: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true },
        failureRatio: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.5 },
        minRequests: { type: 'integer', minimum: 1, default: 20 },
        windowMs: { type: 'integer', minimum: 100, default: 10000 },
        openMs: { type: 'integer', minimum: 1, default: 5000 },
        halfOpenRequests: { type: 'integer', minimum: 1, default: 3 },
      },
    },
    keepAlive: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        maxSockets: { type: 'integer', minimum: 1, default: 128 },
        maxIdleSockets: { type: 'integer', minimum: 0, default: 64 },
        idleMs: { type: 'integer', minimum: 1, default: 4000 },
      },
    },
  },
} as const;

/** Properties merged into the route schema (all optional on the route; header edits default to empty). */
export const routeProxyOptionsSchema = {
  stripPrefix: { anyOf: [{ type: 'boolean' }, { type: 'string', pattern: '^/' }], default: false },
  rewrite: { type: 'string', pattern: '^/' },
  preserveHost: { type: 'boolean', default: false },
  timeoutMs: { type: 'integer', minimum: 1 },
  requestHeaders: headerEditsSchema,
  responseHeaders: headerEditsSchema,
} as const;

type RawTarget = string | { url: string; weight?: number };

/**
 * Turn a validated (defaults-applied) upstream into UpstreamConfig: string targets become { url, weight: 1 }, an
 * absent `healthCheck.active` becomes a disabled one.
 */
export function normalizeUpstream(raw: unknown): UpstreamConfig {
  const r = raw as Omit<UpstreamConfig, 'targets' | 'healthCheck'> & {
    targets: RawTarget[];
    healthCheck: { active?: UpstreamConfig['healthCheck']['active']; passive: UpstreamConfig['healthCheck']['passive'] };
  };
  const targets: UpstreamTargetConfig[] = r.targets.map((t) => (typeof t === 'string' ? { url: t, weight: 1 } : { url: t.url, weight: t.weight ?? 1 }));
  const healthCheck = { passive: r.healthCheck.passive, active: r.healthCheck.active ?? { ...ACTIVE_DEFAULTS } };
  return { ...r, targets, healthCheck };
}
