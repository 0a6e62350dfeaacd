import type { OutgoingHttpHeaders } from 'node:http';

/** Parsed Cache-Control directives (names lower-cased; valueless ones map to ''). */
export function parseCacheControl(v: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (v === undefined || v === null) return out;
  const s = Array.isArray(v) ? v.join(',') : String(v);
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name === '') continue;
    const value =
      eq === -1
        ? ''
        : part
            .slice(eq + 1)
            .trim()
            .replace(/^"|"$/g, '');
    out.set(name, value);
  }
  return out;
}

function seconds(v: string | undefined): number | null {
  if (v === undefined || !/^\d+$/.test(v)) return null;
  return Number(v);
}

/**
 * How long a stored response stays fresh for a shared cache (RFC 9111 §4.2.1): s-maxage, then max-age, then
 * Expires − Date, minus the Age it already has; `defaultTtlMs` when the response says nothing about freshness.
 * null when the response must not be stored.
 */
export function freshnessMs(headers: OutgoingHttpHeaders, defaultTtlMs: number, now: number): number | null {
  const cc = parseCacheControl(headers['cache-control']);
  if (cc.has('no-store') || cc.has('private') || cc.has('no-cache')) return null;
  let ttl: number | null = null;
  const sMax = seconds(cc.get('s-maxage'));
  const max = seconds(cc.get('max-age'));
  if (sMax !== null) ttl = sMax * 1000;
  else if (max !== null) ttl = max * 1000;
  else if (headers.expires !== undefined) {
    const exp = Date.parse(String(headers.expires));
    const date = headers.date !== undefined ? Date.parse(String(headers.date)) : now;
    ttl = Number.isNaN(exp) ? 0 : exp - (Number.isNaN(date) ? now : date);
  } else ttl = defaultTtlMs;
  const age = seconds(headers.age === undefined ? undefined : String(headers.age));
  if (age !== null) ttl -= age * 1000;
  return ttl > 0 ? ttl : null;
}

function opaque(tag: string): string {
  const t = tag.trim();
  return t.startsWith('W/') ? t.slice(2) : t;
}

/** If-None-Match against a stored ETag, weak comparison (§13.1.2). */
export function etagMatches(ifNoneMatch: string, etag: string | undefined): boolean {
  if (etag === undefined) return false;
  if (ifNoneMatch.trim() === '*') return true;
  const mine = opaque(etag);
  for (const candidate of ifNoneMatch.split(',')) if (opaque(candidate) === mine) return true;
  return false;
}

/** If-Modified-Since: not modified when Last-Modified is at or before the given date. */
export function notModifiedSince(ifModifiedSince: string, lastModified: string | undefined): boolean {
  if (lastModified === undefined) return false;
  const ims = Date.parse(ifModifiedSince);
  const lm = Date.parse(lastModified);
  return !Number.isNaN(ims) && !Number.isNaN(lm) && lm <= ims;
}

/**
 * The stale windows a stored response allows (RFC 5861): stale-while-revalidate and stale-if-error, in ms. Both 0
 * when a directive forbids serving it stale (RFC 9111 §4.2.4: must-revalidate, proxy-revalidate, and s-maxage,
 * which implies proxy-revalidate for a shared cache).
 */
export function staleWindowsMs(headers: OutgoingHttpHeaders): { staleWhileRevalidateMs: number; staleIfErrorMs: number } {
  const cc = parseCacheControl(headers['cache-control']);
  if (cc.has('must-revalidate') || cc.has('proxy-revalidate') || cc.has('s-maxage')) return { staleWhileRevalidateMs: 0, staleIfErrorMs: 0 };
  return { staleWhileRevalidateMs: (seconds(cc.get('stale-while-revalidate')) ?? 0) * 1000, staleIfErrorMs: (seconds(cc.get('stale-if-error')) ?? 0) * 1000 };
}
