import type { Socket } from 'node:net';
import type { ServerRequest } from '../contracts/server.js';
import { validHost } from './host.js';

/**
 * Request-shape checks Node's parser (llhttp) does not make, run before routing so a rejected request never
 * reaches a plugin or an upstream. llhttp already rejects broken framing (CL+TE, bad chunk sizes, bare CR,
 * NUL, invalid header names, obs-fold, ...) and Node 20 rejects HTTP/1.1 without Host (`requireHostHeader`);
 * what it accepts but a gateway must not forward is decided here: see test/reliability/bad-input.cases.ts.
 */

/** Returned by checkRequest when the request may proceed. */
export const REQUEST_OK = 0;

export interface RequestLimits {
  /** longest request target (bytes of the URL as received) before 414 */
  maxUrlLength: number;
  /** most header fields (name/value pairs) before 431 */
  maxHeaderCount: number;
}

// `%25` followed by 2e/2f/5c is a double-encoded dot or separator: no legitimate path needs one, and an
// upstream that decodes twice would read it as `..` or `/` after every gateway-side traversal check passed.
const DOUBLE_ENCODED = /%25(?:2e|2f|5c)/i;

/**
 * 0 when the request may be routed, else the status to answer with (the caller closes the connection).
 * May rewrite `req.url` from absolute-form to origin-form (RFC 9112 §3.2.2: a server must accept absolute-form
 * and then ignore Host — here the two must agree, so nothing downstream can be confused about the authority).
 * Runs per request: the common case (origin-form, one Host, short URL) costs a few comparisons and one
 * pass over rawHeaders without allocating.
 */
export function checkRequest(req: ServerRequest, limits: RequestLimits): number {
  const url = req.url!;
  if (url.length > limits.maxUrlLength) return 414;
  const raw = req.rawHeaders;
  if (raw.length > limits.maxHeaderCount * 2) return 431;

  // Node keeps only the first Host in req.headers: a second, different one would let two parties (this gateway
  // and the upstream or a cache) disagree about which site the request is for. Any repeat is rejected (RFC 9112 §3.2),
  // and so is a value that is not `uri-host [ ":" port ]` (http/host.ts): the cache keys on it.
  let hosts = 0;
  let hostAt = -1;
  let authorityAt = -1;
  let te = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      hosts++;
      hostAt = i + 1;
    } else if (name === ':authority') authorityAt = i + 1;
    else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      // llhttp accepts one final `chunked` after other codings and repeated fields; Node then passes the
      // still-encoded (e.g. gzip) bytes on as if they were the body. Only plain `chunked` is understood here.
      if (te !== -1) return 501;
      te = i + 1;
    }
  }
  if (hosts > 1) return 400;
  const http11 = req.httpVersionMajor === 1 && req.httpVersionMinor >= 1;
  if (hosts === 0 && http11) return 400;
  // HTTP/2: a Host field naming another authority than `:authority` is malformed (RFC 9113 §8.3.1); both are checked
  if (authorityAt !== -1 && (!validHost(raw[authorityAt]!) || (hostAt !== -1 && raw[hostAt]!.toLowerCase() !== raw[authorityAt]!.toLowerCase()))) return 400;
  if (hostAt !== -1 && !validHost(raw[hostAt]!)) return 400;
  if (te !== -1) {
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request means the framing cannot be trusted.
    if (!http11) return 400;
    if (raw[te]!.trim().toLowerCase() !== 'chunked') return 501;
  }

  const c = url.charCodeAt(0);
  if (c === 47 /* / */) {
    if (url.indexOf('%25') !== -1 && DOUBLE_ENCODED.test(url)) return 400;
    return REQUEST_OK;
  }
  if (url === '*') return req.method === 'OPTIONS' ? REQUEST_OK : 400;
  return absoluteForm(req, url);
}

/** The request announced a body that the parser has not finished reading. */
export function bodyPending(req: ServerRequest): boolean {
  if (req.complete) return false;
  const h = req.headers;
  if (h['transfer-encoding'] !== undefined) return true;
  const cl = h['content-length'];
  return cl !== undefined && cl !== '0';
}

/** http(s)://authority[/path][?query] whose authority equals Host: rewritten to origin-form; anything else 400. */
function absoluteForm(req: ServerRequest, url: string): number {
  const lower = url.slice(0, 8).toLowerCase();
  const schemeEnd = lower.startsWith('http://') ? 7 : lower.startsWith('https://') ? 8 : -1;
  if (schemeEnd === -1) return 400;
  let end = url.length;
  for (let i = schemeEnd; i < url.length; i++) {
    const ch = url.charCodeAt(i);
    if (ch === 47 || ch === 63 || ch === 35) {
      end = i;
      break;
    }
  }
  const authority = url.slice(schemeEnd, end);
  if (authority.length === 0 || authority.indexOf('@') !== -1) return 400;
  const host = req.headers.host;
  if (host === undefined || host.toLowerCase() !== authority.toLowerCase()) return 400;
  const rest = url.slice(end);
  const origin = rest.length === 0 ? '/' : rest.charCodeAt(0) === 47 ? rest : `/${rest}`;
  if (origin.indexOf('%25') !== -1 && DOUBLE_ENCODED.test(origin)) return 400;
  req.url = origin;
  return REQUEST_OK;
}

/**
 * Concurrent connections per client address (one worker's view: in cluster mode the primary spreads
 * connections over workers, so the effective cap is up to workers × max). `admit` is called once per accepted
 * connection and registers the release on close; a refused socket is answered 503 and closed by the caller.
 */
export class PerIpConnections {
  private readonly counts = new Map<string, number>();
  refused = 0;

  constructor(private readonly max: number) {}

  admit(socket: Socket): boolean {
    const ip = socket.remoteAddress ?? '';
    const n = this.counts.get(ip) ?? 0;
    if (n >= this.max) {
      this.refused++;
      return false;
    }
    this.counts.set(ip, n + 1);
    socket.once('close', () => {
      const left = (this.counts.get(ip) ?? 1) - 1;
      if (left <= 0) this.counts.delete(ip);
      else this.counts.set(ip, left);
    });
    return true;
  }

  get trackedAddresses(): number {
    return this.counts.size;
  }
}
