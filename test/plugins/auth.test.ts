import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { createAuthPlugin } from '../../core/plugins/builtin/auth/index.js';
import { builtinPlugins } from '../../core/plugins/builtin/index.js';
import { testClock } from '../support/clock.js';
import { request } from '../support/http.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { gatewayFor } from './helpers.js';

const SECRET = 'a-very-secret-hmac-key-of-enough-length!';
const secretKey = new TextEncoder().encode(SECRET);
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

let gw: RunningGateway;
let up: RecordingUpstream;
let jwks: RecordingUpstream;
let jwksUrl = '';
let jwksKeys: JWK[] = [];
let jwksFetches = 0;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
let kp1: Awaited<ReturnType<typeof generateKeyPair>>;
let kp2: Awaited<ReturnType<typeof generateKeyPair>>;

// The gateway's auth plugin reads this clock (exp, nbf, the verified-token memo): expiry tests move it instead of
// sleeping past a whole second of JWT time.
const clock = testClock();
const builtinAuth = builtinPlugins.auth!;
builtinPlugins.auth = createAuthPlugin({ now: clock.now });
const now = (): number => Math.floor(clock.now() / 1000);

function hs256(claims: Record<string, unknown>, opts: { exp?: number; aud?: string } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject((claims.sub as string) ?? 'user-1')
    .setIssuer('https://issuer.example')
    .setAudience(opts.aud ?? 'gateway-api')
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? now() + 600)
    .sign(secretKey);
}

beforeAll(async () => {
  kp1 = await generateKeyPair('ES256');
  kp2 = await generateKeyPair('ES256');
  jwksKeys = [{ ...(await exportJWK(kp1.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }];
  jwks = await startUpstream('jwks', (_req, res) => {
    jwksFetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: jwksKeys }));
  });
  jwksUrl = `${jwks.url}/jwks.json`;

  up = await startUpstream('up', (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(req.headers));
  });
  const keyFile = join(mkdtempSync(join(tmpdir(), 'gw-keys-')), 'keys.txt');
  writeFileSync(keyFile, `# service keys\nfile-svc:${sha('file-key')}:read\n`);
  const pw = bcrypt.hashSync('s3cret', 4);

  gw = await gatewayFor({
    upstreams: { up: { targets: [up.url] } },
    routes: [
      {
        path: '/hs/*',
        methods: ['GET'],
        upstream: 'up',
        plugins: [{ name: 'auth', options: { jwt: { secret: SECRET, issuer: 'https://issuer.example', audience: 'gateway-api', clockToleranceS: 0 } } }],
      },
      {
        path: '/scoped',
        methods: ['GET'],
        handler: 'echo',
        plugins: [{ name: 'auth', options: { jwt: { secret: SECRET }, scopes: ['orders:read'] } }],
      },
      {
        path: '/rs',
        methods: ['GET'],
        handler: 'echo',
        plugins: [{ name: 'auth', options: { jwt: { publicKey: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString(), algorithms: ['RS256'] } } }],
      },
      {
        path: '/jwks',
        methods: ['GET'],
        handler: 'echo',
        plugins: [{ name: 'auth', options: { jwt: { jwksUrl, jwksCooldownMs: 0, verifiedCacheMs: 0 } } }],
      },
      {
        path: '/key/*',
        methods: ['GET'],
        upstream: 'up',
        plugins: [
          {
            name: 'auth',
            options: {
              apiKey: { header: 'x-api-key', query: 'api_key', keys: [sha('k-123'), { name: 'partner', sha256: sha('k-456'), scopes: ['x'] }], file: keyFile },
            },
          },
        ],
      },
      {
        path: '/basic',
        methods: ['GET'],
        handler: 'echo',
        plugins: [{ name: 'auth', options: { basic: { users: { alice: pw } }, identityHeaders: { 'x-user': 'sub' } } }],
      },
      {
        path: '/ws',
        methods: ['GET'],
        upstream: 'up',
        plugins: [{ name: 'auth', options: { apiKey: { keys: [sha('k-123')] } } }],
      },
    ],
  });
});

afterAll(async () => {
  builtinPlugins.auth = builtinAuth;
  await gw.close();
  await up.close();
  await jwks.close();
});

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

describe('auth: JWT (HS256)', () => {
  it('accepts a valid token and passes the identity upstream', async () => {
    const r = await request(`${gw.url}/hs/a`, { headers: bearer(await hs256({ sub: 'user-1', scope: 'a b' })) });
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body);
    expect(seen['x-auth-subject']).toBe('user-1');
    expect(seen['x-auth-method']).toBe('jwt');
    expect(seen['x-auth-scopes']).toBe('a b');
  });

  it('strips identity headers a client sends itself', async () => {
    const r = await request(`${gw.url}/hs/a`, {
      headers: { ...bearer(await hs256({ sub: 'real' })), 'x-auth-subject': 'admin', 'x-auth-scopes': 'everything' },
    });
    const seen = JSON.parse(r.body);
    expect(seen['x-auth-subject']).toBe('real');
    expect(seen['x-auth-scopes']).toBeUndefined();
  });

  it('401 with WWW-Authenticate without credentials, nothing sent upstream', async () => {
    const before = up.received.length;
    const r = await request(`${gw.url}/hs/a`);
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer realm="gateway"');
    expect(up.received.length).toBe(before);
  });

  it('remembers verified tokens but never past their exp', async () => {
    const exp = now() + 2;
    const t = await hs256({ sub: 'short' }, { exp });
    expect((await request(`${gw.url}/hs/a`, { headers: bearer(t) })).status).toBe(200);
    expect((await request(`${gw.url}/hs/a`, { headers: bearer(t) })).status).toBe(200);
    // a millisecond before exp (clockToleranceS 0) it is still good; at exp it is not, remembered or not
    clock.advance(exp * 1000 - 1 - clock.now());
    expect((await request(`${gw.url}/hs/a`, { headers: bearer(t) })).status).toBe(200);
    clock.advance(exp * 1000 - clock.now());
    const r = await request(`${gw.url}/hs/a`, { headers: bearer(t) });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toContain('error_description="token expired"');
  });

  it('on one keep-alive connection: a remembered token still ends at its exp, another token is checked on its own', async () => {
    const one = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const ports = new Set<number>();
    one.on('free', (socket: { localPort?: number }) => ports.add(socket.localPort ?? -1));
    try {
      const exp = now() + 2;
      const t = await hs256({ sub: 'conn' }, { exp });
      expect((await request(`${gw.url}/hs/a`, { headers: bearer(t), agent: one })).status).toBe(200);
      expect((await request(`${gw.url}/hs/a`, { headers: bearer(t), agent: one })).status).toBe(200);
      // The same connection presents a token with a forged signature: it is not the remembered one.
      const [h, p] = t.split('.');
      const forged = await new SignJWT({ sub: 'conn' })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode('another-secret-0123456789abcdef0123'));
      expect((await request(`${gw.url}/hs/a`, { headers: bearer(`${h}.${p}.${forged.split('.')[2]}`), agent: one })).status).toBe(401);
      expect((await request(`${gw.url}/hs/a`, { headers: bearer(t), agent: one })).status).toBe(200);
      clock.advance(exp * 1000 - clock.now());
      expect((await request(`${gw.url}/hs/a`, { headers: bearer(t), agent: one })).status).toBe(401);
      expect(ports.size).toBe(1);
    } finally {
      one.destroy();
    }
  });

  it('rejects an expired token', async () => {
    const r = await request(`${gw.url}/hs/a`, { headers: bearer(await hs256({}, { exp: now() - 60 })) });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer realm="gateway", error="invalid_token", error_description="token expired"');
  });

  it('rejects a wrong audience', async () => {
    const r = await request(`${gw.url}/hs/a`, { headers: bearer(await hs256({}, { aud: 'someone-else' })) });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toContain('error_description="claim validation failed"');
  });

  it('rejects a bad signature', async () => {
    const t = await hs256({ sub: 'user-1' });
    const [h, p] = t.split('.');
    const forged = await new SignJWT({ sub: 'user-1' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('another-secret-another-secret-xx'));
    const r = await request(`${gw.url}/hs/a`, { headers: bearer(`${h}.${p}.${forged.split('.')[2]}`) });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toContain('error_description="bad signature"');
  });

  it('rejects alg: none', async () => {
    const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ sub: 'admin', iss: 'https://issuer.example', aud: 'gateway-api', exp: now() + 600 })}.`;
    const r = await request(`${gw.url}/hs/a`, { headers: bearer(token) });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toContain('error="invalid_token"');
  });

  it('403 with insufficient_scope for a valid identity missing the scope', async () => {
    const r = await request(`${gw.url}/scoped`, { headers: bearer(await hs256({ scope: 'orders:write' })) });
    expect(r.status).toBe(403);
    expect(r.headers['www-authenticate']).toBe('Bearer realm="gateway", error="insufficient_scope", scope="orders:read"');
    const ok = await request(`${gw.url}/scoped`, { headers: bearer(await hs256({ scp: ['orders:read'] })) });
    expect(ok.status).toBe(200);
  });
});

describe('auth: JWT (public key, JWKS)', () => {
  it('verifies RS256 with a PEM public key and refuses HS256 tokens there', async () => {
    const t = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setSubject('rs-user').setExpirationTime('5m').sign(rsa.privateKey);
    expect((await request(`${gw.url}/rs`, { headers: bearer(t) })).status).toBe(200);
    const hs = await request(`${gw.url}/rs`, { headers: bearer(await hs256({})) });
    expect(hs.status).toBe(401);
  });

  it('verifies with a JWKS, caches it, and follows a key rotation', async () => {
    const sign = (kp: typeof kp1, kid: string): Promise<string> =>
      new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid }).setSubject(`sub-${kid}`).setExpirationTime('5m').sign(kp.privateKey);
    const t1 = await sign(kp1, 'k1');
    const r1 = await request(`${gw.url}/jwks`, { headers: bearer(t1) });
    expect(r1.status).toBe(200);
    expect(JSON.parse(r1.body).headers['x-auth-subject']).toBe('sub-k1');
    expect((await request(`${gw.url}/jwks`, { headers: bearer(t1) })).status).toBe(200);
    expect(jwksFetches).toBe(1); // cached

    // rotation: the issuer now publishes k2 only
    jwksKeys = [{ ...(await exportJWK(kp2.publicKey)), kid: 'k2', alg: 'ES256', use: 'sig' }];
    const t2 = await sign(kp2, 'k2');
    const r2 = await request(`${gw.url}/jwks`, { headers: bearer(t2) });
    expect(r2.status).toBe(200);
    expect(jwksFetches).toBe(2); // unknown kid → refetched
    // the retired key no longer verifies once the new set is cached
    const old = await request(`${gw.url}/jwks`, { headers: bearer(t1) });
    expect(old.status).toBe(401);
  });
});

describe('auth: API keys and Basic', () => {
  it('accepts a key from the header, from the query (stripped before proxying) and from the key file', async () => {
    const h = await request(`${gw.url}/key/a`, { headers: { 'x-api-key': 'k-123' } });
    expect(h.status).toBe(200);
    expect(JSON.parse(h.body)['x-auth-method']).toBe('apiKey');
    const q = await request(`${gw.url}/key/b?api_key=k-456&x=1`);
    expect(q.status).toBe(200);
    expect(JSON.parse(q.body)['x-auth-subject']).toBe('partner');
    expect(up.received.at(-1)!.url).toBe('/key/b?x=1');
    const f = await request(`${gw.url}/key/c`, { headers: { 'x-api-key': 'file-key' } });
    expect(f.status).toBe(200);
    expect(JSON.parse(f.body)['x-auth-scopes']).toBe('read');
  });

  it('401 for an unknown key', async () => {
    const r = await request(`${gw.url}/key/a`, { headers: { 'x-api-key': 'k-12' } });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('ApiKey realm="gateway", error="invalid_key"');
  });

  it('HTTP Basic with a bcrypt hash', async () => {
    const b = (u: string, p: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
    const ok = await request(`${gw.url}/basic`, { headers: b('alice', 's3cret') });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).headers['x-user']).toBe('alice');
    expect((await request(`${gw.url}/basic`, { headers: b('alice', 's3cret') })).status).toBe(200);
    const bad = await request(`${gw.url}/basic`, { headers: b('alice', 'wrong') });
    expect(bad.status).toBe(401);
    expect(bad.headers['www-authenticate']).toBe('Basic realm="gateway", charset="UTF-8"');
    expect((await request(`${gw.url}/basic`, { headers: b('mallory', 's3cret') })).status).toBe(401);
    expect((await request(`${gw.url}/basic`)).status).toBe(401);
  });

  it('applies to WebSocket upgrades: 401 on the raw socket, nothing reaches the upstream', async () => {
    const before = up.received.length;
    const u = new URL(gw.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const s = connect(Number(u.port), u.hostname);
      let data = '';
      s.on('data', (c) => (data += c.toString()));
      s.on('end', () => resolve(data));
      s.on('error', reject);
      s.write(
        'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
    });
    expect(answer.startsWith('HTTP/1.1 401 ')).toBe(true);
    expect(answer.toLowerCase()).toContain('www-authenticate: apikey realm="gateway", header="x-api-key"');
    expect(up.received.length).toBe(before);
  });

  it('rejects a key that is not a sha256 digest at config time', async () => {
    await expect(
      gatewayFor({ routes: [{ path: '/', methods: ['GET'], handler: 'echo', plugins: [{ name: 'auth', options: { apiKey: { keys: ['plaintext'] } } }] }] }),
    ).rejects.toThrow(/sha256/);
  });
});
