// Over ~350 lines on purpose: the three schemes (JWT with JWKS, API keys, Basic) share one options schema, one
// per-connection memo and one identity shape; each scheme's verifier is a section of its own below.
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';
import type { RequestContext } from '../../../data/context.js';
import type { GatewayPlugin, PluginInstance } from '../../types.js';
import { sendError } from '../shared/headers.js';
import { checkPasswordHash, findApiKey, loadApiKeys, verifyPassword, type ApiKeyConfig, type ApiKeyRecord, type UserConfig } from './credentials.js';

export interface AuthOptions {
  jwt?: {
    secret?: string;
    publicKey?: string;
    jwksUrl?: string;
    issuer?: string | string[];
    audience?: string | string[];
    algorithms?: string[];
    clockToleranceS: number;
    jwksCacheMaxAgeMs: number;
    jwksCooldownMs: number;
    jwksTimeoutMs: number;
    /** how long a verified token is remembered (0 = verify every request) */
    verifiedCacheMs: number;
  };
  apiKey?: { header: string; query?: string; keys: ApiKeyConfig[]; file?: string };
  basic?: { users: Record<string, UserConfig> };
  /** every one of these scopes is required (403 otherwise) */
  scopes: string[];
  /** request headers set for the upstream: header name → "sub" | "scopes" | "method" | "claims.<name>" */
  identityHeaders: Record<string, string>;
  realm: string;
}

/** What auth puts on ctx.identity (rate-limit's key "subject" reads `sub`, "apiKey" reads `apiKey`). */
export interface AuthIdentity extends Record<string, unknown> {
  method: 'jwt' | 'apiKey' | 'basic';
  sub: string;
  scopes: string[];
  apiKey?: string;
  claims?: JWTPayload;
}

const HMAC = ['HS256', 'HS384', 'HS512'];
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const stringOrList = { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }] } as const;

class AuthFailure {
  constructor(
    readonly status: 401 | 403 | 503,
    readonly challenge: string | null,
    readonly log?: string,
  ) {}
}

/** What can be injected into the auth plugin; production uses the defaults. */
export interface AuthDeps {
  /** the wall clock in epoch ms, for exp/nbf and the verified-token memo (default Date.now); a test moves it instead of sleeping */
  now?: () => number;
}

/**
 * Authentication: JWT (HMAC secret, PEM public key, or a JWKS URL — cached, refetched on an unknown `kid`),
 * API keys (header or query, stored as sha256 digests), HTTP Basic (bcrypt/scrypt). 401 + WWW-Authenticate
 * without valid credentials, 403 when the identity lacks a required scope. Runs in preHandler, so it guards
 * WebSocket upgrades too and runs before any byte is proxied.
 */
export function createAuthPlugin(deps: AuthDeps = {}): GatewayPlugin<AuthOptions> {
  return {
    name: 'auth',
    version: '1.0.0',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        jwt: {
          type: 'object',
          additionalProperties: false,
          properties: {
            secret: { type: 'string', minLength: 1 },
            publicKey: { type: 'string', minLength: 1 },
            jwksUrl: { type: 'string', pattern: '^https?://' },
            issuer: stringOrList,
            audience: stringOrList,
            // "none" is deliberately not an accepted value
            algorithms: { type: 'array', minItems: 1, items: { enum: [...HMAC, ...ASYMMETRIC] } },
            clockToleranceS: { type: 'integer', minimum: 0, maximum: 3600, default: 5 },
            jwksCacheMaxAgeMs: { type: 'integer', minimum: 0, default: 600_000 },
            jwksCooldownMs: { type: 'integer', minimum: 0, default: 30_000 },
            jwksTimeoutMs: { type: 'integer', minimum: 1, default: 5_000 },
            verifiedCacheMs: { type: 'integer', minimum: 0, default: 60_000 },
          },
          oneOf: [{ required: ['secret'] }, { required: ['publicKey'] }, { required: ['jwksUrl'] }],
        },
        apiKey: {
          type: 'object',
          additionalProperties: false,
          properties: {
            header: { type: 'string', minLength: 1, default: 'x-api-key' },
            query: { type: 'string', minLength: 1 },
            keys: {
              type: 'array',
              default: [],
              items: {
                oneOf: [
                  { type: 'string' },
                  {
                    type: 'object',
                    additionalProperties: false,
                    required: ['sha256'],
                    properties: { name: { type: 'string' }, sha256: { type: 'string' }, scopes: { type: 'array', items: { type: 'string' } } },
                  },
                ],
              },
            },
            file: { type: 'string', minLength: 1 },
          },
        },
        basic: {
          type: 'object',
          additionalProperties: false,
          required: ['users'],
          properties: {
            users: {
              type: 'object',
              additionalProperties: {
                oneOf: [
                  { type: 'string' },
                  {
                    type: 'object',
                    additionalProperties: false,
                    required: ['hash'],
                    properties: { hash: { type: 'string' }, scopes: { type: 'array', items: { type: 'string' } } },
                  },
                ],
              },
            },
          },
        },
        scopes: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
        identityHeaders: {
          type: 'object',
          additionalProperties: { type: 'string', pattern: '^(sub|scopes|method|claims\\..+)$' },
          default: { 'x-auth-subject': 'sub', 'x-auth-method': 'method', 'x-auth-scopes': 'scopes' },
        },
        realm: { type: 'string', pattern: '^[^"\\\\]*$', default: 'gateway' },
      },
      anyOf: [{ required: ['jwt'] }, { required: ['apiKey'] }, { required: ['basic'] }],
    },

    init(options, api): PluginInstance {
      const realm = options.realm;
      const denied = api.counter('auth_denied_total', 'requests refused by auth (401/403)');
      const jwt = options.jwt === undefined ? null : makeJwtVerifier(options.jwt, deps.now);
      const apiKeys: ApiKeyRecord[] | null = options.apiKey === undefined ? null : loadApiKeys(options.apiKey.keys, options.apiKey.file);
      if (apiKeys !== null && apiKeys.length === 0) throw new Error('auth apiKey: no keys configured (keys or file)');
      const apiKeyHeader = options.apiKey?.header.toLowerCase();
      const apiKeyQuery = options.apiKey?.query;
      const users = new Map<string, { hash: string; scopes: string[] }>();
      for (const [name, u] of Object.entries(options.basic?.users ?? {})) {
        const entry = typeof u === 'string' ? { hash: u, scopes: [] } : { hash: u.hash, scopes: u.scopes ?? [] };
        checkPasswordHash(entry.hash, `auth basic.users.${name}`);
        users.set(name, entry);
      }
      // Password hashes are slow by design: remember recent successes (keyed by a digest, never the password).
      const verified = new LRUCache<string, true>({ max: 10_000, ttl: 5 * 60_000 });
      const identityHeaders = Object.entries(options.identityHeaders).map(([h, field]) => [h.toLowerCase(), field] as const);

      const challenges: string[] = [];
      if (jwt !== null) challenges.push(`Bearer realm="${realm}"`);
      if (options.basic !== undefined) challenges.push(`Basic realm="${realm}", charset="UTF-8"`);
      if (apiKeyHeader !== undefined) challenges.push(`ApiKey realm="${realm}", header="${apiKeyHeader}"`);

      const fail = (ctx: RequestContext, f: AuthFailure): void => {
        denied.inc();
        if (f.log !== undefined) api.logger.warn({ url: ctx.url }, f.log);
        const headers: OutgoingHttpHeaders = {};
        if (f.status === 401)
          headers['www-authenticate'] =
            f.challenge === null ? challenges : [f.challenge, ...challenges.filter((c) => !c.startsWith(f.challenge!.split(' ')[0]!))];
        else if (f.status === 403 && f.challenge !== null) headers['www-authenticate'] = f.challenge;
        else if (f.status === 503) headers['retry-after'] = '5';
        sendError(ctx, f.status, f.status === 401 ? 'Unauthorized' : f.status === 403 ? 'Forbidden' : 'Service Unavailable', headers);
      };

      // Synchronous unless a check really waits (a JWT not yet verified, a password hash): a remembered token or an
      // API key is decided without a promise, so the request stays on the pipeline's synchronous path.
      const authenticate = (ctx: RequestContext): AuthIdentity | AuthFailure | Promise<AuthIdentity | AuthFailure> => {
        const req = ctx.req!;
        const authz = req.headers.authorization;
        if (authz !== undefined) {
          const sp = authz.indexOf(' ');
          const scheme = (sp === -1 ? authz : authz.slice(0, sp)).toLowerCase();
          const value = sp === -1 ? '' : authz.slice(sp + 1).trim();
          if (scheme === 'bearer' && jwt !== null) return jwt(value, realm, req.socket ?? undefined);
          if (scheme === 'basic' && users.size > 0) return basic(value);
        }
        if (apiKeys !== null) {
          let presented: string | undefined;
          const hv = req.headers[apiKeyHeader!];
          if (typeof hv === 'string') presented = hv;
          else if (apiKeyQuery !== undefined && ctx.search !== '') {
            const params = new URLSearchParams(ctx.search);
            const qv = params.get(apiKeyQuery);
            if (qv !== null) {
              presented = qv;
              // The key is a credential for us, not for the upstream (and must not land in its access logs).
              params.delete(apiKeyQuery);
              const rest = params.toString();
              ctx.url = rest === '' ? ctx.pathname : `${ctx.pathname}?${rest}`;
            }
          }
          if (presented !== undefined) {
            const rec = findApiKey(presented, apiKeys);
            if (rec === null) return new AuthFailure(401, `ApiKey realm="${realm}", error="invalid_key"`);
            return { method: 'apiKey', sub: rec.name, apiKey: rec.name, scopes: rec.scopes };
          }
        }
        return new AuthFailure(401, null);
      };

      const basic = async (value: string): Promise<AuthIdentity | AuthFailure> => {
        const bad = new AuthFailure(401, `Basic realm="${realm}", charset="UTF-8"`);
        const decoded = Buffer.from(value, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon === -1) return bad;
        const name = decoded.slice(0, colon);
        const password = decoded.slice(colon + 1);
        const user = users.get(name);
        const cacheKey = createHash('sha256').update(value).digest('base64');
        if (user !== undefined && verified.get(cacheKey) === true) return { method: 'basic', sub: name, scopes: user.scopes };
        // Unknown users cost a hash check too, so response time does not reveal which names exist.
        const ok = await verifyPassword(password, user?.hash ?? DUMMY_BCRYPT);
        if (!ok || user === undefined) return bad;
        verified.set(cacheKey, true);
        return { method: 'basic', sub: name, scopes: user.scopes };
      };

      const conclude = (ctx: RequestContext, result: AuthIdentity | AuthFailure): void => {
        if (result instanceof AuthFailure) {
          fail(ctx, result);
          return;
        }
        for (const s of options.scopes) {
          if (!result.scopes.includes(s)) {
            fail(ctx, new AuthFailure(403, `Bearer realm="${realm}", error="insufficient_scope", scope="${options.scopes.join(' ')}"`));
            return;
          }
        }
        ctx.identity = result;
        setIdentityHeaders(ctx, identityHeaders, result);
      };

      return {
        preHandler(ctx: RequestContext): void | Promise<void> {
          const headers = ctx.req!.headers;
          // Identity headers are ours to set: a client must not be able to send its own. (Only when present:
          // a delete turns the headers object into a slow dictionary for every later lookup.)
          for (let i = 0; i < identityHeaders.length; i++) {
            const h = identityHeaders[i]![0];
            if (headers[h] !== undefined) delete headers[h];
          }
          const result = authenticate(ctx);
          if (result instanceof Promise) return result.then((r) => conclude(ctx, r));
          conclude(ctx, result);
        },
      };
    },
  };
}

export const authPlugin = createAuthPlugin();

// bcrypt of a random string; only ever compared against, to spend the same time on unknown users.
const DUMMY_BCRYPT = '$2b$10$rjUNuignpYGZQy20UpPCYO0zYQ5AG3i7id2grT.9v9D9Qg4a/8IuO';

/** Vouched for (ctx.setUpstreamHeader): a client can neither send its own nor strip ours with `Connection`. */
function setIdentityHeaders(ctx: RequestContext, headers: ReadonlyArray<readonly [string, string]>, id: AuthIdentity): void {
  for (const [h, field] of headers) {
    let v: unknown;
    if (field === 'sub') v = id.sub;
    else if (field === 'scopes') v = id.scopes.join(' ');
    else if (field === 'method') v = id.method;
    else v = id.claims?.[field.slice(7)];
    if (v === undefined || v === null || v === '') continue;
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    // Header values cannot carry control characters (a claim could): drop rather than fail the request.
    if (!/[\r\n\0]/.test(s)) ctx.setUpstreamHeader(h, s);
  }
}

function scopesOf(payload: JWTPayload): string[] {
  const s = payload.scope ?? payload.scp;
  if (typeof s === 'string') return s.split(' ').filter(Boolean);
  if (Array.isArray(s)) return s.filter((x): x is string => typeof x === 'string');
  return [];
}

/** A verified token as remembered: valid until expiresAt (epoch ms; its exp + tolerance or sooner), from nbf on. */
interface VerifiedToken {
  id: AuthIdentity;
  nbf: number;
  expiresAt: number;
}

type JwtVerifier = (token: string, realm: string, conn: object | undefined) => AuthIdentity | AuthFailure | Promise<AuthIdentity | AuthFailure>;

function makeJwtVerifier(o: NonNullable<AuthOptions['jwt']>, clock: (() => number) | undefined): JwtVerifier {
  const now = clock ?? Date.now;
  let key: Uint8Array | KeyObject | JWTVerifyGetKey;
  let algorithms: string[];
  if (o.secret !== undefined) {
    key = new TextEncoder().encode(o.secret);
    algorithms = o.algorithms ?? HMAC;
    if (algorithms.some((a) => !HMAC.includes(a))) throw new Error('auth jwt: a secret only verifies HS256/HS384/HS512');
  } else {
    // HMAC with a public key as the "secret" is the classic key-confusion attack: never allowed here.
    algorithms = o.algorithms ?? ASYMMETRIC;
    if (algorithms.some((a) => HMAC.includes(a))) throw new Error('auth jwt: HS* algorithms need a secret, not a public key');
    if (o.publicKey !== undefined) key = createPublicKey(o.publicKey);
    else
      key = createRemoteJWKSet(new URL(o.jwksUrl!), { cacheMaxAge: o.jwksCacheMaxAgeMs, cooldownDuration: o.jwksCooldownMs, timeoutDuration: o.jwksTimeoutMs });
  }
  const verifyOptions = { issuer: o.issuer, audience: o.audience, algorithms, clockTolerance: o.clockToleranceS };
  // Clients resend the same token for its whole life: remember verified ones (keyed by the full token, signature
  // included) instead of re-verifying every request. Bounded in count and in time, and never past the token's
  // exp — or past a JWKS refresh interval, so a key the issuer withdraws stops being honoured.
  const maxCacheMs = o.jwksUrl !== undefined ? Math.min(o.verifiedCacheMs, o.jwksCacheMaxAgeMs) : o.verifiedCacheMs;
  const verified = new LRUCache<string, VerifiedToken>({ max: 10_000 });
  // A keep-alive connection presents the same token request after request: the last one seen on each
  // connection is remembered next to the LRU, so the common case is a string comparison instead of hashing a
  // ~200-character token for the LRU lookup. Bounded by the open connections (an entry goes with its socket).
  const lastOnConnection = new WeakMap<object, { token: string; entry: VerifiedToken }>();
  const tolerance = o.clockToleranceS * 1000;
  const verify = async (token: string, realm: string): Promise<AuthIdentity | AuthFailure> => {
    try {
      // jose reads its own clock for exp/nbf unless told the time: an injected clock is passed on (a Date per
      // verification, only then; the default path keeps the one options object).
      const options = clock === undefined ? verifyOptions : { ...verifyOptions, currentDate: new Date(clock()) };
      const { payload } = await jwtVerify(token, key as Parameters<typeof jwtVerify>[1], options);
      const id: AuthIdentity = { method: 'jwt', sub: typeof payload.sub === 'string' ? payload.sub : '', scopes: scopesOf(payload), claims: payload };
      const untilExp = payload.exp === undefined ? maxCacheMs : payload.exp * 1000 + tolerance - now();
      const ttl = Math.min(maxCacheMs, untilExp);
      if (ttl >= 1) {
        const nbf = payload.nbf === undefined ? 0 : payload.nbf * 1000;
        verified.set(token, { id, nbf, expiresAt: now() + Math.floor(ttl) }, { ttl: Math.floor(ttl) });
      }
      return id;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_JWKS_TIMEOUT' || (code === undefined && o.jwksUrl !== undefined && !(err instanceof joseErrors.JOSEError))) {
        return new AuthFailure(503, null, `JWKS unavailable: ${(err as Error).message}`);
      }
      return new AuthFailure(401, `Bearer realm="${realm}", error="invalid_token", error_description="${describe(code)}"`);
    }
  };
  // A remembered token is answered without a promise; only a real verification is async.
  const remembered = (token: string, conn: object | undefined, now: number): VerifiedToken | undefined => {
    if (conn !== undefined) {
      const last = lastOnConnection.get(conn);
      if (last !== undefined && last.token === token && now < last.entry.expiresAt) return last.entry;
    }
    const entry = verified.get(token);
    if (entry !== undefined && conn !== undefined) lastOnConnection.set(conn, { token, entry });
    return entry;
  };
  // A remembered token is answered without a promise; only a real verification is async. exp (via expiresAt)
  // and nbf are checked at every use, wherever the entry came from.
  return (token, realm, conn) => {
    if (maxCacheMs > 0) {
      const t = now();
      const hit = remembered(token, conn, t);
      if (hit !== undefined && t < hit.expiresAt && t + tolerance >= hit.nbf) return hit.id;
    }
    return verify(token, realm);
  };
}

function describe(code: string | undefined): string {
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'token expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return 'claim validation failed';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'algorithm not allowed';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'unknown signing key';
    default:
      return 'invalid token';
  }
}

export default authPlugin;
