import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from '../../../data/context.js';

/** `a, b` list of a header value (any shape Node gives us), lower-cased tokens. */
export function headerTokens(v: string | string[] | number | undefined): string[] {
  if (v === undefined) return [];
  const s = Array.isArray(v) ? v.join(',') : String(v);
  const out: string[] = [];
  for (const part of s.split(',')) {
    const t = part.trim().toLowerCase();
    if (t !== '') out.push(t);
  }
  return out;
}

function mergeVary(existing: string | string[] | number | undefined, token: string): string {
  const tokens = headerTokens(existing);
  if (tokens.includes('*') || tokens.includes(token.toLowerCase())) return Array.isArray(existing) ? existing.join(', ') : String(existing);
  return existing === undefined || tokens.length === 0 ? token : `${Array.isArray(existing) ? existing.join(', ') : String(existing)}, ${token}`;
}

/**
 * Adds a Vary token where it will survive: on the staged headers (which writeHead applies last, replacing a
 * same-named header set earlier) and on the ServerResponse (which covers answers staged without it, e.g. errors).
 */
export function addVary(ctx: RequestContext, token: string): void {
  const staged = ctx.responseHeaders;
  if (staged !== null && staged.vary !== undefined) staged.vary = mergeVary(staged.vary, token);
  const res = ctx.res;
  if (res !== null && !res.headersSent) res.setHeader('vary', mergeVary(res.getHeader('vary'), token));
}

/** Lower-cased copy of staged headers (handlers may stage mixed-case names). */
export function stagedHeaders(ctx: RequestContext): OutgoingHttpHeaders {
  let h = ctx.responseHeaders;
  if (h === null) {
    h = {};
    ctx.responseHeaders = h;
    return h;
  }
  for (const k of Object.keys(h)) {
    const lower = k.toLowerCase();
    if (lower !== k) {
      h[lower] = h[k];
      delete h[k];
    }
  }
  return h;
}

/** A response header for every answer this request gets (early, error or handler), without touching the body. */
export function setResponseHeader(ctx: RequestContext, name: string, value: string | string[]): void {
  const res = ctx.res;
  if (res !== null && !res.headersSent) res.setHeader(name, value);
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** The core's JSON error shape, with extra headers (e.g. WWW-Authenticate, Retry-After). */
export function sendError(ctx: RequestContext, status: number, message: string, extra?: OutgoingHttpHeaders): void {
  const body = JSON.stringify({ error: message, statusCode: status });
  const headers: OutgoingHttpHeaders = { 'content-type': JSON_TYPE, 'content-length': String(Buffer.byteLength(body)) };
  if (extra !== undefined) for (const k in extra) headers[k] = extra[k];
  ctx.send(status, headers, body);
}
