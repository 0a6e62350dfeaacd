import { compileRouteRegex } from '../config/regex-safety.js';
import type { RouteConfig } from '../config/types.js';
import { ProxyError } from './errors.js';

/**
 * How a route maps the client's request target to the upstream path. Compiled once per RouteConfig.
 * The upstream host is never taken from the request target: only its path and query are used.
 */
export interface ProxyPath {
  /** literal part of the route pattern before its first param/wildcard: the forwarded path must stay under it */
  readonly prefix: string;
  /** prefix removed before forwarding (stripPrefix), or null */
  readonly strip: string | null;
  /** compiled rewrite template, or null */
  readonly rewrite: RewritePart[] | null;
  /** literal part of the rewrite template before its first substitution (the rewritten path must stay under it) */
  readonly rewritePrefix: string;
  /** `rewrite: { regex, replacement }`: run on the path (anchored); a path it does not match is forwarded as is */
  readonly rewriteRegex: RegExp | null;
  readonly replacement: string;
}

type RewritePart = { kind: 0; text: string } | { kind: 1; name: string } | { kind: 2 };

function literalPrefix(pattern: string): string {
  let end = pattern.length;
  const colon = pattern.indexOf(':');
  const star = pattern.indexOf('*');
  if (colon !== -1) end = colon;
  if (star !== -1 && star < end) end = star;
  return pattern.slice(0, end);
}

function compileRewrite(template: string): RewritePart[] {
  const parts: RewritePart[] = [];
  const re = /:([A-Za-z0-9_]+)|\*/g;
  let last = 0;
  for (let m = re.exec(template); m !== null; m = re.exec(template)) {
    if (m.index > last) parts.push({ kind: 0, text: template.slice(last, m.index) });
    parts.push(m[1] === undefined ? { kind: 2 } : { kind: 1, name: m[1] });
    last = m.index + m[0].length;
  }
  if (last < template.length) parts.push({ kind: 0, text: template.slice(last) });
  return parts;
}

export function compileProxyPath(route: RouteConfig): ProxyPath {
  const prefix = literalPrefix(route.path);
  const strip = route.stripPrefix === true ? prefix : typeof route.stripPrefix === 'string' ? route.stripPrefix : null;
  const rw = route.rewrite;
  if (rw !== undefined && typeof rw !== 'string') {
    // the rewritten path must stay under the replacement's literal start, as a template's must
    const literal = rw.replacement.slice(0, rw.replacement.indexOf('$') === -1 ? undefined : rw.replacement.indexOf('$'));
    return { prefix, strip, rewrite: null, rewritePrefix: literal, rewriteRegex: compileRouteRegex(rw.regex), replacement: rw.replacement };
  }
  const rewrite = rw === undefined ? null : compileRewrite(rw);
  return { prefix, strip, rewrite, rewritePrefix: rw === undefined ? '' : literalPrefix(rw), rewriteRegex: null, replacement: '' };
}

function encodeWildcard(v: string): string {
  return v.split('/').map(encodeURIComponent).join('/');
}

// only paths with something to normalise take the slow path
const NEEDS_NORMALISING = /%|\\|\/\/|\/\.\.?(?:\/|$)/;
const ENCODED_DOT = /%2e/gi;
const ENCODED_SEPARATOR = /%2f|%5c|\\/gi;

const BAD_PATH = 'request path escapes the route prefix';

/**
 * Resolve dot segments (also written %2e) and merge empty segments. Returns null when `..` would climb above '/'.
 * `separators` additionally treats %2f, %5c and '\' as '/', which is how a lenient upstream might read them.
 */
export function resolveDots(path: string, separators: boolean): string | null {
  let p = path.replace(ENCODED_DOT, '.');
  if (separators) p = p.replace(ENCODED_SEPARATOR, '/');
  const segs = p.split('/');
  const out: string[] = [];
  let trailing = false;
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i]!;
    trailing = false;
    if (s === '' || s === '.') {
      trailing = true;
      continue;
    }
    if (s === '..') {
      if (out.length === 0) return null;
      out.pop();
      trailing = true;
      continue;
    }
    out.push(s);
  }
  if (out.length === 0) return '/';
  return trailing ? `/${out.join('/')}/` : `/${out.join('/')}`;
}

/**
 * Dot segments are resolved (and empty segments merged) in what is forwarded; %2e in a segment counts as a dot.
 * A path is rejected (400) if resolving dots — with %2f/%5c/'\' also read as separators — leaves `under`.
 * The forwarded form keeps %2f etc. encoded: only the check reads them as separators.
 */
function normalise(path: string, under: string): string {
  if (!NEEDS_NORMALISING.test(path)) {
    if (!startsUnder(path, under)) throw new ProxyError('GW_ERR_PROXY_PATH', BAD_PATH);
    return path;
  }
  // only '.'-encoded dots become dots in the forwarded form; everything else stays as the client wrote it
  const segs = path.split('/');
  const out: string[] = [];
  let trailing = false;
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i]!;
    trailing = false;
    const dots = s.length <= 6 ? s.replace(ENCODED_DOT, '.') : s;
    if (s === '' || dots === '.') {
      trailing = true;
      continue;
    }
    if (dots === '..') {
      if (out.length === 0) throw new ProxyError('GW_ERR_PROXY_PATH', BAD_PATH);
      out.pop();
      trailing = true;
      continue;
    }
    out.push(s);
  }
  const forwarded = out.length === 0 ? '/' : trailing ? `/${out.join('/')}/` : `/${out.join('/')}`;
  const strict = resolveDots(path, true);
  if (strict === null || !startsUnder(strict, under) || !startsUnder(forwarded, under)) throw new ProxyError('GW_ERR_PROXY_PATH', BAD_PATH);
  return forwarded;
}

/** `/api` is under `/api/` too (the prefix's own directory). */
function startsUnder(path: string, prefix: string): boolean {
  if (path.startsWith(prefix)) return true;
  return prefix.length > 1 && prefix.endsWith('/') && path === prefix.slice(0, -1);
}

/**
 * The upstream request target (origin-form path + original query) for a client request target.
 * Absolute-form targets (`http://other/x`) contribute only their path.
 */
export function upstreamTarget(rawUrl: string, params: Record<string, string>, p: ProxyPath): string {
  let raw = rawUrl;
  if (raw.charCodeAt(0) !== 47 /* / */) {
    const scheme = raw.indexOf('://');
    if (scheme === -1) throw new ProxyError('GW_ERR_PROXY_PATH', 'unsupported request target');
    const slash = raw.indexOf('/', scheme + 3);
    const q = raw.indexOf('?', scheme + 3);
    raw = slash === -1 || (q !== -1 && q < slash) ? (q === -1 ? '/' : `/${raw.slice(q)}`) : raw.slice(slash);
  }
  const q = raw.indexOf('?');
  let path = q === -1 ? raw : raw.slice(0, q);
  const query = q === -1 ? '' : raw.slice(q);
  const hash = path.indexOf('#');
  if (hash !== -1) path = path.slice(0, hash);

  if (p.rewrite !== null) {
    let built = '';
    const parts = p.rewrite;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (part.kind === 0) built += part.text;
      else if (part.kind === 1) built += encodeURIComponent(params[part.name] ?? '');
      else built += encodeWildcard(params['*'] ?? '');
    }
    return normalise(built, p.rewritePrefix) + query;
  }

  if (p.rewriteRegex !== null && p.rewriteRegex.test(path)) return normalise(path.replace(p.rewriteRegex, p.replacement), p.rewritePrefix) + query;

  path = normalise(path, p.prefix);
  if (p.strip !== null && path.startsWith(p.strip)) {
    path = path.slice(p.strip.length);
    if (path.charCodeAt(0) !== 47) path = `/${path}`;
  }
  return path + query;
}
