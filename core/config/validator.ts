import { METHODS, validateHeaderName, validateHeaderValue } from 'node:http';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import AjvModule, { type ErrorObject } from 'ajv';
import { adminAuthConfigErrors } from '../admin/auth.js';
import { alertConfigErrors } from '../alerts/config-check.js';
import { ConfigError } from '../base/errors.js';
import { fail, ok, type Result } from '../base/result.js';
import { tlsConfigErrors } from '../base/tls.js';
import { RoutePatternError } from '../contracts/router.js';
import { needsSelector, RouteSelector, selectEntry } from '../data/route-select.js';
import { ACCESS_LOG_FIELDS, DEFAULT_ACCESS_LOG_FIELDS, templateFields } from '../observe/access-log-fields.js';
import { dnsConfigErrors } from '../proxy/discovery.js';
import { upstreamProtocolErrors } from '../proxy/h2-client.js';
import { TrustedProxies } from '../proxy/trust.js';
import { upstreamTlsConfigErrors } from '../proxy/upstream-tls.js';
import { hasVariant, routerFactory, variantFamilies, variantNames, type VariantFamily } from '../variants.js';
import { pluginDirErrors, resolveConfigPaths } from './paths.js';
import { routeSelectionErrors } from './route-selection.js';
import { gatewaySchema } from './schema.js';
import { routeTrafficErrors } from './traffic-check.js';
import type { AccessLogConfig, GatewayConfig } from './types.js';
import { normalizeUpstream } from './upstream-schema.js';

// ajv is CommonJS; under NodeNext its default export is the module namespace.
const Ajv = AjvModule.default ?? AjvModule;

/** What each anyOf in the schema accepts, by JSON path, for the one error a value that fits none of them gets. */
const ANY_OF_SHAPES: Record<string, string> = {
  '/routes/*/rewrite': 'a path starting with "/" (naming :params and *) or { regex, replacement } with a replacement starting with "/"',
  '/logging/accessLog': 'true, false, "json", "combined", a template naming $fields, a list of field names, or an object (format, fields, sampleSuccess, file)',
};

/** A validated config (defaults applied, paths resolved), or every problem found. */
export type ValidationResult = Result<GatewayConfig>;

export interface ValidateOptions {
  /** the config file's folder: relative file paths in the config resolve against it (default: left as written, i.e. the cwd) */
  baseDir?: string;
}

/** What node:http's parser accepts: a route for any other method could never match. */
const KNOWN_METHODS = new Set(METHODS);

/**
 * Shortest watchdog period accepted: a heartbeat goes through the primary's and the worker's event loops and back,
 * and a healthy worker's major GC or a plugin's synchronous reload work can hold its loop for a few hundred ms.
 */
export const MIN_WATCHDOG_MS = 250;

/** Shared with the orchestrator's start(), which refuses the same thing for a config that skipped validation. */
export const THREADS_UNSUPPORTED = '"threads" needs server.listen({ reusePort }), which this Node runtime lacks; use "cluster"';

// Compiled once per process: validation of a hot-reloaded file costs a function call, not a schema compile.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const validateSchema = ajv.compile(gatewaySchema);

/**
 * Runs the schema alone on `data`, applying its defaults in place; returns ajv's raw errors (empty when valid).
 * For the one-pass `--check`, which prunes what the schema refused and checks the rest (core/config/check.ts).
 */
export function schemaErrorObjects(data: unknown): ErrorObject[] {
  return validateSchema(data) ? [] : [...(validateSchema.errors ?? [])];
}

export function formatAjvError(e: ErrorObject): string {
  const path = e.instancePath === '' ? '/' : e.instancePath;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${path}: must NOT have additional property "${(e.params as { additionalProperty: string }).additionalProperty}"`;
    case 'required':
      return `${path}: must have required property "${(e.params as { missingProperty: string }).missingProperty}"`;
    case 'enum':
      return `${path}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'pattern':
      if ((e.params as { pattern: string }).pattern === '^/') return `${path}: must start with "/"`;
      return `${path}: ${e.message}`;
    case 'anyOf':
      return `${path}: must be ${ANY_OF_SHAPES[e.instancePath.replace(/\/\d+(?=\/|$)/g, '/*')] ?? 'one of the shapes the schema allows'}`;
    case 'propertyNames':
      return `${path}: property name ${JSON.stringify((e.params as { propertyName: string }).propertyName)} is invalid`;
    default:
      return `${path}: ${e.message}`;
  }
}

/**
 * ajv reports a failed propertyNames twice (the name's own pattern error, then the wrapper), and a failed if/then
 * (an alert notifier's fields for its `type`) as the field's error plus a vague `must match "then" schema`; keep
 * the clear one.
 */
function dedupe(errors: ErrorObject[]): string[] {
  const out: string[] = [];
  // a value that fits none of an anyOf's shapes: one line saying which shapes there are, not one per shape
  const anyOfAt = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  for (const e of errors) {
    if (anyOfAt.has(e.instancePath) && e.keyword !== 'anyOf') continue;
    if (e.keyword === 'pattern' && e.propertyName !== undefined) continue;
    if (e.keyword === 'if') continue;
    const msg = formatAjvError(e);
    if (!out.includes(msg)) out.push(msg);
  }
  return out;
}

/**
 * Validates raw JSON (already parsed) against the schema, applies defaults, then checks what a schema cannot:
 * one handler kind per route, upstream references, variant names, route patterns the selected router accepts.
 * Never throws on any input; the input object is not mutated (defaults are applied to a copy).
 */
/**
 * Arrays with named properties, which JSON cannot express but a config object built in code can: a `constructor`
 * there breaks every array method that consults it (map, filter, slice) deep inside the checks below, so such
 * input is refused up front, with its path.
 */
function namedArrayProperties(value: object, path: string, errors: string[] = [], seen = new Set<object>()): string[] {
  if (seen.has(value)) {
    errors.push(`${path || '/'}: refers back to itself (a config is JSON data)`);
    return errors;
  }
  seen.add(value);
  const isArray = Array.isArray(value);
  for (const k of Object.keys(value)) {
    if (isArray && !/^(0|[1-9]\d*)$/.test(k)) errors.push(`${path || '/'}: an array with a named property "${k}" (a config is JSON data)`);
    const v: unknown = (value as Record<string, unknown>)[k];
    if (v !== null && typeof v === 'object') namedArrayProperties(v, `${path}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, errors, seen);
  }
  seen.delete(value);
  return errors;
}

export function validateConfig(raw: unknown, opts: ValidateOptions = {}): ValidationResult {
  let copy: unknown;
  try {
    copy = raw === undefined ? {} : structuredClone(raw);
  } catch {
    return fail(['/: must be plain JSON data']);
  }
  if (copy === null || typeof copy !== 'object' || Array.isArray(copy)) {
    return fail(['/: must be object']);
  }
  const notJson = namedArrayProperties(copy, '');
  if (notJson.length > 0) return fail(notJson);
  if (!validateSchema(copy)) return fail(dedupe(validateSchema.errors ?? []));

  const config = copy as GatewayConfig;
  const errors: string[] = [];
  if (opts.baseDir !== undefined) resolveConfigPaths(config, opts.baseDir);
  errors.push(...pluginDirErrors(config.pluginDirs));

  if (config.server.workers === undefined) config.server.workers = availableParallelism();
  for (const family of Object.keys(variantFamilies) as VariantFamily[]) {
    const name = config.variants[family];
    if (name === undefined) config.variants[family] = variantFamilies[family].default;
    else if (!hasVariant(family, name)) {
      errors.push(`/variants/${family}: unknown ${family} variant "${name}" (known: ${variantNames(family).join(', ')})`);
    }
  }

  if (config.server.workerMode === 'threads' && config.server.workers > 0) errors.push(`/server/workerMode: ${THREADS_UNSUPPORTED}`);
  const { admin, server } = config;
  if (admin.enabled && admin.port !== 0 && admin.port === server.port && sameListenAddress(admin.host, server.host)) {
    errors.push(`/admin/port: ${admin.port} is also server.port (the second listener could not bind)`);
  }
  // node:http refuses this when the listener is created, after --check said the file was valid: say it here.
  if (server.requestTimeoutMs > 0 && server.headersTimeoutMs > server.requestTimeoutMs) {
    errors.push(
      `/server/headersTimeoutMs: ${server.headersTimeoutMs} exceeds server.requestTimeoutMs ${server.requestTimeoutMs} (Node's http server refuses to start)`,
    );
  }

  if (server.watchdogMs > 0 && server.watchdogMs < MIN_WATCHDOG_MS) {
    errors.push(`/server/watchdogMs: must be 0 (off) or at least ${MIN_WATCHDOG_MS} (a shorter one would kill workers busy with ordinary GC pauses)`);
  }

  errors.push(...adminAuthConfigErrors(admin.auth));

  config.server.trustedProxies.forEach((entry, i) => {
    try {
      new TrustedProxies([entry]);
    } catch {
      errors.push(`/server/trustedProxies/${i}: must be an IP address or CIDR range, got ${JSON.stringify(entry)}`);
    }
  });

  for (const name of Object.keys(config.upstreams)) {
    config.upstreams[name] = normalizeUpstream(config.upstreams[name]);
  }

  // Routes with hosts or match conditions are checked by the selector the runtime builds (below). The rest go
  // through one router as well, so a plain duplicate stays an error whether or not other routes select by host.
  const selecting = needsSelector(config.routes);
  let selectionValid = true;
  const router = hasVariant('router', config.variants.router) ? routerFactory(config.variants.router)<number>() : null;
  config.routes.forEach((route, i) => {
    const kinds = ['response', 'upstream', 'backends', 'handler', 'redirect'].filter((k) => (route as unknown as Record<string, unknown>)[k] !== undefined);
    if (kinds.length !== 1) {
      errors.push(
        `/routes/${i}: must have exactly one of "response", "upstream", "backends", "handler", "redirect" (found ${kinds.length === 0 ? 'none' : kinds.join(', ')})`,
      );
    }
    const selectionErrors = routeSelectionErrors(route, i);
    if (selectionErrors.length > 0) selectionValid = false;
    errors.push(...selectionErrors);
    route.methods.forEach((m, j) => {
      if (m !== '*' && !KNOWN_METHODS.has(m)) errors.push(`/routes/${i}/methods/${j}: unknown HTTP method "${m}" (known: ${METHODS.join(', ')})`);
    });
    // node:http refuses these at write time: caught here, the route is refused with its path instead of every
    // request on it answering 500.
    headerErrors(route.response?.headers, `/routes/${i}/response/headers`, errors);
    headerErrors(route.requestHeaders?.add, `/routes/${i}/requestHeaders/add`, errors);
    headerErrors(route.responseHeaders?.add, `/routes/${i}/responseHeaders/add`, errors);
    if (route.upstream !== undefined && !Object.prototype.hasOwnProperty.call(config.upstreams, route.upstream)) {
      errors.push(`/routes/${i}/upstream: unknown upstream "${route.upstream}"`);
    }
    route.backends?.forEach((b, j) => headerErrors(b.requestHeaders?.add, `/routes/${i}/backends/${j}/requestHeaders/add`, errors));
    errors.push(...routeTrafficErrors(route, i, config.upstreams));
    if (router !== null && !needsSelector([route])) {
      try {
        for (const m of route.methods) router.add(m, route.path, i);
      } catch (err) {
        if (err instanceof RoutePatternError) errors.push(`/routes/${i}/path: ${err.message}`);
        else errors.push(`/routes/${i}/path: ${(err as Error).message}`);
      }
    }
  });

  if (selecting && selectionValid && hasVariant('router', config.variants.router)) {
    const entries = config.routes.map((route, i) => selectEntry(route, i, i));
    new RouteSelector(entries, routerFactory(config.variants.router), (i, err) => {
      // a route without hosts or conditions was checked above already
      const message = `/routes/${i}/path: ${err.message}`;
      if (!errors.includes(message)) errors.push(message);
    });
  }

  errors.push(...cacheBeforeAuthErrors(config));
  errors.push(...alertConfigErrors(config));
  config.logging.accessLog = normalizeAccessLog(config.logging.accessLog as unknown, errors);
  // relative to the config file, like every other path in it
  if (opts.baseDir !== undefined && config.logging.accessLog.file !== '') config.logging.accessLog.file = resolve(opts.baseDir, config.logging.accessLog.file);

  // server.tls files are read here so --check, startup and hot reload all name a missing or broken PEM.
  errors.push(...tlsConfigErrors(config.server));
  errors.push(...upstreamTlsConfigErrors(config.upstreams));
  errors.push(...dnsConfigErrors(config.upstreams));
  errors.push(...upstreamProtocolErrors(config.upstreams));

  return errors.length > 0 ? fail(errors) : ok(config);
}

/**
 * A cache decides whether a request is anonymous in its preHandler: an `auth` that runs after it (later in one list,
 * or a route's auth behind a global cache, since global hooks run first) has not yet established the identity, so
 * authenticated answers would be keyed as anonymous. The cache also refuses to store such answers at runtime (for
 * identity plugins a config check cannot know); this makes the order itself an error, with the fix in the message.
 */
function cacheBeforeAuthErrors(config: GatewayConfig): string[] {
  const errors: string[] = [];
  const globals = config.plugins.map((p, i) => ({ name: p.name, enabled: p.enabled, at: `/plugins/${i}` }));
  const check = (chain: Array<{ name: string; enabled: boolean; at: string }>, where: string): void => {
    const on = chain.filter((p) => p.enabled);
    const cache = on.findIndex((p) => p.name === 'cache');
    const auth = on.findIndex((p) => p.name === 'auth');
    if (cache !== -1 && auth > cache) {
      errors.push(
        `${on[auth]!.at}: "auth" runs after "cache" (${on[cache]!.at})${where}: the cache would decide on identity before auth established it; ` +
          'list auth before cache (for a route-level auth behind a global cache, add the cache to the route after auth)',
      );
    }
  };
  check(globals, '');
  config.routes.forEach((route, r) => {
    if (route.plugins.length === 0) return;
    // as the runtime composes it: globals not replaced by a route entry of the same name, then the route's own
    const own = new Set(route.plugins.map((p) => p.name));
    const chain = [
      ...globals.filter((g) => !own.has(g.name)),
      ...route.plugins.map((p, i) => ({ name: p.name, enabled: p.enabled, at: `/routes/${r}/plugins/${i}` })),
    ];
    check(chain, ` on route ${r}`);
  });
  return [...new Set(errors)];
}

/**
 * `logging.accessLog` in any of its shorthand shapes, as the one object the gateway reads. A template must name
 * at least one field, and only known ones (a typo would otherwise log a literal `$stauts` on every line).
 */
function normalizeAccessLog(raw: unknown, errors: string[]): AccessLogConfig {
  const out: AccessLogConfig = { enabled: true, format: 'json', fields: [...DEFAULT_ACCESS_LOG_FIELDS], sampleSuccess: 1, file: '' };
  let at = '/logging/accessLog';
  if (raw === false) out.enabled = false;
  else if (typeof raw === 'string') out.format = raw;
  else if (Array.isArray(raw)) out.fields = raw as string[];
  else if (raw !== null && typeof raw === 'object') {
    const o = raw as Partial<AccessLogConfig>;
    out.enabled = o.enabled ?? true;
    out.format = o.format ?? 'json';
    if (o.fields !== undefined) out.fields = o.fields;
    out.sampleSuccess = o.sampleSuccess ?? 1;
    out.file = o.file ?? '';
    at += '/format';
  }
  if (out.format !== 'json' && out.format !== 'combined') {
    const { known, unknown } = templateFields(out.format);
    if (unknown.length > 0)
      errors.push(`${at}: unknown field ${unknown.map((n) => `"$${n}"`).join(', ')} in the template (known: ${ACCESS_LOG_FIELDS.join(', ')})`);
    else if (known.length === 0) errors.push(`${at}: must be "json", "combined", or a template naming at least one $field (got ${JSON.stringify(out.format)})`);
  }
  return out;
}

function headerErrors(headers: Record<string, string> | undefined, at: string, errors: string[]): void {
  if (headers === undefined) return;
  for (const [name, value] of Object.entries(headers)) {
    try {
      validateHeaderName(name);
    } catch {
      errors.push(`${at}: header name ${JSON.stringify(name)} is not an HTTP token`);
      continue;
    }
    try {
      validateHeaderValue(name, value);
    } catch {
      errors.push(`${at}/${name}: header value has a character HTTP forbids (a control character other than tab)`);
    }
  }
}

/** Whether two listen addresses on one port collide: the same address, or one is a wildcard covering the other. */
function sameListenAddress(a: string, b: string): boolean {
  const v4Wildcard = (h: string, other: string): boolean => h === '0.0.0.0' && !other.includes(':');
  return a === b || a === '::' || b === '::' || v4Wildcard(a, b) || v4Wildcard(b, a);
}

/** Like validateConfig, but throws ConfigError. */
export function parseConfig(raw: unknown): GatewayConfig {
  const result = validateConfig(raw);
  if (!result.ok) throw new ConfigError(result.errors);
  return result.value;
}
