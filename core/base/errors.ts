import { STATUS_CODES, type OutgoingHttpHeaders } from 'node:http';
import { inspect } from 'node:util';

/**
 * An error that carries the HTTP status the client should see (4xx/5xx), and the headers to send with it. The
 * gateway's own errors are this family: ProxyError (core/proxy/errors.ts: 400, 502, 503 + Retry-After, 504) and
 * MalformedPathError (core/contracts/router.ts: 400). Plugins may throw it to answer with a status of their choice.
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
