import { headerEditsSchema } from './upstream-schema.js';

/**
 * The route's traffic-splitting and mirroring fields (core/proxy/backends.ts, core/proxy/mirror.ts), merged into
 * the route schema. What JSON Schema cannot say (exactly one of `upstream`/`backends`, a canary naming one of the
 * backends, exactly one of `header`/`cookie`) is checked in ./traffic-check.ts with the JSON path named.
 */
export const routeTrafficSchema = {
  backends: {
    type: 'array',
    minItems: 1,
    items: {
      type: 'object',
      required: ['upstream'],
      additionalProperties: false,
      properties: {
        upstream: { type: 'string', minLength: 1 },
        weight: { type: 'integer', minimum: 0, maximum: 10_000, default: 1 },
        requestHeaders: headerEditsSchema,
      },
    },
  },
  canary: {
    type: 'object',
    required: ['backend'],
    additionalProperties: false,
    properties: {
      backend: { type: 'string', minLength: 1 },
      header: { type: 'string', minLength: 1, pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" },
      cookie: { type: 'string', minLength: 1, pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" },
      value: { type: 'string' },
      percent: { type: 'number', minimum: 0, maximum: 100 },
    },
  },
  mirror: {
    type: 'object',
    required: ['upstream'],
    additionalProperties: false,
    properties: {
      upstream: { type: 'string', minLength: 1 },
      percent: { type: 'number', minimum: 0, maximum: 100, default: 100 },
      body: { type: 'boolean', default: true },
      maxBodyBytes: { type: 'integer', minimum: 0, default: 65_536 },
      maxConcurrent: { type: 'integer', minimum: 1, default: 64 },
      timeoutMs: { type: 'integer', minimum: 1, default: 5000 },
      compare: { type: 'boolean', default: false },
      compareHeaders: {
        type: 'array',
        items: { type: 'string', minLength: 1, pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" },
        uniqueItems: true,
        default: ['content-type'],
      },
      keepDifferences: { type: 'integer', minimum: 0, maximum: 100, default: 10 },
    },
  },
} as const;
