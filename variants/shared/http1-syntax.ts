/**
 * HTTP/1.1 syntax rules both own parsers apply the same way: the request parser of the own server engine
 * (variants/server/own/parser.ts) and the response parser of the h1 upstream client (variants/upstream/h1/parser.ts).
 * One place, so a rule tightened for one side cannot silently stay loose on the other.
 */

/** Bound on one chunk-size line (size, extensions, CRLF): llhttp has none, so a peer could stream extensions forever. */
export const MAX_CHUNK_LINE = 4096;

/** 12 significant hex digits: 2^48 bytes, exact as a JS number */
export const MAX_CHUNK_SIZE_DIGITS = 12;

/**
 * Fields node keeps the first value of when repeated (IncomingMessage#_addHeaderLine in node 20: matchKnownFields'
 * names without a join flag); every other field joins its values with ", " (`cookie` with "; ", `set-cookie`
 * becomes an array).
 */
export const FIRST_WINS: ReadonlySet<string> = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/** Strips SP and HTAB at both ends (RFC 9110 §5.6.3 OWS); String#trim would also strip 0xa0, legal obs-text. */
export function trimOws(v: string): string {
  let s = 0;
  let e = v.length;
  while (s < e && (v.charCodeAt(s) === 32 || v.charCodeAt(s) === 9)) s++;
  while (e > s && (v.charCodeAt(e - 1) === 32 || v.charCodeAt(e - 1) === 9)) e--;
  return s === 0 && e === v.length ? v : v.slice(s, e);
}
