import type { OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { HeaderEdits } from '../config/types.js';
import type { ServerRequest, ServerResponse } from '../contracts/server.js';

/**
 * Trailer fields (RFC 9110 §6.5) relayed through the proxy: the client's request trailers to the upstream, the
 * upstream's response trailers to the client. Both directions go through one filter, validated like header
 * fields, so a trailer can never carry what the header section could not:
 * - a name that is not a token, or a value with a byte node:http refuses to write (CR, LF, NUL, other controls
 *   but HTAB): dropped;
 * - a field that cannot be processed after the content (RFC 9110 §6.5.1): framing, routing, request
 *   modifiers, authentication, response control data, how to process the content — FORBIDDEN below: dropped;
 * - a hop-by-hop field (RFC 9110 §7.6.1, and whatever the message's Connection header names): dropped;
 * - a field the gateway itself sets or removes on that message (forwarding fields, the route's header edits,
 *   fields plugins vouch for): dropped, so an upstream that merges trailers into headers cannot be fooled by a
 *   client sending `X-Forwarded-For` or an auth plugin's `X-User-Id` after the body.
 * Every dropped field is counted (TrailerCounts); none is ever forwarded. The parsers already bound the size
 * of a trailer section as they bound a head (a section over the limit fails that request alone).
 */

/** RFC 9110 §6.5.1's categories, field by field (names lower-cased). */
const FORBIDDEN: ReadonlySet<string> = new Set([
  // message framing
  'content-length',
  'transfer-encoding',
  'trailer',
  // routing
  'host',
  // request modifiers: controls (§7.6, §10.1), conditionals (§13.1), content negotiation (§12.5), range (§14.2)
  'cache-control',
  'expect',
  'max-forwards',
  'pragma',
  'range',
  'te',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-range',
  'accept',
  'accept-charset',
  'accept-encoding',
  'accept-language',
  // authentication (RFC 9110 §11, RFC 6265)
  'authorization',
  'proxy-authorization',
  'www-authenticate',
  'proxy-authenticate',
  'authentication-info',
  'proxy-authentication-info',
  'cookie',
  'set-cookie',
  // response control data (§10.2)
  'age',
  'date',
  'expires',
  'location',
  'retry-after',
  'vary',
  'warning',
  // how to process the content
  'content-encoding',
  'content-type',
  'content-range',
  'content-language',
  'content-location',
  // hop-by-hop (§7.6.1), never forwarded in a header section either
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'http2-settings',
  // set by the gateway on every proxied request or response (core/proxy/headers.ts)
  'via',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-accel-buffering',
]);

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** node:http's checkInvalidHeaderChar: HTAB, visible ASCII, obs-text; nothing else (no CR, LF, NUL, DEL) */
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** Whether a trailer field with this lower-cased name may ever be forwarded. */
export function trailerAllowed(lowerName: string): boolean {
  // HTTP/2 pseudo-header fields are never allowed in a trailer section (RFC 9113 §8.1)
  return !FORBIDDEN.has(lowerName) && lowerName.charCodeAt(0) !== 58;
}

/** Trailer fields forwarded and dropped, per direction, for one upstream (stats and Prometheus). */
export class TrailerCounts {
  requestForwarded = 0;
  requestDropped = 0;
  responseForwarded = 0;
  responseDropped = 0;
}

/** The names a route's header edits set or remove on one direction, lower-cased (cached per edits object). */
const editedNames = new WeakMap<HeaderEdits, ReadonlySet<string>>();

function namesOf(edits: HeaderEdits | undefined): ReadonlySet<string> | null {
  if (edits === undefined) return null;
  let names = editedNames.get(edits);
  if (names === undefined) {
    const set = new Set<string>();
    for (const n of edits.remove) set.add(n.toLowerCase());
    for (const n in edits.add) set.add(n.toLowerCase());
    names = set;
    editedNames.set(edits, names);
  }
  return names;
}

/** The field names a Connection header value lists (each one hop-by-hop for that message). */
function connectionNames(value: string | string[] | undefined): string[] | null {
  if (value === undefined) return null;
  const joined = typeof value === 'string' ? value : value.join(',');
  return joined.split(',').map((t) => t.trim().toLowerCase());
}

/**
 * The fields of a trailer section (name, value pairs as received) that may be forwarded, names lower-cased,
 * as an object for addTrailers (a repeated name becomes an array: one field line per value). `owned` are
 * further names to drop (see the module comment). Returns the object and how many fields it holds and how
 * many were dropped.
 */
export function filterTrailers(
  raw: readonly string[],
  connection: string | string[] | undefined,
  owned: ReadonlySet<string> | null,
  vouched: readonly string[],
): { fields: OutgoingHttpHeaders; kept: number; dropped: number } {
  const fields = Object.create(null) as OutgoingHttpHeaders;
  let kept = 0;
  let dropped = 0;
  let listed: string[] | null | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    // the name as received is tested: lower-casing could turn a non-ASCII character into a token one
    if (typeof name !== 'string' || !TOKEN.test(name)) {
      dropped++;
      continue;
    }
    const lower = name.toLowerCase();
    if (
      typeof value !== 'string' ||
      INVALID_VALUE.test(value) ||
      !trailerAllowed(lower) ||
      (owned !== null && owned.has(lower)) ||
      vouchedHas(vouched, lower) ||
      (listed ??= connectionNames(connection))?.includes(lower) === true
    ) {
      dropped++;
      continue;
    }
    const prev = fields[lower];
    fields[lower] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev as string, value];
    kept++;
  }
  return { fields, kept, dropped };
}

function vouchedHas(vouched: readonly string[], lower: string): boolean {
  for (let i = 0; i < vouched.length; i += 2) if (vouched[i]!.toLowerCase() === lower) return true;
  return false;
}

/** The pairs of a filtered trailer object, in order (a repeated name gives one pair per value). */
export function trailerPairs(fields: OutgoingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name in fields) {
    const v = fields[name]!;
    if (Array.isArray(v)) for (const x of v) out.push(name, x);
    else out.push(name, String(v));
  }
  return out;
}

/** A request's trailer section as received (name, value pairs), empty when it had none. */
function rawTrailersOf(req: ServerRequest): readonly string[] {
  const raw = (req as { rawTrailers?: string[] }).rawTrailers;
  return Array.isArray(raw) ? raw : [];
}

/**
 * The request side: what the upstream client calls once the client's body has ended, to get the trailer
 * fields to send (name, value pairs, or null for none). Counts what it forwards and drops. When the client
 * cannot send them (`canSend` false: the variant has no way to, or the upstream request is framed by
 * Content-Length), the fields are counted as dropped once the body ends.
 */
export function requestTrailers(
  req: ServerRequest,
  body: Readable,
  edits: HeaderEdits | undefined,
  vouched: readonly string[],
  counts: TrailerCounts,
  canSend: boolean,
): (() => string[] | null) | null {
  if (!canSend) {
    body.once('end', () => {
      counts.requestDropped += rawTrailersOf(req).length >> 1;
    });
    return null;
  }
  let taken = false;
  return () => {
    if (taken) return null;
    taken = true;
    const raw = rawTrailersOf(req);
    if (raw.length === 0) return null;
    const { fields, kept, dropped } = filterTrailers(raw, req.headers.connection, namesOf(edits), vouched);
    counts.requestForwarded += kept;
    counts.requestDropped += dropped;
    return kept === 0 ? null : trailerPairs(fields);
  };
}

/**
 * The response side: once the upstream body ends (before the core's pipe ends the client response), its
 * trailer fields are filtered and added to the client response — when that response is still the one
 * carrying this body (no hook replaced it) and the client can receive them: an HTTP/1.0 client reads a body
 * delimited by the close, which has no trailer section (RFC 9112 §7.1.2), so they are dropped for it.
 * Must be called before the body is piped: its 'end' listener has to run before the pipe's.
 */
export function relayResponseTrailers(
  body: Readable,
  trailers: () => readonly string[] | null,
  current: { readonly res: ServerResponse | null; readonly body: unknown },
  req: ServerRequest,
  edits: HeaderEdits | undefined,
  upstreamConnection: string | string[] | undefined,
  counts: TrailerCounts,
): void {
  body.once('end', () => {
    const raw = trailers();
    if (raw === null || raw.length === 0) return;
    const { res, body: staged } = current;
    const canReceive = req.httpVersionMajor >= 2 || req.httpVersionMinor >= 1;
    if (res === null || staged !== body || !canReceive || res.writableEnded || res.destroyed || typeof res.addTrailers !== 'function') {
      counts.responseDropped += raw.length >> 1;
      return;
    }
    const { fields, kept, dropped } = filterTrailers(raw, upstreamConnection, namesOf(edits), []);
    counts.responseDropped += dropped;
    if (kept === 0) return;
    try {
      res.addTrailers(fields);
      counts.responseForwarded += kept;
    } catch {
      // every field passed node's own checks above; a response that refuses them anyway loses its trailers only
      counts.responseDropped += kept;
    }
  });
}
