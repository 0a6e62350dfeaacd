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
export function toNodeHeaders(rawHeaders: readonly string[], names: readonly string[], options: NodeHeadersOptions = {}): IncomingHttpHeaders {
  const join = options.joinDuplicateHeaders === true;
  const max = options.maxHeadersCount ?? 2000;
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
