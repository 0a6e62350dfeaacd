import Ajv from 'ajv';
import { describe, expect, it } from 'vitest';
import { normalizeUpstream, routeProxyOptionsSchema, upstreamSchema } from '../../core/config/upstream-schema.js';

const AjvCtor = Ajv as unknown as typeof Ajv.default;

describe('upstream schema', () => {
  const ajv = new AjvCtor({ useDefaults: true, allErrors: true, strict: true });
  const validate = ajv.compile(upstreamSchema);

  it('fills every field with defaults and normalises string targets', () => {
    const raw: Record<string, unknown> = { targets: ['http://127.0.0.1:1', { url: 'http://a:2/base', weight: 3 }, { url: 'http://b:3' }] };
    expect(validate(raw), JSON.stringify(validate.errors)).toBe(true);
    const u = normalizeUpstream(raw);
    expect(u.targets).toEqual([
      { url: 'http://127.0.0.1:1', weight: 1 },
      { url: 'http://a:2/base', weight: 3 },
      { url: 'http://b:3', weight: 1 },
    ]);
    expect(u.balancer).toBe('round-robin');
    expect(u.hashKey).toBe('ip');
    expect(u.timeouts).toEqual({ connectMs: 5000, headersMs: 30000, idleMs: 60000, requestMs: 60000 });
    expect(u.retries.count).toBe(1);
    expect(u.retries.on).toContain('connect-error');
    expect(u.healthCheck.active.enabled).toBe(false);
    expect(u.healthCheck.passive.enabled).toBe(true);
    expect(u.circuitBreaker.halfOpenRequests).toBe(3);
    expect(u.keepAlive.maxSockets).toBeGreaterThan(0);
  });

  it('a written healthCheck.active block is enabled unless it says enabled: false', () => {
    const given = (active: Record<string, unknown>): boolean => {
      const raw: Record<string, unknown> = { targets: ['http://x'], healthCheck: { active } };
      expect(validate(raw), JSON.stringify(validate.errors)).toBe(true);
      return normalizeUpstream(raw).healthCheck.active.enabled;
    };
    expect(given({ path: '/health', intervalMs: 5000 })).toBe(true);
    expect(given({})).toBe(true);
    expect(given({ enabled: false, path: '/health' })).toBe(false);
    const raw: Record<string, unknown> = { targets: ['http://x'], healthCheck: { passive: { failures: 2 } } };
    expect(validate(raw)).toBe(true);
    expect(normalizeUpstream(raw).healthCheck.active).toEqual({
      enabled: false,
      path: '/health',
      intervalMs: 5000,
      timeoutMs: 2000,
      healthyThreshold: 2,
      unhealthyThreshold: 3,
    });
  });

  it('rejects bad targets, non-idempotent retry methods and unknown balancers', () => {
    expect(validate({ targets: [] })).toBe(false);
    expect(validate({ targets: ['ftp://x'] })).toBe(false);
    expect(validate({ targets: ['http://x/?q=1'] })).toBe(false);
    expect(validate({ targets: ['http://x'], retries: { methods: ['POST'] } })).toBe(false);
    expect(validate({ targets: ['http://x'], balancer: 'random' })).toBe(false);
    expect(validate({ targets: ['http://x'], hashKey: 'cookie:x' })).toBe(false);
    expect(validate({ targets: ['http://x'], hashKey: 'header:x-user' })).toBe(true);
  });

  it('route proxy options get defaults', () => {
    const v = ajv.compile({ type: 'object', additionalProperties: false, properties: routeProxyOptionsSchema });
    const r: Record<string, unknown> = {};
    expect(v(r)).toBe(true);
    expect(r).toEqual({
      stripPrefix: false,
      preserveHost: false,
      requestHeaders: { add: {}, remove: [] },
      responseHeaders: { add: {}, remove: [] },
    });
    expect(v({ stripPrefix: '/api', rewrite: '/v2/:id', timeoutMs: 100 })).toBe(true);
    expect(v({ stripPrefix: 'api' })).toBe(false);
  });
});
