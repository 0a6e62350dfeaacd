import type { GatewayConfig } from './types.js';

const SECRET_KEY = /(secret|password|passwd|token|apikey|api_key|private|credential|keys?$|users$|authorization)/i;

/**
 * The effective config for GET /config: anything under a key that looks like a secret is replaced, so the
 * admin API never hands out JWT secrets, API keys or password hashes.
 */
export function redactConfig(config: GatewayConfig): unknown {
  return redact(config, '');
}

function redact(value: unknown, key: string): unknown {
  if (key !== '' && SECRET_KEY.test(key) && value !== null && value !== undefined && typeof value !== 'boolean') {
    return '[redacted]';
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, ''));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redact(v, k);
    return out;
  }
  if (typeof value === 'string' && /^redis(s)?:\/\/[^@]*:[^@]*@/.test(value)) return value.replace(/\/\/[^@]*@/, '//[redacted]@');
  return value;
}
