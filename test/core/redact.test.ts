import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../core/config/loader.js';
import { redactConfig, redactUrlPassword } from '../../core/config/redact.js';
import type { GatewayConfig } from '../../core/config/types.js';

/** The full example of docs/configuration.md, as a user would copy it. */
function readmeExample(): Record<string, unknown> {
  const doc = readFileSync('docs/configuration.md', 'utf8');
  const section = doc.slice(doc.indexOf('## A full example'));
  const m = /```json\n([\s\S]*?)\n```/.exec(section);
  if (m === null) throw new Error('docs/configuration.md: no ```json block in "A full example"');
  return JSON.parse(m[1]!) as Record<string, unknown>;
}

/** Loads a config the way the CLI does, from a folder that has the example's ./plugins directory. */
function load(raw: unknown): GatewayConfig {
  const dir = mkdtempSync(join(tmpdir(), 'gw-redact-'));
  mkdirSync(join(dir, 'plugins'));
  const file = join(dir, 'gateway.json');
  writeFileSync(file, JSON.stringify(raw));
  const r = loadConfigFile(file);
  if (!r.ok) throw new Error(`config rejected:\n${r.errors.join('\n')}`);
  return r.value;
}

const JWT_SECRET = 'jwt-hmac-secret-value';
const KEY_DIGEST = 'a'.repeat(64);
const NAMED_DIGEST = 'b'.repeat(64);
const BCRYPT = '$2b$10$abcdefghijklmnopqrstuuJ3ZQ7a7bQ3nD3ZkNwQzYl9u1C5b7pqW';

function withSecrets(): Record<string, unknown> {
  const c = readmeExample();
  const routes = c.routes as Array<Record<string, unknown>>;
  routes[3]!.requestHeaders = { add: { 'x-gateway': 'ts', Authorization: 'Bearer upstream-token' }, remove: ['cookie'] };
  routes[3]!.plugins = [
    {
      name: 'rate-limit',
      options: { limit: 100, windowMs: 1000, store: 'redis', redis: { url: 'redis://:redis-pass@redis.internal:6379/0', keyPrefix: 'keys' } },
    },
    {
      name: 'auth',
      options: {
        apiKey: { keys: [KEY_DIGEST, { name: 'ci', sha256: NAMED_DIGEST, scopes: ['deploy'] }] },
        basic: { users: { alice: BCRYPT, bob: { hash: BCRYPT, scopes: ['admin'] } } },
      },
    },
  ];
  c.plugins = [
    { name: 'request-id', options: {} },
    { name: 'auth', options: { jwt: { secret: JWT_SECRET, issuer: 'https://issuer.example' } } },
    { name: 'tracing', options: { exporter: 'otlp', otlpUrl: 'https://collector:otlp-pass@otel.example:4318/v1/traces' } },
    { name: 'my-plugin', options: { token: 'third-party-token', users: ['carol'], endpoint: 'http://u:p@svc.local' } },
  ];
  return c;
}

describe('GET /config redaction (by schema location, never by names the operator chose)', () => {
  it('leaves the README example\'s upstream "users" and every non-secret value visible', () => {
    const config = load(readmeExample());
    const shown = redactConfig(config) as GatewayConfig;
    expect(shown.upstreams.users!.targets).toEqual([
      { url: 'http://127.0.0.1:3001', weight: 1 },
      { url: 'http://127.0.0.1:3002', weight: 2 },
    ]);
    expect(shown.routes.map((r) => r.upstream).filter(Boolean)).toEqual(['users', 'users']);
    // nothing in the docs example is a secret: redaction changes nothing
    expect(shown).toEqual(config);
    expect(JSON.stringify(shown)).not.toContain('[redacted]');
  });

  it('redacts auth secrets, URL passwords, credential headers; keeps user names, hosts and key names', () => {
    const config = load(withSecrets());
    const shown = redactConfig(config) as GatewayConfig;
    const text = JSON.stringify(shown);
    for (const secret of [JWT_SECRET, KEY_DIGEST, NAMED_DIGEST, BCRYPT, 'redis-pass', 'otlp-pass', 'upstream-token', 'third-party-token', ':p@']) {
      expect(text, `leaked ${secret}`).not.toContain(secret);
    }
    expect(shown.upstreams.users).toEqual(config.upstreams.users);

    const [rl, auth] = shown.routes[3]!.plugins;
    expect(rl!.options.redis as { url: string; keyPrefix: string }).toEqual({ url: 'redis://:[redacted]@redis.internal:6379/0', keyPrefix: 'keys' });
    expect(auth!.options).toEqual({
      apiKey: { keys: ['[redacted]', { name: 'ci', sha256: '[redacted]', scopes: ['deploy'] }] },
      basic: { users: { alice: '[redacted]', bob: { hash: '[redacted]', scopes: ['admin'] } } },
    });
    expect(shown.routes[3]!.requestHeaders!.add).toEqual({ 'x-gateway': 'ts', Authorization: '[redacted]' });
    expect(shown.plugins[1]!.options).toEqual({ jwt: { secret: '[redacted]', issuer: 'https://issuer.example' } });
    expect(shown.plugins[2]!.options.otlpUrl).toBe('https://collector:[redacted]@otel.example:4318/v1/traces');
    expect(shown.plugins[3]!.options).toEqual({ token: '[redacted]', users: ['carol'], endpoint: 'http://u:[redacted]@svc.local' });
    // the live config is untouched
    expect((config.plugins[1]!.options.jwt as { secret: string }).secret).toBe(JWT_SECRET);
  });

  it('redacts credential headers a backend adds upstream; weights, canary and mirror stay visible', () => {
    const c = readmeExample();
    (c.routes as Array<Record<string, unknown>>).push({
      name: 'split',
      path: '/split/*',
      backends: [
        { upstream: 'users', weight: 9, requestHeaders: { add: { authorization: 'Bearer backend-token', 'x-version': 'v1' } } },
        { upstream: 'users-v2', weight: 1 },
      ],
      canary: { backend: 'users-v2', header: 'x-canary', value: 'yes' },
      mirror: { upstream: 'users-v2', percent: 10 },
    });
    (c.upstreams as Record<string, unknown>)['users-v2'] = { targets: ['http://127.0.0.1:3002'] };
    const shown = redactConfig(load(c)) as GatewayConfig;
    const split = shown.routes.find((r) => r.name === 'split')!;
    expect(split.backends![0]!.requestHeaders!.add).toEqual({ authorization: '[redacted]', 'x-version': 'v1' });
    expect(split.backends!.map((b) => b.weight)).toEqual([9, 1]);
    expect(split.canary).toEqual({ backend: 'users-v2', header: 'x-canary', value: 'yes' });
    expect(split.mirror).toMatchObject({ upstream: 'users-v2', percent: 10, compare: false });
    expect(JSON.stringify(shown)).not.toContain('backend-token');
  });

  it('URL passwords: host and user stay, the password goes', () => {
    expect(redactUrlPassword('rediss://default:pw@cache:6380')).toBe('rediss://default:[redacted]@cache:6380');
    expect(redactUrlPassword('redis://token@cache')).toBe('redis://[redacted]@cache');
    expect(redactUrlPassword('redis://cache:6379')).toBe('redis://cache:6379');
    expect(redactUrlPassword('not a url user:pw@x')).toBe('not a url user:pw@x');
  });
});
