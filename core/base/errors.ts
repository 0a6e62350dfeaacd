import { STATUS_CODES, type OutgoingHttpHeaders } from 'node:http';
import { inspect } from 'node:util';

/**
 * The error catalogue: every failure the gateway answers or throws, by its stable code, with the status it is
 * answered with (for what is thrown at start or reload, the status of the refused admin reload) and what it means.
 * The one place a code is defined: the classes below take their status from here, docs/errors.md lists every
 * code (a test checks it), and logs, the access log and /stats name the code of a request's failure.
 */
export const ERROR_CATALOGUE = {
  // refused before routing (node:http or the own engine parsed the request; the core's checks, core/data/limits.ts)
  GW_ERR_BAD_REQUEST: {
    status: 400,
    meaning: 'the request cannot be forwarded safely: broken framing, no or repeated Host, a target form the gateway refuses',
  },
  GW_ERR_URI_TOO_LONG: { status: 414, meaning: 'the request target is longer than server.maxUrlLength (or the request line overflowed maxHeaderSize)' },
  GW_ERR_HEADERS_TOO_LARGE: { status: 431, meaning: 'more header fields than server.maxHeaderCount, or a head over server.maxHeaderSize' },
  GW_ERR_TRANSFER_CODING: { status: 501, meaning: 'a Transfer-Encoding other than one plain "chunked"' },
  GW_ERR_METHOD_NOT_ALLOWED: { status: 405, meaning: 'no route for this method on this path (Allow lists the ones there are), or CONNECT' },
  GW_ERR_NO_ROUTE: { status: 404, meaning: 'no route matches the path' },
  GW_ERR_MALFORMED_PATH: { status: 400, meaning: 'the path (or a route param) carries a malformed percent-encoding' },
  GW_ERR_AMBIGUOUS_PATH: {
    status: 400,
    meaning: 'the path read as an upstream may normalise it (dot segments, //, %2e, %2f, ;params) names another route, or climbs above the root',
  },
  GW_ERR_UPGRADE_REFUSED: { status: 400, meaning: 'an upgrade on a route that does not proxy, or not a WebSocket upgrade' },
  GW_ERR_TOO_MANY_CONNECTIONS: { status: 503, meaning: 'the client address has server.maxConnectionsPerIp connections open (Retry-After)' },
  GW_ERR_OVERLOADED: { status: 503, meaning: 'load shedding: an overload threshold is exceeded (Retry-After)' },
  // plugins
  GW_ERR_PLUGIN_HOOK: { status: 500, meaning: 'a plugin hook or handler threw (or rejected with) something that is not an HTTP answer' },
  GW_ERR_HOOK_TIMEOUT: { status: 504, meaning: 'a plugin hook or handler did not settle within server.hookTimeoutMs' },
  // proxying
  GW_ERR_PROXY_PATH: { status: 400, meaning: 'the forwarded path would leave the route prefix, or the target form cannot be forwarded' },
  GW_ERR_UPSTREAM_UNKNOWN: { status: 502, meaning: 'the route names an upstream this config does not define' },
  GW_ERR_UPSTREAM_UNAVAILABLE: { status: 503, meaning: 'no target of the upstream is available: all unhealthy or circuit-open (Retry-After)' },
  GW_ERR_UPSTREAM_CONNECT: { status: 502, meaning: 'connecting to the upstream failed (refused, unreachable, unknown host)' },
  GW_ERR_UPSTREAM_TLS: {
    status: 502,
    meaning: 'the TLS handshake with the upstream failed: unknown CA, name mismatch, expired certificate, client certificate refused',
  },
  GW_ERR_UPSTREAM_CONNECT_TIMEOUT: { status: 504, meaning: 'connecting to the upstream took longer than upstream timeouts.connectMs' },
  GW_ERR_UPSTREAM_TIMEOUT: { status: 504, meaning: 'the upstream did not answer in time (timeouts.headersMs or the route timeoutMs, timeouts.requestMs)' },
  GW_ERR_UPSTREAM_RESET: { status: 502, meaning: 'the upstream connection broke before response headers' },
  GW_ERR_UPSTREAM_PROTOCOL: { status: 502, meaning: 'the upstream answered something that is not valid HTTP, or its answer could not be relayed' },
  GW_ERR_UPSTREAM_STATUS: { status: 502, meaning: 'the upstream kept answering 502, 503 or 504 until the retries ran out (answered with its status)' },
  GW_ERR_UPSTREAM_BODY: { status: 502, meaning: 'the upstream response body broke off before any byte of it was sent' },
  GW_ERR_CLIENT_GONE: { status: 502, meaning: 'the client went away while the request was being forwarded (recorded, never seen by the client)' },
  // answering
  GW_ERR_RESPONSE_WRITE: { status: 500, meaning: 'the staged answer could not be written (e.g. a header value node:http refuses)' },
  GW_ERR_INTERNAL: { status: 500, meaning: 'anything else thrown on the request path: a bug, logged with its stack' },
  // start and reload (not request answers: the status is that of a refused POST /config/reload)
  GW_ERR_CONFIG_INVALID: { status: 400, meaning: 'the config breaks a rule; every problem is listed with its JSON path' },
  GW_ERR_TLS_LOAD: { status: 400, meaning: 'a certificate or key cannot be read or does not match' },
  GW_ERR_ROUTE_PATTERN: { status: 400, meaning: 'a route pattern cannot be parsed, or two routes claim the same path' },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** The code of a status the gateway answers on its own before any route runs (refusals, engines' parse errors). */
export function refusalCode(status: number): ErrorCode {
  switch (status) {
    case 404:
      return 'GW_ERR_NO_ROUTE';
    case 405:
      return 'GW_ERR_METHOD_NOT_ALLOWED';
    case 414:
      return 'GW_ERR_URI_TOO_LONG';
    case 431:
      return 'GW_ERR_HEADERS_TOO_LARGE';
    case 501:
      return 'GW_ERR_TRANSFER_CODING';
    case 503:
      return 'GW_ERR_OVERLOADED';
    default:
      return status >= 500 ? 'GW_ERR_INTERNAL' : 'GW_ERR_BAD_REQUEST';
  }
}

/**
 * An error that carries the HTTP status the client should see (4xx/5xx), and the headers to send with it.
 * Plugins may throw it to answer with a status of their choice (no code: the answer is theirs, not a gateway
 * failure); the gateway's own failures are GatewayError subclasses, each with its catalogue code.
 */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message?: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message ?? STATUS_CODES[statusCode] ?? 'Error');
    this.name = 'HttpError';
  }
}

/** A failure of the gateway's own, answered with its catalogue status unless the subclass passes another. */
export class GatewayError extends HttpError {
  constructor(
    readonly code: ErrorCode,
    message?: string,
    headers?: Record<string, string>,
    statusCode: number = ERROR_CATALOGUE[code].status,
  ) {
    super(statusCode, message ?? ERROR_CATALOGUE[code].meaning, headers);
    this.name = 'GatewayError';
  }
}

/**
 * A plugin hook (or plugin handler) whose promise did not settle within server.hookTimeoutMs. The request is
 * answered 504 (the gateway could not get its answer in time, as from an upstream); onError hooks see this error.
 */
export class HookTimeoutError extends GatewayError {
  constructor(
    readonly plugin: string,
    readonly hook: string,
    readonly timeoutMs: number,
  ) {
    super('GW_ERR_HOOK_TIMEOUT', `plugin "${plugin}" ${hook} did not settle within ${timeoutMs} ms`);
    this.name = 'HookTimeoutError';
  }
}

/** Thrown (or returned) when a config is invalid: every problem at once, each naming its JSON path and rule. */
export class ConfigError extends Error {
  readonly code: ErrorCode = 'GW_ERR_CONFIG_INVALID';
  constructor(readonly errors: string[]) {
    super(`invalid gateway config:\n  ${errors.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** A certificate or key that cannot be loaded: each problem names its config path. */
export class TlsLoadError extends Error {
  readonly code: ErrorCode = 'GW_ERR_TLS_LOAD';
  constructor(readonly errors: string[]) {
    super(errors.join('; '));
    this.name = 'TlsLoadError';
  }
}

/**
 * The catalogue code of a failure: a GatewayError's own, GW_ERR_PLUGIN_HOOK for a plugin's throw, null for an
 * answer a plugin chose (an HttpError or an error with a statusCode), GW_ERR_INTERNAL for anything else.
 */
export function codeOf(err: unknown): ErrorCode | null {
  if (err instanceof GatewayError || err instanceof ConfigError || err instanceof TlsLoadError) return err.code;
  if (err instanceof PluginHookError) return 'GW_ERR_PLUGIN_HOOK';
  return carriesStatus(err) ? null : 'GW_ERR_INTERNAL';
}

/*
 * The three readers below also accept errors outside the HttpError family on purpose: plugins are plain
 * JavaScript and may throw `Object.assign(new Error('…'), { statusCode: 418 })`, or even a bare object with a
 * `statusCode` (and `headers`), as their chosen answer (docs/plugins.md). The gateway's own code throws HttpError
 * subclasses and tests them with instanceof; only these readers look at the properties of anything else.
 */

/** Whether the error names its own answer (an HttpError, or a plugin's error with a `statusCode`): not a failure. */
export function carriesStatus(err: unknown): boolean {
  if (err instanceof HttpError) return true;
  return err !== null && typeof err === 'object' && (err as { statusCode?: unknown }).statusCode !== undefined;
}

/** The status an error maps to: its own `statusCode` when it is a valid 4xx/5xx, else 500. */
export function statusOf(err: unknown): number {
  const code = err instanceof HttpError ? err.statusCode : (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' && code >= 400 && code <= 599 ? code : 500;
}

/** Extra headers an error asks for (e.g. Retry-After on 503). */
export function headersOf(err: unknown): Record<string, string> | undefined {
  if (err instanceof HttpError) return err.headers;
  const h = (err as { headers?: unknown } | null)?.headers;
  return h !== null && typeof h === 'object' ? (h as Record<string, string>) : undefined;
}

const cache = new Map<number, Buffer>();

/** The JSON body of an error response. 5xx never carries internal messages; 4xx may say what was wrong. */
export function errorBody(status: number): Buffer {
  let b = cache.get(status);
  if (b === undefined) {
    b = Buffer.from(JSON.stringify({ error: STATUS_CODES[status] ?? 'Error', statusCode: status }));
    cache.set(status, b);
  }
  return b;
}

export function errorHeaders(status: number, extra?: Record<string, string>): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(errorBody(status).length),
  };
  if (extra !== undefined) for (const [k, v] of Object.entries(extra)) headers[k.toLowerCase()] = v;
  return headers;
}

/**
 * A plugin hook threw (or rejected) something that is not an intended HTTP answer: the request gets a 500 and
 * the log line says which plugin and hook failed. The original error is the `cause` (pino's err serializer
 * appends its message and stack); onError hooks still receive the original. No `statusCode`, on purpose: the
 * server logs only errors without one, and statusOf() maps this one to 500.
 */
export class PluginHookError extends Error {
  readonly code: ErrorCode = 'GW_ERR_PLUGIN_HOOK';
  constructor(
    /** the plugin's name */
    readonly plugin: string,
    /** preRoute, preHandler, postHandler or postResponse */
    readonly hook: string,
    /** the route the request matched, or null before/without a match */
    readonly route: string | null,
    /** for a route's own plugin entry, the route the entry belongs to; '' for a global entry */
    readonly scope: string,
    cause: unknown,
  ) {
    // pino appends an Error cause's message and stack; anything else thrown would vanish from the line
    super(`plugin "${plugin}" ${hook} hook failed${isErrorLike(cause) ? '' : `: threw ${inspect(cause, { depth: 1, breakLength: Infinity }).slice(0, 200)}`}`, {
      cause,
    });
    this.name = 'PluginHookError';
  }
}

function isErrorLike(v: unknown): boolean {
  return v !== null && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string';
}
