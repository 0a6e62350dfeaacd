import cluster from 'node:cluster';
import type { IncomingHttpHeaders } from 'node:http';
import { LRUCache } from 'lru-cache';
import { callPrimary, registerPrimaryService } from '../../../control/primary-rpc.js';
import { fromWire, retentionMs, toWire, variantKey, type CachedResponse, type WireResponse } from './entry.js';
import type { CacheStore, MaybePromise } from './store.js';

export interface MemoryLimits {
  maxEntries: number;
  maxBytes: number;
}

/** Per-entry bookkeeping counted against maxBytes besides the body (keys, metadata, the headers object). */
const ENTRY_OVERHEAD_BYTES = 256;

/** A stored response with the id its store gave it: a new save gets a new id, so an id names one exact version. */
export interface Versioned {
  id: number;
  entry: CachedResponse;
}

let nextId = 1;

/** What a cache remembers per primary key: the Vary fields its responses name, and the generation of its variants. */
interface VarySpec {
  names: string[];
  /**
   * Part of every variant key of this primary key: a spec created anew (after an invalidation or an eviction)
   * gets a new generation, so variants stored before are never reachable again, whichever Vary values they had
   * (RFC 9111 §4.4: an unsafe method invalidates the URI, not only the variant its request would have selected).
   */
  gen: number;
}

let nextGen = 1;

/**
 * The responses of one cache configuration in one process: a size-bounded LRU (maxEntries, maxBytes), each entry
 * dropped once its retention (freshness + stale windows) has passed. `now` is the clock entry expiry runs on.
 */
export class MemoryCache {
  private readonly entries: LRUCache<string, Versioned>;
  /** primary key → the Vary field names its last stored response named, and its variants' generation */
  private readonly varySpecs: LRUCache<string, VarySpec>;

  constructor(limits: MemoryLimits, now?: () => number) {
    this.entries = new LRUCache<string, Versioned>({
      max: limits.maxEntries,
      maxSize: limits.maxBytes,
      sizeCalculation: (v) => Math.max(1, v.entry.body.length + ENTRY_OVERHEAD_BYTES),
      // entry ttls run on the same clock as freshness (lru-cache's default is performance.now), read at every
      // check: with the default ttlResolution lru-cache reuses one reading for 1 ms of real time
      ...(now === undefined ? {} : { perf: { now }, ttlResolution: 0 }),
    });
    this.varySpecs = new LRUCache<string, VarySpec>({ max: limits.maxEntries });
  }

  lookup(primaryKey: string, request: IncomingHttpHeaders): Versioned | undefined {
    const spec = this.varySpecs.get(primaryKey);
    return spec === undefined ? undefined : this.entries.get(variantKey(`${spec.gen}\n${primaryKey}`, spec.names, request));
  }

  save(primaryKey: string, varyNames: string[], request: IncomingHttpHeaders, entry: CachedResponse): number {
    const id = nextId++;
    const gen = this.varySpecs.get(primaryKey)?.gen ?? nextGen++;
    this.varySpecs.set(primaryKey, { names: varyNames, gen });
    this.entries.set(variantKey(`${gen}\n${primaryKey}`, varyNames, request), { id, entry }, { ttl: retentionMs(entry) });
    return id;
  }

  /** Every variant of the primary key: they stay in the LRU, unreachable, until they age out or are evicted. */
  invalidate(primaryKey: string): void {
    this.varySpecs.delete(primaryKey);
  }
}

type MemoryCall =
  | { op: 'open'; ns: string; limits: MemoryLimits }
  | { op: 'lookup'; ns: string; key: string; request: IncomingHttpHeaders; held: number[] }
  | { op: 'save'; ns: string; key: string; vary: string[]; request: IncomingHttpHeaders; entry: WireResponse }
  | { op: 'invalidate'; ns: string; key: string };

const SERVICE = 'cache/memory';
/** The primary's caches, one per configuration (namespace): every worker of the instance reads and writes them. */
const shared = new Map<string, MemoryCache>();

/** A lookup's answer: nothing, the entry's id alone (the asking worker holds that version), or id and entry. */
type LookupAnswer = { id: number; entry?: WireResponse } | null;

function answer(call: MemoryCall): LookupAnswer | number | undefined {
  if (call.op === 'open') {
    if (!shared.has(call.ns)) shared.set(call.ns, new MemoryCache(call.limits));
    return undefined;
  }
  const cache = shared.get(call.ns);
  if (cache === undefined) throw new Error(`cache namespace ${call.ns} not open`);
  switch (call.op) {
    case 'lookup': {
      const v = cache.lookup(call.key, call.request);
      if (v === undefined) return null;
      return call.held.includes(v.id) ? { id: v.id } : { id: v.id, entry: toWire(v.entry) };
    }
    case 'save':
      return cache.save(call.key, call.vary, call.request, fromWire(call.entry));
    case 'invalidate':
      cache.invalidate(call.key);
      return undefined;
  }
}

// Registered at module load: the primary and every worker import this module with the builtin registry.
registerPrimaryService(SERVICE, (payload) => answer(payload as MemoryCall));

/** Versions one worker keeps per primary key (its Vary variants), at most. */
const HELD_PER_KEY = 8;

/**
 * The workers' view of the primary's cache. The primary holds the one authoritative copy; each worker also keeps a
 * bounded copy of the bodies it has served (same maxEntries / maxBytes), keyed by entry id. Every lookup still asks
 * the primary (one IPC round trip, like the rate-limit memory store) and names the ids it holds: when the
 * primary's current version is one of them, the answer is that id alone and no body crosses IPC. Invalidation
 * stays exact (a dropped or replaced entry is never served from a worker's copy: the primary is asked each time),
 * and a 100 KB body is not base64-encoded through the IPC channel on every hit (measured in docs/plugins.md:
 * without the copy, 100 KB hits with 2 workers ran at a fraction of the single-process rate).
 */
class PrimaryMemoryStore implements CacheStore {
  private readonly copies: LRUCache<number, CachedResponse>;
  /** primary key → ids of the versions held for it */
  private readonly held: LRUCache<string, number[]>;

  constructor(
    private readonly ns: string,
    limits: MemoryLimits,
  ) {
    this.copies = new LRUCache<number, CachedResponse>({
      max: limits.maxEntries,
      maxSize: limits.maxBytes,
      sizeCalculation: (e) => Math.max(1, e.body.length + ENTRY_OVERHEAD_BYTES),
    });
    this.held = new LRUCache<string, number[]>({ max: limits.maxEntries });
  }

  async open(limits: MemoryLimits): Promise<void> {
    await callPrimary(SERVICE, { op: 'open', ns: this.ns, limits } satisfies MemoryCall);
  }

  private keep(key: string, id: number, entry: CachedResponse): void {
    this.copies.set(id, entry, { ttl: Math.max(1, retentionMs(entry)) });
    const ids = (this.held.get(key) ?? []).filter((i) => i !== id && this.copies.has(i));
    ids.push(id);
    this.held.set(key, ids.slice(-HELD_PER_KEY));
  }

  async lookup(key: string, request: IncomingHttpHeaders): Promise<CachedResponse | undefined> {
    let held = this.held.get(key) ?? [];
    for (let attempt = 0; attempt < 2; attempt++) {
      const a = (await callPrimary(SERVICE, { op: 'lookup', ns: this.ns, key, request, held } satisfies MemoryCall)) as LookupAnswer;
      if (a === null) return undefined;
      if (a.entry !== undefined) {
        const entry = fromWire(a.entry);
        this.keep(key, a.id, entry);
        return entry;
      }
      const copy = this.copies.get(a.id);
      if (copy !== undefined) return copy;
      held = []; // our copy was evicted since we named it: ask for the body
    }
    return undefined;
  }

  async save(key: string, vary: string[], request: IncomingHttpHeaders, entry: CachedResponse): Promise<void> {
    const id = (await callPrimary(SERVICE, { op: 'save', ns: this.ns, key, vary, request, entry: toWire(entry) } satisfies MemoryCall)) as number;
    this.keep(key, id, entry);
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
    return this.cache.lookup(key, request)?.entry;
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
  const store = new PrimaryMemoryStore(ns, limits);
  await store.open(limits);
  return store;
}
