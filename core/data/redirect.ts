import type { RedirectConfig } from '../config/types.js';
import type { RequestState } from './request-state.js';

/**
 * A route's `redirect`, answered by the gateway as the Kubernetes Gateway API's RequestRedirect does: the Location
 * is the request's own URL with what the route names replaced. Scheme: the route's, else the request's. Host: the
 * route's, else the request's. Port: the route's; else none when the route changes the scheme (its well-known port);
 * else the request's. A scheme's default port is never written. Path: `path` replaces it whole, `prefix` replaces
 * the route path's literal prefix (the part before its first param or `*`). The query string is kept.
 */
export function stageRedirect(ctx: RequestState, r: RedirectConfig, routePath: string): void {
  const url = ctx.url;
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q);
  const scheme = r.scheme ?? (ctx.secure ? 'https' : 'http');

  const headers = ctx.req!.headers;
  const authority = headers.host ?? (headers[':authority'] as string | undefined) ?? '';
  const portAt = authority.startsWith('[') ? authority.indexOf(':', authority.indexOf(']')) : authority.indexOf(':');
  const requestHost = portAt === -1 ? authority : authority.slice(0, portAt);
  const requestPort = portAt === -1 ? '' : authority.slice(portAt + 1);
  const host = r.host ?? requestHost;
  let port = r.port !== undefined ? String(r.port) : r.scheme !== undefined ? '' : requestPort;
  if ((scheme === 'http' && port === '80') || (scheme === 'https' && port === '443')) port = '';

  let target = path;
  if (r.path !== undefined) target = r.path;
  else if (r.prefix !== undefined) target = replacePrefix(path, literalPrefix(routePath), r.prefix);

  ctx.statusCode = r.status;
  ctx.responseHeaders = { location: `${scheme}://${host}${port === '' ? '' : `:${port}`}${target}${query}`, 'content-length': '0' };
  ctx.body = null;
}

/** The route pattern up to its first param or wildcard: what `prefix` replaces. */
function literalPrefix(pattern: string): string {
  const m = /[:*]/.exec(pattern);
  return m === null ? pattern : pattern.slice(0, m.index);
}

/** `/old/` → `/new`: one slash between the new prefix and the rest, as HTTPRoute's ReplacePrefixMatch writes it. */
function replacePrefix(path: string, old: string, replacement: string): string {
  let rest = path.slice(old.length);
  if (old.endsWith('/') && old.length > 1) rest = `/${rest}`;
  const base = replacement.endsWith('/') && rest.startsWith('/') ? replacement.slice(0, -1) : replacement;
  if (rest !== '' && !rest.startsWith('/') && !base.endsWith('/')) return `${base}/${rest}`;
  return base + rest || '/';
}
