import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** One stored response, as every store keeps it. Times are epoch ms on the plugin's clock. */
export interface CachedResponse {
  status: number;
  /** the response's headers as stored (hop-by-hop fields, Set-Cookie, Age, Date and X-Cache removed) */
  headers: OutgoingHttpHeaders;
  body: Buffer;
  storedAt: number;
  /** freshness lifetime from storedAt (RFC 9111 §4.2.1) */
  freshMs: number;
  /** how long past freshness it may still be served while one background revalidation runs (RFC 5861 §3) */
  staleWhileRevalidateMs: number;
  /** how long past freshness it may still be served when the upstream fails (RFC 5861 §4) */
  staleIfErrorMs: number;
  /** who may receive it (cache/key.ts), absent for everyone */
  partition?: string;
}

/** How long a store must keep an entry: fresh, then as long as either stale window allows. */
export function retentionMs(e: Pick<CachedResponse, 'freshMs' | 'staleWhileRevalidateMs' | 'staleIfErrorMs'>): number {
  return e.freshMs + Math.max(e.staleWhileRevalidateMs, e.staleIfErrorMs);
}

/**
 * The key of one variant: the primary key (the target URI, key.ts) followed by the value of each request
 * header the stored response's Vary named, whitespace-normalised (RFC 9111 §4.1). Every store derives it here,
 * so a variant stored by one process is found by every other.
 */
export function variantKey(primaryKey: string, names: readonly string[], req: IncomingHttpHeaders): string {
  let key = primaryKey;
  for (const n of names) {
    const v = req[n];
    key += `\n${n}:${v === undefined ? '' : (Array.isArray(v) ? v.join(',') : v).replace(/\s+/g, ' ').trim()}`;
  }
  return key;
}

/** Metadata and body, for transports that carry text only (cluster IPC is JSON: a Buffer would become a number array). */
export interface WireResponse {
  meta: Omit<CachedResponse, 'body'>;
  body: string;
}

export function toWire(e: CachedResponse): WireResponse {
  const { body, ...meta } = e;
  return { meta, body: body.toString('base64') };
}

export function fromWire(w: WireResponse): CachedResponse {
  return { ...w.meta, body: Buffer.from(w.body, 'base64') };
}
