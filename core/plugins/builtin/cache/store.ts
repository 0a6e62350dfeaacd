import type { IncomingHttpHeaders } from 'node:http';
import type { CachedResponse } from './entry.js';

/** A value now, or later: the in-process memory store answers synchronously (no promise per hit). */
export type MaybePromise<T> = T | Promise<T>;

/**
 * Where the cache plugin keeps responses. Every store applies Vary the same way (entry.ts variantKey), keeps an
 * entry for retentionMs(entry) and no longer, and leaves freshness decisions to the plugin (it returns stale
 * entries too, within their retention). A store that cannot answer rejects; the plugin treats that as a miss.
 */
export interface CacheStore {
  /** the stored variant matching this request, fresh or stale, or undefined */
  lookup(primaryKey: string, request: IncomingHttpHeaders): MaybePromise<CachedResponse | undefined>;
  /** store a response under its primary key, for requests matching `request` on the Vary fields `varyNames` */
  save(primaryKey: string, varyNames: string[], request: IncomingHttpHeaders, entry: CachedResponse): MaybePromise<void>;
  /** forget every variant of the primary key */
  invalidate(primaryKey: string): MaybePromise<void>;
  close(): void;
}
