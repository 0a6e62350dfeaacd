import { spawnSync } from 'node:child_process';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../core/config/validator.js';
import type { RunningGateway } from '../../core/control/gateway.js';
import { gatewayFor, startRedis, type RedisServer } from '../plugins/helpers.js';
import { writeConfig } from '../support/cli.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { needService } from '../support/services.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';

/**
 * The cache must decide "who may receive this" only once every hook that can establish an identity has run, and
 * key an identity by a value that is never empty nor shared.
 */
const redisServer = needService('redis-server');
const SECRET = 'security-suite-secret-0123456789abcdef';
const key = new TextEncoder().encode(SECRET);
const jwt = (claims: Record<string, unknown>): Promise<string> => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(key);

/** An upstream that answers with what the request says about its caller, cacheable by everyone. */
function personalUpstream(): Promise<RecordingUpstream> {
  return startUpstream('up', (req, res) => {
    const authz = req.headers.authorization;
    const who = authz === undefined ? (req.headers['x-session'] ?? 'anonymous') : JSON.parse(Buffer.from(authz.split('.')[1]!, 'base64url').toString()).name;
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
    res.end(`account of ${String(who)}`);
  });
}

describe('a cache listed before auth is refused by the config check', () => {
  const cache = { name: 'cache', options: {} };
  const auth = { name: 'auth', options: { apiKey: { keys: ['k-1'] } } };
  const route = (plugins: unknown[]) => ({ path: '/*', methods: ['GET'], response: { body: 'x' }, plugins });

  it.each([
    ['cache then auth in the global list', { plugins: [cache, auth], routes: [route([])] }, '/plugins/1'],
    ['a global cache in front of a route-level auth', { plugins: [cache], routes: [route([auth])] }, '/routes/0/plugins/0'],
  ])('%s', (_what, config, path) => {
    const r = validateConfig(config);
    expect(r.ok).toBe(false);
    const errors = r.ok ? [] : r.errors;
    expect(errors.some((e) => e.startsWith(`${path}: "auth" runs after "cache"`))).toBe(true);
  });

  it.each([
    ['auth then cache', { plugins: [auth, cache], routes: [route([])] }],
    ['a route that lists auth, then its own cache in place of the global one', { plugins: [cache], routes: [route([auth, cache])] }],
    ['a disabled auth after the cache', { plugins: [cache, { ...auth, enabled: false }], routes: [route([])] }],
  ])('%s is accepted', (_what, config) => {
    const r = validateConfig(config);
    expect(r.ok ? [] : r.errors).toEqual([]);
  });

  it('`--check` exits 1 naming the order', () => {
    const out = spawnSync(process.execPath, ['dist/core/cli.js', '--check', '--config', writeConfig({ plugins: [cache], routes: [route([auth])] })], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(out.status).toBe(1);
    expect(out.stderr).toContain('/routes/0/plugins/0: "auth" runs after "cache"');
  });
});

describe('an identity established after the cache looked up is never stored for anonymous clients', () => {
  let gw: RunningGateway;
  let up: RecordingUpstream;
  // A user's own identity plugin (the config check cannot know what it does): a session header is an identity.
  const dir = writePlugins(
    {
      sso: `export default { name: 'sso', version: '1.0.0', init() { return {
        preHandler(ctx) {
          const s = ctx.req.headers['x-session'];
          if (s === undefined) { ctx.send(401, { 'content-type': 'text/plain' }, 'log in'); return; }
          ctx.identity = { method: 'sso', sub: s, scopes: [] };
        },
      }; } };`,
    },
    'gw-sec-sso-',
  );

  beforeAll(async () => {
    up = await personalUpstream();
    gw = await gatewayFor({
      pluginDirs: [dir],
      upstreams: { up: { targets: [up.url] } },
      plugins: [{ name: 'cache', options: {} }],
      routes: [{ path: '/*', methods: ['GET'], upstream: 'up', plugins: [{ name: 'sso' }] }],
    });
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
  });

  it('the authenticated answer is not stored; the anonymous request after it is refused by the identity plugin', async () => {
    const alice = await request(`${gw.url}/account`, { headers: { 'x-session': 'alice' } });
    expect(alice.body).toBe('account of alice');
    const anonymous = await request(`${gw.url}/account`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).not.toContain('alice');
  });
});

describe.each(['memory', 'redis'] as const)('cacheAuthenticated with JWTs without `sub` (%s store)', (store) => {
  let gw: RunningGateway;
  let up: RecordingUpstream;
  let redis: RedisServer | null = null;

  beforeAll(async () => {
    if (store === 'redis') {
      if (!redisServer.available) return;
      redis = await startRedis();
    }
    up = await personalUpstream();
    const storeOptions = store === 'redis' ? { store: 'redis', redis: { url: redis!.url, keyPrefix: 'sec-id:' } } : {};
    gw = await gatewayFor({
      upstreams: { up: { targets: [up.url] } },
      plugins: [
        { name: 'auth', options: { jwt: { secret: SECRET } } },
        { name: 'cache', options: { cacheAuthenticated: true, ...storeOptions } },
      ],
      routes: [{ path: '/*', methods: ['GET'], upstream: 'up' }],
    });
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
    await redis?.close();
  });

  it.skipIf(store === 'redis' && !redisServer.available)('Bob never receives the answer stored for Alice', async () => {
    const alice = await jwt({ name: 'alice' });
    const bob = await jwt({ name: 'bob' });
    expect((await request(`${gw.url}/me`, { headers: { authorization: `Bearer ${alice}` } })).body).toBe('account of alice');
    const again = await request(`${gw.url}/me`, { headers: { authorization: `Bearer ${alice}` } });
    expect(again.headers['x-cache']).toBe('HIT');
    expect(again.body).toBe('account of alice');
    const bobs = await request(`${gw.url}/me`, { headers: { authorization: `Bearer ${bob}` } });
    expect(bobs.body).toBe('account of bob');
    expect(bobs.headers['x-cache']).toBe('MISS');
  });

  it.skipIf(store === 'redis' && !redisServer.available)('an anonymous client never receives an authenticated entry', async () => {
    const alice = await jwt({ sub: 'alice-1', name: 'alice' });
    await request(`${gw.url}/home`, { headers: { authorization: `Bearer ${alice}` } });
    // auth answers 401 before the cache: an anonymous client cannot reach an entry at all on this route
    const anonymous = await request(`${gw.url}/home`);
    expect(anonymous.status).toBe(401);
  });
});
