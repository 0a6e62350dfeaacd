import cluster from 'node:cluster';
import type { IncomingHttpHeaders } from 'node:http';
import { LRUCache } from 'lru-cache';
import { callPrimary, registerPrimaryService } from '../../../primary-rpc.js';
import { fromWire, retentionMs, toWire, variantKey, type CachedResponse, type WireResponse } from './entry.js';
import type { CacheStore, MaybePromise } from './store.js';

export interface MemoryLimits {
  maxEntries: number;
  maxBytes: number;
}

/** Per-entry bookkeeping counted against maxBytes besides the body (keys, metadata, the headers object). */
const ENTRY_OVERHEAD_BYTES = 256;

/**
 * The responses of one cache configuration in one process: a size-bounded LRU (maxEntries, maxBytes), each entry
 * dropped once its retention (freshness + stale windows) has passed. `now` is the clock entry expiry runs on.
 */
export class MemoryCache {
  private readonly entries: LRUCache<string, CachedResponse>;
  /** primary key → the Vary field names its last stored response named */
  private readonly varySpecs: LRUCache<string, string[]>;

  constructor(limits: MemoryLimits, now?: () => number) {
    this.entries = new LRUCache<string, CachedResponse>({
      max: limits.maxEntries,
      maxSize: limits.maxBytes,
      sizeCalculation: (e) => Math.max(1, e.body.length + ENTRY_OVERHEAD_BYTES),
      // entry ttls run on the same clock as freshness (lru-cache's default is performance.now), read at every
      // check: with the default ttlResolution lru-cache reuses one reading for 1 ms of real time
      ...(now === undefined ? {} : { perf: { now }, ttlResolution: 0 }),
    });
    this.varySpecs = new LRUCache<string, string[]>({ max: limits.maxEntries });
  }

  lookup(primaryKey: string, request: IncomingHttpHeaders): CachedResponse | undefined {
    const names = this.varySpecs.get(primaryKey);
    return names === undefined ? undefined : this.entries.get(variantKey(primaryKey, names, request));
  }

  save(primaryKey: string, varyNames: string[], request: IncomingHttpHeaders, entry: CachedResponse): void {
    this.varySpecs.set(primaryKey, varyNames);
    this.entries.set(variantKey(primaryKey, varyNames, request), entry, { ttl: retentionMs(entry) });
  }

  invalidate(primaryKey: string): void {
    this.varySpecs.delete(primaryKey);
  }

  get size(): number {
    return this.entries.size;
  }
}

type MemoryCall =
  | { op: 'open'; ns: string; limits: MemoryLimits }
  | { op: 'lookup'; ns: string; key: string; request: IncomingHttpHeaders }
  | { op: 'save'; ns: string; key: string; vary: string[]; request: IncomingHttpHeaders; entry: WireResponse }
  | { op: 'invalidate'; ns: string; key: string };

const SERVICE = 'cache/memory';
/** The primary's caches, one per configuration (namespace): every worker of the instance reads and writes them. */
const shared = new Map<string, MemoryCache>();

function answer(call: MemoryCall): WireResponse | null | undefined {
  if (call.op === 'open') {
    if (!shared.has(call.ns)) shared.set(call.ns, new MemoryCache(call.limits));
    return undefined;
  }
  const cache = shared.get(call.ns);
  if (cache === undefined) throw new Error(`cache namespace ${call.ns} not open`);
  switch (call.op) {
    case 'lookup': {
      const e = cache.lookup(call.key, call.request);
      return e === undefined ? null : toWire(e);
    }
    case 'save':
      cache.save(call.key, call.vary, call.request, fromWire(call.entry));
      return undefined;
    case 'invalidate':
      cache.invalidate(call.key);
      return undefined;
  }
}

// Registered at module load: the primary and every worker import this module with the builtin registry.
registerPrimaryService(SERVICE, (payload) => answer(payload as MemoryCall));

/**
 * The workers' view of the primary's cache: one IPC round trip per lookup, save and invalidation. The body
 * crosses as base64 in the JSON message (measured in docs/plugins.md: what a hit costs against a private cache).
 * Holding entries in the primary only, with no per-worker copy, keeps invalidation exact: there is one copy.
 */
class PrimaryMemoryStore implements CacheStore {
  constructor(private readonly ns: string) {}

  async open(limits: MemoryLimits): Promise<void> {
    await callPrimary(SERVICE, { op: 'open', ns: this.ns, limits } satisfies MemoryCall);
  }

  async lookup(key: string, request: IncomingHttpHeaders): Promise<CachedResponse | undefined> {
    const w = (await callPrimary(SERVICE, { op: 'lookup', ns: this.ns, key, request } satisfies MemoryCall)) as WireResponse | null;
    return w === null ? undefined : fromWire(w);
  }

  async save(key: string, vary: string[], request: IncomingHttpHeaders, entry: CachedResponse): Promise<void> {
    await callPrimary(SERVICE, { op: 'save', ns: this.ns, key, vary, request, entry: toWire(entry) } satisfies MemoryCall);
  }

  async invalidate(key: string): Promise<void> {
    await callPrimary(SERVICE, { op: 'invalidate', ns: this.ns, key } satisfies MemoryCall);
  }

  close(): void {
    /* the primary keeps the entries: a reloaded configuration with the same namespace finds them again */
  }
}

/** In-process: the cache itself, synchronous. */
class LocalMemoryStore implements CacheStore {
  constructor(private readonly cache: MemoryCache) {}
  lookup(key: string, request: IncomingHttpHeaders): MaybePromise<CachedResponse | undefined> {
    return this.cache.lookup(key, request);
  }
  save(key: string, vary: string[], request: IncomingHttpHeaders, entry: CachedResponse): void {
    this.cache.save(key, vary, request, entry);
  }
  invalidate(key: string): void {
    this.cache.invalidate(key);
  }
  close(): void {}
}

/**
 * The memory store for a configuration: held by the primary when clustered (all workers of the instance share
 * it), by this process when single-process. `now` (tests) applies to the in-process cache only.
 */
export async function openMemoryStore(ns: string, limits: MemoryLimits, now?: () => number): Promise<CacheStore> {
  if (!cluster.isWorker) return new LocalMemoryStore(new MemoryCache(limits, now));
  const store = new PrimaryMemoryStore(ns);
  await store.open(limits);
  return store;
}
