import type { IncomingHttpHeaders } from 'node:http';
import { FIRST_WINS } from '../../shared/http1-syntax.js';

/**
 * req.headers exactly as node:http builds it (IncomingMessage#_addHeaderLine in node 20): names lower-cased,
 * `set-cookie` an array, `cookie` joined with "; ", the fields below keep their first value and drop repeats,
 * every other field joins its values with ", ". Checked against node's own IncomingMessage in
 * test/server/own-parser-diff.test.ts, including names such as `__proto__` (dropped, as node drops it).
 */

export interface NodeHeadersOptions {
  /** http.createServer's joinDuplicateHeaders: join the first-wins fields too */
  joinDuplicateHeaders?: boolean;
  /** http.Server#maxHeadersCount (default 2000): field lines beyond it are ignored, as node ignores them */
  maxHeadersCount?: number;
}

/**
 * Builds node's req.headers from a parsed head: `rawHeaders` as name, value pairs and `names` the lower-cased
 * names (RequestHead's two arrays).
 */
export function toNodeHeaders(rawHeaders: readonly string[], names: readonly string[], options?: NodeHeadersOptions): IncomingHttpHeaders {
  if (options === undefined) {
    if (sameAsLast(rawHeaders, names)) return { ...lastHeaders } as IncomingHttpHeaders;
    const headers = buildNodeHeaders(rawHeaders, names, false, 2000);
    remember(rawHeaders, names, headers);
    return headers;
  }
  return buildNodeHeaders(rawHeaders, names, options.joinDuplicateHeaders === true, options.maxHeadersCount ?? 2000);
}

/**
 * The last head's fields and its req.headers (default options). A client sends the same field lines on every
 * request of a connection, and the parser hands out the same interned strings for the same bytes, so comparing
 * the strings by identity finds a repeat; its req.headers is then a copy of the last one (a spread of a plain
 * object clones its shape in one step, where building it adds the properties one keyed store at a time — that
 * store was the hottest line of this file under --cpu-prof). A head with set-cookie is never remembered: its
 * value is an array, which each request must own.
 */
/** null: nothing remembered */
let lastRaw: string[] | null = null;
let lastHeaders: Record<string, unknown> = {};

function sameAsLast(rawHeaders: readonly string[], names: readonly string[]): boolean {
  const n = rawHeaders.length;
  if (lastRaw === null || n !== lastRaw.length || n > 2000 * 2) return false;
  for (let i = 0; i < n; i++) if (rawHeaders[i] !== lastRaw[i]) return false;
  // the names are the lower-cased raw names: equal raw names give equal names
  return names.length * 2 === n;
}

function remember(rawHeaders: readonly string[], names: readonly string[], headers: IncomingHttpHeaders): void {
  if (headers['set-cookie'] !== undefined || names.length > 2000) {
    lastRaw = null;
    return;
  }
  lastRaw = rawHeaders.slice();
  lastHeaders = { ...headers };
}

function buildNodeHeaders(rawHeaders: readonly string[], names: readonly string[], join: boolean, max: number): IncomingHttpHeaders {
  const n = max > 0 && max < names.length ? max : names.length;
  // a plain object, like node's: the same assignments then give the same result for names like __proto__
  const dest: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const field = names[i]!;
    const value = rawHeaders[2 * i + 1]!;
    if (field === 'set-cookie') {
      const prev = dest['set-cookie'];
      if (prev !== undefined) (prev as string[]).push(value);
      else dest['set-cookie'] = [value];
    } else if (FIRST_WINS.has(field)) {
      if (join) dest[field] = dest[field] === undefined ? value : `${dest[field] as string}, ${value}`;
      else if (dest[field] === undefined) dest[field] = value;
    } else if (typeof dest[field] === 'string') {
      dest[field] += (field === 'cookie' ? '; ' : ', ') + value;
    } else {
      dest[field] = value;
    }
  }
  return dest as IncomingHttpHeaders;
}
