import { ACCESS_LOG_FIELDS } from '../observe/access-log-fields.js';
import { routeTrafficSchema } from './traffic-schema.js';
import { routeProxyOptionsSchema, upstreamSchema } from './upstream-schema.js';

/**
 * The gateway's JSON Schema (draft-07, ajv). Every field has a default, so a validated config is complete.
 * `npm run build` also writes it to gateway.schema.json for editors (`"$schema": "./gateway.schema.json"`).
 */
const pluginEntrySchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1 },
    enabled: { type: 'boolean', default: true },
    options: { type: 'object', default: {} },
  },
} as const;

const headerMapSchema = {
  type: 'object',
  additionalProperties: { type: 'string' },
} as const;

const methodSchema = {
  type: 'string',
  pattern: '^(\\*|[A-Z][A-Z0-9_-]*)$',
} as const;

/**
 * Credentials for the admin listener (core/admin/auth.ts). One object with a `type` instead of a oneOf: ajv's
 * oneOf errors name every branch, while the validator names the one field the chosen type is missing.
 */
const adminAuthSchema = {
  type: 'object',
  required: ['type'],
  additionalProperties: false,
  properties: {
    type: { enum: ['bearer', 'basic'] },
    // 16 characters at least: a token short enough to guess over the network is no protection.
    token: { type: 'string', minLength: 16 },
    users: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['username', 'password'],
        additionalProperties: false,
        properties: {
          // RFC 7617: the user-id cannot contain a colon (the first colon separates it from the password).
          username: { type: 'string', minLength: 1, pattern: '^[^:]*$' },
          password: { type: 'string', minLength: 1 },
        },
      },
    },
  },
} as const;

export const routeSchema = {
  type: 'object',
  required: ['path'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1 },
    path: { type: 'string', pattern: '^/', minLength: 1 },
    methods: { type: 'array', items: methodSchema, minItems: 1, uniqueItems: true, default: ['*'] },
    response: {
      type: 'object',
      additionalProperties: false,
      properties: {
        status: { type: 'integer', minimum: 100, maximum: 599, default: 200 },
        headers: { ...headerMapSchema, default: {} },
        body: { default: '' },
      },
    },
    upstream: { type: 'string', minLength: 1 },
    handler: { type: 'string', minLength: 1 },
    ...routeTrafficSchema,
    plugins: { type: 'array', items: pluginEntrySchema, default: [] },
    ...routeProxyOptionsSchema,
  },
} as const;

export const ALERT_METRICS = [
  'error_ratio',
  'p50_ms',
  'p95_ms',
  'p99_ms',
  'rps',
  'unhealthy_targets',
  'open_circuits',
  'reload_failures',
  'overloaded',
  'worker_restarts',
  'watchdog_kills',
] as const;

const alertRuleSchema = {
  type: 'object',
  required: ['name', 'metric'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9_.:-]+$' },
    metric: { enum: ALERT_METRICS },
    above: { type: 'number' },
    below: { type: 'number' },
    route: { type: 'string', minLength: 1 },
    upstream: { type: 'string', minLength: 1 },
    windowMs: { type: 'integer', minimum: 1, default: 60000 },
    forMs: { type: 'integer', minimum: 0, default: 0 },
    severity: { type: 'string', pattern: '^[a-z]+$', default: 'warning' },
    summary: { type: 'string' },
    description: { type: 'string' },
  },
} as const;

const notifierSchema = {
  type: 'object',
  required: ['type'],
  properties: { type: { enum: ['webhook', 'log'] } },
  if: { properties: { type: { const: 'webhook' } } },
  then: {
    required: ['url'],
    additionalProperties: false,
    properties: {
      type: { const: 'webhook' },
      url: { type: 'string', pattern: '^https?://' },
      headers: { ...headerMapSchema, default: {} },
      name: { type: 'string', minLength: 1, default: 'gateway' },
      timeoutMs: { type: 'integer', minimum: 1, default: 5000 },
      maxAttempts: { type: 'integer', minimum: 1, maximum: 100, default: 5 },
      backoffMs: { type: 'integer', minimum: 1, default: 500 },
      maxBackoffMs: { type: 'integer', minimum: 1, default: 30000 },
      maxQueue: { type: 'integer', minimum: 1, maximum: 100000, default: 100 },
    },
  },
  else: { additionalProperties: false, properties: { type: { const: 'log' } } },
} as const;

export const gatewaySchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://ts-gateway.local/gateway.schema.json',
  title: 'ts-gateway configuration',
  type: 'object',
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    server: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        host: { type: 'string', minLength: 1, default: '127.0.0.1' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
        workers: { type: 'integer', minimum: 0, maximum: 256 },
        workerMode: { enum: ['cluster', 'threads'], default: 'cluster' },
        keepAliveTimeoutMs: { type: 'integer', minimum: 0, default: 5000 },
        headersTimeoutMs: { type: 'integer', minimum: 0, default: 60000 },
        requestTimeoutMs: { type: 'integer', minimum: 0, default: 300000 },
        maxHeaderSize: { type: 'integer', minimum: 1024, maximum: 1048576, default: 16384 },
        shutdownTimeoutMs: { type: 'integer', minimum: 0, default: 10000 },
        hookTimeoutMs: { type: 'integer', minimum: 0, default: 30000 },
        workerStartTimeoutMs: { type: 'integer', minimum: 0, default: 60000 },
        watchdogMs: { type: 'integer', minimum: 0, default: 10000 },
        trustedProxies: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
        contextPoolSize: { type: 'integer', minimum: 0, maximum: 1000000, default: 1024 },
        maxUrlLength: { type: 'integer', minimum: 16, maximum: 1048576, default: 8192 },
        maxHeaderCount: { type: 'integer', minimum: 1, maximum: 10000, default: 100 },
        maxConnectionsPerIp: { type: 'integer', minimum: 0, default: 0 },
        connectionsCheckingIntervalMs: { type: 'integer', minimum: 1, default: 30000 },
        overload: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            maxEventLoopDelayMs: { type: 'number', minimum: 0, default: 0 },
            maxHeapUsedRatio: { type: 'number', minimum: 0, maximum: 1, default: 0 },
            maxHeapUsedBytes: { type: 'integer', minimum: 0, default: 0 },
            checkIntervalMs: { type: 'integer', minimum: 10, default: 500 },
            retryAfterS: { type: 'integer', minimum: 0, default: 1 },
          },
        },
        tls: {
          type: 'object',
          additionalProperties: false,
          required: ['cert', 'key'],
          properties: {
            cert: { type: 'string', minLength: 1 },
            key: { type: 'string', minLength: 1 },
            ca: { type: 'string', minLength: 1 },
            minVersion: { enum: ['TLSv1.2', 'TLSv1.3'], default: 'TLSv1.2' },
            ciphers: { type: 'string', minLength: 1 },
            sni: {
              type: 'object',
              default: {},
              propertyNames: { pattern: '^(\\*\\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$' },
              additionalProperties: {
                type: 'object',
                additionalProperties: false,
                required: ['cert', 'key'],
                properties: {
                  cert: { type: 'string', minLength: 1 },
                  key: { type: 'string', minLength: 1 },
                },
              },
            },
          },
        },
        http2: { anyOf: [{ type: 'boolean' }, { const: 'h2c' }], default: true },
        http2Limits: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            maxConcurrentStreams: { type: 'integer', minimum: 1, maximum: 4294967295, default: 128 },
            maxHeaderListSize: { type: 'integer', minimum: 1024, maximum: 16777215 },
            idleTimeoutMs: { type: 'integer', minimum: 0, default: 60000 },
            rapidReset: {
              type: 'object',
              additionalProperties: false,
              default: {},
              properties: {
                maxResets: { type: 'integer', minimum: 1, default: 200 },
                windowMs: { type: 'integer', minimum: 1, default: 10000 },
              },
            },
          },
        },
        redirectHttp: {
          type: 'object',
          additionalProperties: false,
          required: ['port'],
          properties: {
            port: { type: 'integer', minimum: 0, maximum: 65535 },
            host: { type: 'string', minLength: 1 },
            httpsPort: { type: 'integer', minimum: 1, maximum: 65535 },
          },
        },
        hsts: {
          type: 'object',
          additionalProperties: false,
          properties: {
            maxAgeS: { type: 'integer', minimum: 0, default: 31536000 },
            includeSubDomains: { type: 'boolean', default: false },
            preload: { type: 'boolean', default: false },
          },
        },
      },
    },
    admin: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true },
        host: { type: 'string', minLength: 1, default: '127.0.0.1' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 9901 },
        auth: adminAuthSchema,
      },
    },
    alerts: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        evaluateEveryMs: { type: 'integer', minimum: 10, default: 1000 },
        repeatIntervalMs: { type: 'integer', minimum: 1000, default: 14400000 },
        externalUrl: { type: 'string', pattern: '^https?://' },
        rules: { type: 'array', items: alertRuleSchema, default: [] },
        notify: { type: 'array', items: notifierSchema, default: [{ type: 'log' }] },
      },
    },
    variants: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        router: { type: 'string', minLength: 1 },
        pool: { type: 'string', minLength: 1 },
        metrics: { type: 'string', minLength: 1 },
        upstream: { type: 'string', minLength: 1 },
        server: { type: 'string', minLength: 1 },
      },
    },
    logging: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
        pretty: { type: 'boolean', default: false },
        accessLog: {
          description:
            'One line per request: true (JSON, default fields), false, "json", "combined", a template naming $fields, a list of fields (JSON), or an object with format, fields, sampleSuccess and file',
          default: true,
          anyOf: [
            { type: 'boolean' },
            { type: 'string', minLength: 1 },
            { type: 'array', minItems: 1, uniqueItems: true, items: { enum: ACCESS_LOG_FIELDS } },
            {
              type: 'object',
              additionalProperties: false,
              properties: {
                enabled: { type: 'boolean', default: true },
                format: { type: 'string', minLength: 1, default: 'json', description: '"json", "combined", or a template naming $fields' },
                fields: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: ACCESS_LOG_FIELDS }, description: "the JSON format's fields" },
                sampleSuccess: {
                  type: 'number',
                  minimum: 0,
                  maximum: 1,
                  default: 1,
                  description: 'fraction of answers below 400 logged; 4xx and 5xx always are',
                },
                file: { type: 'string', default: '', description: 'append to this file (reopened on SIGUSR2) instead of stdout' },
              },
            },
          ],
        },
      },
    },
    upstreams: {
      type: 'object',
      default: {},
      propertyNames: { pattern: '^[A-Za-z0-9_.-]+$' },
      additionalProperties: upstreamSchema,
    },
    routes: { type: 'array', items: routeSchema, default: [] },
    plugins: { type: 'array', items: pluginEntrySchema, default: [] },
    pluginDirs: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
  },
} as const;
