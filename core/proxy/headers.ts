import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { HeaderEdits } from '../config/types.js';
import type { ServerRequest } from '../contracts/server.js';
import { normalizeIp, type TrustedProxies } from './trust.js';

/** Our Via pseudonym (RFC 9110 §7.6.3). */
export const VIA = '1.1 ts-gateway';

/**
 * RFC 9110 §7.6.1 hop-by-hop fields, plus Proxy-Authorization (meant for us, never for the upstream), Expect
 * (Node's server has already answered 100-continue) and Host / forwarding fields (rebuilt by us).
 * Value 1: always dropped; 2: kept on a WebSocket upgrade (Connection/Upgrade).
 */
const REQUEST_SKIP: Record<string, number> = Object.assign(Object.create(null) as Record<string, number>, {
  connection: 2,
  'keep-alive': 1,
  'proxy-connection': 1,
  te: 1,
  trailer: 1,
  'transfer-encoding': 1,
  upgrade: 2,
  'proxy-authorization': 1,
  expect: 1,
  host: 1,
  'x-forwarded-for': 1,
  'x-forwarded-proto': 1,
  'x-forwarded-host': 1,
  forwarded: 1,
  via: 1,
});

const RESPONSE_SKIP: Record<string, number> = Object.assign(Object.create(null) as Record<string, number>, {
  connection: 2,
  'keep-alive': 1,
  'proxy-connection': 1,
  te: 1,
  trailer: 1,
  'transfer-encoding': 1,
  upgrade: 2,
  via: 1,
  // an instruction to the proxy (read into ctx.unbuffered by the proxy), not to the client: nginx does not pass it on either
  'x-accel-buffering': 1,
});

/** Names listed in a Connection header (each is hop-by-hop too), or null when there are none to strip. */
function connectionTokens(value: string | string[] | undefined): string[] | null {
  if (value === undefined) return null;
  const joined = typeof value === 'string' ? value : value.join(',');
  if (joined.indexOf(',') === -1) {
    const t = joined.trim().toLowerCase();
    // "keep-alive"/"close"/"upgrade" are the usual values and already stripped
    return t === 'keep-alive' || t === 'close' || t === 'upgrade' || t === '' ? null : [t];
  }
  return joined.split(',').map((t) => t.trim().toLowerCase());
}

function isListed(tokens: string[] | null, name: string): boolean {
  return tokens !== null && tokens.includes(name);
}

/** Forwarded (RFC 7239) node: IPv6 in quoted brackets. */
function forwardedNode(ip: string): string {
  return ip.indexOf(':') === -1 ? ip : `"[${ip}]"`;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// a gateway sees few distinct Host values: remember the last one rather than re-testing it per request
let lastHost = '';
let lastHostValue = '';

/** RFC 7239 value: a token as-is, anything else (e.g. host:port) as a quoted-string. */
function forwardedValue(v: string): string {
  if (v === lastHost) return lastHostValue;
  const out = TOKEN.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`;
  lastHost = v;
  lastHostValue = out;
  return out;
}

function single(v: string | string[] | undefined): string | undefined {
  return v === undefined ? undefined : typeof v === 'string' ? v : v.join(', ');
}

export interface ForwardingInfo {
  /** normalised socket peer address */
  peer: string;
  /** whether the peer is a trusted proxy (its forwarding headers are believed) */
  trusted: boolean;
}

export function forwardingInfo(req: ServerRequest, trust: TrustedProxies): ForwardingInfo {
  const peer = normalizeIp(req.socket.remoteAddress ?? '');
  return { peer, trusted: trust.trusts(peer) };
}

/**
 * Headers for the upstream request: end-to-end fields of the client request, then Via, X-Forwarded-*,
 * Forwarded, then the fields the gateway vouches for (`vouched`: flat name, value pairs from plugins, see
 * RequestContext.setUpstreamHeader — after the hop-by-hop removal, which only applies to what the client sent,
 * RFC 9110 §7.6.1), then the route's edits. Host is left for the caller (it depends on the target).
 */
export function buildRequestHeaders(
  req: ServerRequest,
  fwd: ForwardingInfo,
  edits: HeaderEdits | undefined,
  websocket: boolean,
  vouched: readonly string[],
): Record<string, string | string[]> {
  const src = req.headers;
  const out = Object.create(null) as Record<string, string | string[]>;
  const tokens = connectionTokens(src.connection);
  for (const name in src) {
    // HTTP/2 pseudo-headers (core/http/h2-compat.ts already hides them; this keeps the rule where the header rules live)
    if (name.charCodeAt(0) === 58 /* : */) continue;
    const skip = REQUEST_SKIP[name];
    if (skip !== undefined && !(skip === 2 && websocket)) continue;
    if (tokens !== null && isListed(tokens, name) && !(websocket && name === 'upgrade')) continue;
    const v = src[name];
    if (v !== undefined) out[name] = v;
  }
  if (websocket) {
    out.connection = 'Upgrade';
    out.upgrade = 'websocket';
  }

  const host = single(src.host ?? (src as Record<string, string | string[] | undefined>)[':authority']);
  const proto = (req.socket as TLSSocket).encrypted === true ? 'https' : 'http';
  const viaIn = single(src.via);
  out.via = viaIn === undefined ? VIA : `${viaIn}, ${VIA}`;

  const xffIn = fwd.trusted ? single(src['x-forwarded-for']) : undefined;
  out['x-forwarded-for'] = xffIn === undefined ? fwd.peer : `${xffIn}, ${fwd.peer}`;
  const xfpIn = fwd.trusted ? single(src['x-forwarded-proto']) : undefined;
  out['x-forwarded-proto'] = xfpIn ?? proto;
  const xfhIn = fwd.trusted ? single(src['x-forwarded-host']) : undefined;
  const xfh = xfhIn ?? host;
  if (xfh !== undefined) out['x-forwarded-host'] = xfh;

  let element = `for=${forwardedNode(fwd.peer)}`;
  if (host !== undefined) element += `;host=${forwardedValue(host)}`;
  element += `;proto=${proto}`;
  const fIn = fwd.trusted ? single(src.forwarded) : undefined;
  out.forwarded = fIn === undefined ? element : `${fIn}, ${element}`;

  for (let i = 0; i < vouched.length; i += 2) out[vouched[i]!] = vouched[i + 1]!;
  if (edits !== undefined) applyEdits(out, edits);
  return out;
}

/**
 * The last response headers built from a frozen upstream headers object (a client that recognises a repeated
 * response head hands over the same frozen object, see variants/upstream/h1/parser.ts HeadCache): copying the
 * result is cheaper than filtering again. Frozen input cannot change, so the template stays right.
 */
let lastSrc: IncomingHttpHeaders | null = null;
let lastEdits: HeaderEdits | undefined;
let lastTemplate: OutgoingHttpHeaders | null = null;
/** lastTemplate's names, in its order */
let lastNames: string[] = [];

/** Headers for the client response: upstream's end-to-end fields, Via, then the route's edits. */
export function buildResponseHeaders(src: IncomingHttpHeaders, edits: HeaderEdits | undefined, websocket: boolean): OutgoingHttpHeaders {
  if (!websocket && src === lastSrc && edits === lastEdits) {
    // a loop over the remembered names: Object.assign into a null-prototype object measured 3x slower
    const template = lastTemplate!;
    const names = lastNames;
    const copy = Object.create(null) as OutgoingHttpHeaders;
    for (let i = 0; i < names.length; i++) copy[names[i]!] = template[names[i]!];
    return copy;
  }
  const out = filterResponseHeaders(src, edits, websocket);
  if (!websocket && Object.isFrozen(src)) {
    lastSrc = src;
    lastEdits = edits;
    lastTemplate = Object.assign(Object.create(null) as OutgoingHttpHeaders, out);
    lastNames = Object.keys(lastTemplate);
  }
  return out;
}

/** Whether an upstream asked for its answer to flow unbuffered (`X-Accel-Buffering: no`, as nginx reads it). */
export function asksNoBuffering(src: IncomingHttpHeaders): boolean {
  const v = src['x-accel-buffering'];
  return v !== undefined && (typeof v === 'string' ? v : String(v)).trim().toLowerCase() === 'no';
}

/**
 * Body framing a bodiless answer must not carry. RFC 9110 §8.6: no Content-Length in a 1xx or 204 answer (an
 * upstream that sends one anyway must not have it forwarded); Transfer-Encoding is hop-by-hop and already
 * dropped for every status. A 304 keeps its Content-Length: §8.6 lets it carry the length the 200 answer would
 * have had, which only the upstream knows (§15.4.5 names the fields a 304 repeats; Content-Length is allowed,
 * not required). Runs after the route's edits, so an added Content-Length does not slip through either.
 */
export function dropBodyFraming(headers: OutgoingHttpHeaders, status: number): void {
  if ((status < 200 || status === 204) && headers['content-length'] !== undefined) delete headers['content-length'];
}

function filterResponseHeaders(src: IncomingHttpHeaders, edits: HeaderEdits | undefined, websocket: boolean): OutgoingHttpHeaders {
  const out = Object.create(null) as OutgoingHttpHeaders;
  const tokens = connectionTokens(src.connection);
  for (const name in src) {
    const skip = RESPONSE_SKIP[name];
    if (skip !== undefined && !(skip === 2 && websocket)) continue;
    if (tokens !== null && isListed(tokens, name) && !(websocket && name === 'upgrade')) continue;
    const v = src[name];
    if (v !== undefined) out[name] = v;
  }
  const viaIn = single(src.via);
  out.via = viaIn === undefined ? VIA : `${viaIn}, ${VIA}`;
  if (edits !== undefined) applyEdits(out as Record<string, string | string[]>, edits);
  return out;
}

function applyEdits(out: Record<string, unknown>, edits: HeaderEdits): void {
  const remove = edits.remove;
  for (let i = 0; i < remove.length; i++) delete out[remove[i]!.toLowerCase()];
  const add = edits.add;
  for (const name in add) out[name.toLowerCase()] = add[name];
}
