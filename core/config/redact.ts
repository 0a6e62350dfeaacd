import type { GatewayConfig, HeaderEdits, PluginEntry, RouteConfig } from './types.js';

export const REDACTED = '[redacted]';

/** A location inside a plugin's options: property names, '*' for any property name or array index. */
type OptionPath = readonly string[];

/**
 * The secret-bearing fields of each built-in plugin's options (see each plugin's optionsSchema). Redaction goes by
 * (plugin name, location), never by what a key is called: upstreams, routes and users are named by the operator,
 * and a name like "users" or "keys" must stay visible. Only scalar values are replaced, so an API-key record
 * `{ name, sha256, scopes }` keeps its name and scopes and loses only the digest.
 */
const PLUGIN_SECRETS: Readonly<Record<string, readonly OptionPath[]>> = {
  auth: [
    ['jwt', 'secret'],
    ['apiKey', 'keys', '*'],
    ['apiKey', 'keys', '*', 'sha256'],
    ['basic', 'users', '*'],
    ['basic', 'users', '*', 'hash'],
  ],
};

/**
 * Plugins loaded from pluginDirs declare no schema the admin API can see: in their options, a property whose name
 * is a secret's (as a plugin author names fields, not as an operator names things) is redacted.
 */
const THIRD_PARTY_SECRET_FIELD = /^(secret|password|passwd|passphrase|token|api[-_]?key|private[-_]?key|credentials?|client[-_]?secret|access[-_]?token)$/i;

/** Request headers the gateway adds on the way upstream whose value is a credential (RFC 9110 §11, RFC 6265). */
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie']);

/**
 * The effective config for GET /config with every secret replaced: the secret fields of built-in plugins' options
 * (JWT secrets, API-key digests, basic-auth password hashes), the password of any URL in any plugin's options
 * (`rate-limit` `redis.url`, a tracing endpoint: host and user stay visible), credential headers a route adds
 * upstream, the admin listener's own token or passwords (`admin.auth`), and every header value of an alert
 * webhook. TLS settings are file paths, shown as they are.
 */
export function redactConfig(config: GatewayConfig): unknown {
  const out = structuredClone(config) as GatewayConfig;
  out.plugins = out.plugins.map(redactPlugin);
  out.routes = out.routes.map(redactRoute);
  out.admin = redactAdmin(out.admin);
  out.alerts = {
    ...out.alerts,
    // a receiver's headers exist to authenticate the gateway to it (bearer tokens, API keys): every value goes
    notify: out.alerts.notify.map((n) =>
      n.type === 'webhook' ? { ...n, url: redactUrlPassword(n.url), headers: Object.fromEntries(Object.keys(n.headers).map((k) => [k, REDACTED])) } : n,
    ),
  };
  return out;
}

/** admin.auth: the bearer token and every Basic password; the type and the user names stay visible. */
function redactAdmin(admin: GatewayConfig['admin']): GatewayConfig['admin'] {
  const auth = admin.auth;
  if (auth === undefined) return admin;
  if (auth.type === 'bearer') return { ...admin, auth: { ...auth, token: REDACTED } };
  return { ...admin, auth: { ...auth, users: auth.users.map((u) => ({ ...u, password: REDACTED })) } };
}

function redactRoute(route: RouteConfig): RouteConfig {
  const r = { ...route, plugins: route.plugins.map(redactPlugin) };
  if (route.requestHeaders !== undefined) r.requestHeaders = redactHeaderEdits(route.requestHeaders);
  // each backend may add its own credentials upstream
  if (route.backends !== undefined) {
    r.backends = route.backends.map((b) => (b.requestHeaders === undefined ? b : { ...b, requestHeaders: redactHeaderEdits(b.requestHeaders) }));
  }
  return r;
}

function redactHeaderEdits(edits: HeaderEdits): HeaderEdits {
  const edited: Record<string, string> = {};
  for (const [name, value] of Object.entries(edits.add)) edited[name] = CREDENTIAL_HEADERS.has(name.toLowerCase()) ? REDACTED : value;
  return { ...edits, add: edited };
}

function redactPlugin(entry: PluginEntry): PluginEntry {
  const paths = Object.prototype.hasOwnProperty.call(PLUGIN_SECRETS, entry.name) ? PLUGIN_SECRETS[entry.name]! : null;
  return { ...entry, options: walk(entry.options, [], paths) as Record<string, unknown> };
}

function walk(value: unknown, at: string[], paths: readonly OptionPath[] | null): unknown {
  if (Array.isArray(value)) return value.map((v, i) => walk(v, [...at, String(i)], paths));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const here = [...at, k];
      if (paths === null && THIRD_PARTY_SECRET_FIELD.test(k) && isScalar(v)) out[k] = REDACTED;
      else out[k] = walk(v, here, paths);
    }
    return out;
  }
  if (paths !== null && isScalar(value) && paths.some((p) => matches(p, at))) return REDACTED;
  if (typeof value === 'string') return redactUrlPassword(value);
  return value;
}

function isScalar(v: unknown): boolean {
  return typeof v === 'string' || typeof v === 'number';
}

function matches(path: OptionPath, at: readonly string[]): boolean {
  if (path.length !== at.length) return false;
  for (let i = 0; i < path.length; i++) if (path[i] !== '*' && path[i] !== at[i]) return false;
  return true;
}

/** `redis://user:pass@host:6379/0` → `redis://user:[redacted]@host:6379/0`; a URL without a password is unchanged. */
export function redactUrlPassword(s: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*)@/i.exec(s);
  if (m === null) return s;
  const userinfo = m[2]!;
  const colon = userinfo.indexOf(':');
  // no colon: the whole userinfo is the credential (a token as the user name, as some services take it)
  const kept = colon === -1 ? REDACTED : `${userinfo.slice(0, colon)}:${REDACTED}`;
  return `${m[1]}${kept}@${s.slice(m[0].length)}`;
}
