import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { RequestContext } from '../../../data/context.js';
import type { GatewayPlugin, PluginApi, PluginInstance } from '../../types.js';
import { headerTokens, stagedHeaders } from '../shared/headers.js';
import { redisOptionsSchema, type RedisConnectionOptions } from '../shared/redis.js';
import type { CachedResponse } from './entry.js';
import { instanceFlights } from './flights.js';
import { etagMatches, freshnessMs, notModifiedSince, parseCacheControl, staleWindowsMs } from './freshness.js';
import { credentialOf, namedCookies, PARTITION_FIELD, partitionOf, targetKey } from './key.js';
import { openMemoryStore } from './memory-store.js';
import { RedisCacheStore } from './redis-store.js';
import { replayOf, sendReplay } from './revalidate.js';
import type { CacheStore, MaybePromise } from './store.js';

export interface CacheOptions {
  maxEntries: number;
  maxBytes: number;
  /** largest single body stored; bigger responses pass through uncached */
  maxEntryBytes: number;
  /** freshness when the response carries no max-age / s-maxage / Expires */
  defaultTtlMs: number;
  /** store and serve responses to requests with credentials (keyed per credential); off by default */
  cacheAuthenticated: boolean;
  /** requests with a Cookie header are cached like others, their cookies ignored; off by default (they bypass) */
  cacheCookies: boolean;
  /** requests with a Cookie header are cached, keyed on the values of these cookies (the others ignored) */
  keyCookies: string[];
  /** "memory": held by this instance (its primary when clustered); "redis": shared by every instance */
  store: 'memory' | 'redis';
  redis: RedisConnectionOptions;
  /** concurrent misses for one URL make one upstream request (per instance) */
  coalesce: boolean;
  /** how long a coalesced request waits for the one in flight, and how long a background revalidation may run */
  coalesceTimeoutMs: number;
}

/** Per-request state: a lookup that missed (and may store), or an unsafe request that invalidates. */
interface MissState {
  primaryKey: string;
  /** who may receive what this request stores ('' for everyone: see key.ts) */
  partition: string;
  /** the request's headers, with the partition as PARTITION_FIELD when the cache partitions */
  request: IncomingHttpHeaders;
  store: boolean;
  /** a stale entry still inside its stale-if-error window: served if the upstream fails */
  stale: CachedResponse | undefined;
  /** the coalescing flight this request leads, released once its answer is stored or known not to be */
  flight: string | null;
}

interface InvalidateState {
  invalidate: string;
}

const STATE = 'cache';
/** Never stored: per-connection or per-response-instance fields, and ours. */
const UNSTORED = ['connection', 'keep-alive', 'transfer-encoding', 'set-cookie', 'age', 'x-cache', 'date'];
/** What a 304 repeats from the stored response (RFC 9110 §15.4.5). */
const NOT_MODIFIED_FIELDS = ['cache-control', 'content-location', 'etag', 'expires', 'vary', 'last-modified'];
/** At most one store-error log line per this interval: a dead Redis under load must not flood the log. */
const ERROR_LOG_INTERVAL_MS = 5_000;

/** What can be injected into the cache plugin; production uses the defaults. */
export interface CacheDeps {
  /** the wall clock in epoch ms, for freshness, Age and entry expiry (default Date.now); a test moves it instead of sleeping */
  now?: () => number;
}

/**
 * A shared response cache for GET and HEAD. Freshness from Cache-Control (s-maxage, max-age), Expires, or
 * defaultTtlMs; no-store / private / no-cache responses and Set-Cookie are never stored; Vary selects among
 * stored variants; conditional requests on a hit get 304; stale-while-revalidate and stale-if-error (RFC 5861)
 * serve a stale entry while one background revalidation runs, or when the upstream fails.
 * The store is the instance's memory (held by the primary when clustered) or Redis (every instance); a store
 * that cannot answer is a miss, never an error. Concurrent misses for one URL are coalesced per instance.
 * Put it after auth in the plugin list (auth must refuse before a hit is served, and establish the identity the
 * cache partitions on: the config validator refuses the other order), and after compression to store compressed
 * variants. Requests with a Cookie header bypass it unless the options say how to treat them (cacheCookies,
 * keyCookies). Keys: see key.ts.
 */
export function createCachePlugin(deps: CacheDeps = {}): GatewayPlugin<CacheOptions> {
  const now = deps.now ?? Date.now;
  return {
    name: 'cache',
    version: '1.1.0',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxEntries: { type: 'integer', minimum: 1, default: 1000 },
        maxBytes: { type: 'integer', minimum: 1, default: 64 * 1024 * 1024 },
        maxEntryBytes: { type: 'integer', minimum: 1, default: 1024 * 1024 },
        defaultTtlMs: { type: 'integer', minimum: 0, default: 60_000 },
        cacheAuthenticated: { type: 'boolean', default: false },
        cacheCookies: { type: 'boolean', default: false },
        // RFC 6265 cookie-name: a token
        keyCookies: { type: 'array', items: { type: 'string', pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }, uniqueItems: true, default: [] },
        store: { enum: ['memory', 'redis'], default: 'memory' },
        redis: redisOptionsSchema('gw:cache:'),
        coalesce: { type: 'boolean', default: true },
        coalesceTimeoutMs: { type: 'integer', minimum: 1, default: 5_000 },
      },
      if: { properties: { store: { const: 'redis' } }, required: ['store'] },
      then: { required: ['redis'] },
    },
    async init(options, api): Promise<PluginInstance> {
      if (options.cacheCookies && options.keyCookies.length > 0) {
        throw new Error('cache: cacheCookies (ignore every cookie) and keyCookies (key on some) cannot be combined');
      }
      const store = await openStore(options, api, deps.now);
      return cacheInstance(options, api, store, now);
    },
  };
}

async function openStore(options: CacheOptions, api: PluginApi, now: (() => number) | undefined): Promise<CacheStore> {
  if (options.store === 'redis') {
    // One keyspace per keyPrefix: every instance (whatever its other options) shares what it stores.
    const redis = new RedisCacheStore(options.redis, { maxEntries: options.maxEntries, maxBytes: options.maxBytes }, api.logger);
    await redis.connect();
    return redis;
  }
  // Deterministic across workers (each builds the same config), so all of them open the same primary cache.
  const ns = createHash('sha256')
    .update(
      JSON.stringify([
        options.maxEntries,
        options.maxBytes,
        options.maxEntryBytes,
        options.defaultTtlMs,
        options.cacheAuthenticated,
        options.cacheCookies,
        options.keyCookies,
      ]),
    )
    .digest('hex')
    .slice(0, 16);
  return openMemoryStore(ns, { maxEntries: options.maxEntries, maxBytes: options.maxBytes }, now);
}

function cacheInstance(options: CacheOptions, api: PluginApi, store: CacheStore, now: () => number): PluginInstance {
  const maxEntry = Math.min(options.maxEntryBytes, options.maxBytes);
  const holdMs = options.coalesceTimeoutMs;
  const hits = api.counter('cache_hits_total', 'responses served from the cache plugin');
  const misses = api.counter('cache_misses_total', 'cacheable requests not served from the cache plugin');
  const staleServed = api.counter('cache_stale_total', 'stale responses served (stale-while-revalidate, stale-if-error)');
  const coalesced = api.counter('cache_coalesced_total', 'requests that waited for a concurrent miss instead of going upstream');
  const storeErrors = api.counter('cache_store_errors_total', 'store operations that failed (served as a miss, nothing stored)');

  let lastLog = 0;
  let suppressed = 0;
  const storeFailed = (op: string, err: unknown): void => {
    storeErrors.inc();
    const t = Date.now();
    if (t - lastLog >= ERROR_LOG_INTERVAL_MS) {
      api.logger.warn({ err: (err as Error).message, op, suppressed }, 'cache store unavailable');
      lastLog = t;
      suppressed = 0;
    } else suppressed++;
  };

  /** A store call that never throws nor rejects: failures are logged and counted, and read as "nothing". */
  const safely = <T>(op: string, call: () => MaybePromise<T>): MaybePromise<T | undefined> => {
    try {
      const r = call();
      return r instanceof Promise ? r.catch((err: unknown) => (storeFailed(op, err), undefined)) : r;
    } catch (err) {
      storeFailed(op, err);
      return undefined;
    }
  };

  const keyCookies = options.keyCookies;
  // Whether entries may differ by partition: then every stored response names PARTITION_FIELD among its Vary
  // fields (anonymous ones with the value ''), so the spec a store keeps per URI is the same for all of them.
  const partitioned = options.cacheAuthenticated || keyCookies.length > 0;

  /**
   * Who may share this request's entry ('' for everyone), or null when it must bypass the cache: credentials
   * without cacheAuthenticated (or without anything that tells them apart), cookies the route did not opt into.
   */
  const partitionFor = (ctx: RequestContext): string | null => {
    let credential: string | null = null;
    if (ctx.identity !== null || ctx.header('authorization') !== undefined) {
      if (!options.cacheAuthenticated) return null;
      credential = credentialOf(ctx);
      if (credential === null) return null;
    }
    let cookies: Array<string | null> | null = null;
    const cookie = ctx.header('cookie');
    if (cookie !== undefined && !options.cacheCookies) {
      if (keyCookies.length === 0) return null;
      cookies = namedCookies(cookie, keyCookies);
      if (cookies.every((c) => c === null)) cookies = null;
    }
    return partitionOf(credential, cookies);
  };

  const release = (state: MissState): void => {
    if (state.flight === null) return;
    instanceFlights.release(state.flight);
    state.flight = null;
  };

  /** One background revalidation per URL and instance; the stale entry is served meanwhile. */
  const revalidateInBackground = (ctx: RequestContext, state: MissState): void => {
    const key = `r\n${state.primaryKey}\n${state.partition}`;
    try {
      const replay = replayOf(ctx);
      if (replay === null) return;
      const go = (lead: boolean): void => {
        if (!lead) return;
        void sendReplay(replay, holdMs).then(() => instanceFlights.release(key));
      };
      const claim = instanceFlights.tryClaim(key, holdMs);
      if (typeof claim === 'boolean') go(claim);
      else claim.then(go, () => undefined);
    } catch {
      /* no revalidation: the entry expires and the next request is a miss */
    }
  };

  /** What a lookup found decides the request: served fresh or stale, or a miss that may lead or wait. */
  const decide = (ctx: RequestContext, state: MissState, entry: CachedResponse | undefined, followed: boolean): void | Promise<void> => {
    const t = now();
    // An entry stored for another partition (by a configuration that does not partition, sharing a Redis store)
    // is never served: the partition is part of the variant key, and checked here once more.
    if (entry !== undefined && (entry.partition ?? '') !== state.partition) entry = undefined;
    if (entry !== undefined) {
      const age = t - entry.storedAt;
      if (age < entry.freshMs) {
        hits.inc();
        if (followed) coalesced.inc();
        serve(ctx, entry, t, 'HIT');
        return;
      }
      const staleFor = age - entry.freshMs;
      if (staleFor < entry.staleWhileRevalidateMs) {
        staleServed.inc();
        serve(ctx, entry, t, 'STALE');
        revalidateInBackground(ctx, state);
        return;
      }
      if (staleFor < entry.staleIfErrorMs) state.stale = entry;
    }
    if (!followed && options.coalesce && state.store) {
      const key = `c\n${state.primaryKey}\n${state.partition}`;
      let claim: ReturnType<typeof instanceFlights.claim>;
      try {
        claim = instanceFlights.claim(key, holdMs);
      } catch {
        claim = 'followed';
      }
      if (claim === 'lead') state.flight = key;
      else if (claim instanceof Promise) {
        return claim.then(
          (c) => {
            if (c === 'lead') {
              state.flight = key;
              return miss(ctx, state);
            }
            // the request we waited for has finished: its answer is stored if it could be
            const again = safely('lookup', () => store.lookup(state.primaryKey, state.request));
            return again instanceof Promise ? again.then((e) => decide(ctx, state, e, true)) : decide(ctx, state, again, true);
          },
          () => miss(ctx, state),
        );
      }
    }
    miss(ctx, state);
  };

  const miss = (ctx: RequestContext, state: MissState): void => {
    misses.inc();
    ctx.set(STATE, state);
  };

  /** Stores the response, then releases the flight (waiters look again once the entry is there). */
  const save = (state: MissState, status: number, headers: OutgoingHttpHeaders, body: Buffer, resVary: unknown): MaybePromise<void> => {
    const storedAt = now();
    const freshMs = freshnessMs(headers, options.defaultTtlMs, storedAt);
    const names = [...new Set([...headerTokens(headers.vary as string | undefined), ...headerTokens(resVary as string | undefined)])];
    if (freshMs === null || names.includes('*')) return release(state);
    if (partitioned) names.push(PARTITION_FIELD);
    const kept: OutgoingHttpHeaders = {};
    for (const k in headers) if (!UNSTORED.includes(k)) kept[k] = headers[k];
    kept['content-length'] = String(body.length);
    names.sort();
    const { staleWhileRevalidateMs, staleIfErrorMs } = staleWindowsMs(headers);
    const entry: CachedResponse = { status, headers: kept, body, storedAt, freshMs, staleWhileRevalidateMs, staleIfErrorMs };
    if (state.partition !== '') entry.partition = state.partition;
    const r = safely('save', () => store.save(state.primaryKey, names, state.request, entry));
    if (r instanceof Promise) return r.then(() => release(state));
    release(state);
  };

  /** Answers with the stale entry instead of the upstream's failure (stale-if-error). */
  const serveStaleOnError = (ctx: RequestContext, state: MissState): boolean => {
    const entry = state.stale;
    if (entry === undefined) return false;
    const t = now();
    if (t - entry.storedAt - entry.freshMs >= entry.staleIfErrorMs) return false;
    if (ctx.body instanceof Readable) ctx.body.destroy();
    staleServed.inc();
    serve(ctx, entry, t, 'STALE');
    return true;
  };

  return {
    preHandler(ctx: RequestContext): void | Promise<void> {
      if (ctx.res === null) return;
      const method = ctx.method;
      const req = ctx.req!;
      if (method !== 'GET' && method !== 'HEAD') {
        // An unsafe method invalidates what we hold for the same URI, every variant and partition of it
        // (RFC 9111 §4.4), once the upstream answered.
        if (method !== 'OPTIONS' && method !== 'TRACE') ctx.set(STATE, { invalidate: targetKey(ctx) } satisfies InvalidateState);
        return;
      }
      const partition = partitionFor(ctx);
      if (partition === null) return;
      const reqCc = parseCacheControl(req.headers['cache-control']);
      if (reqCc.has('no-store')) return;
      const request = partitioned ? { ...req.headers, [PARTITION_FIELD]: partition } : req.headers;
      const state: MissState = { primaryKey: targetKey(ctx), partition, request, store: method === 'GET', stale: undefined, flight: null };
      const skipLookup = reqCc.has('no-cache') || reqCc.get('max-age') === '0' || req.headers.pragma === 'no-cache';
      // A request that must not be answered from the cache (a revalidation among them) neither waits for nor leads a flight.
      if (skipLookup) return miss(ctx, state);
      const found = safely('lookup', () => store.lookup(state.primaryKey, state.request));
      if (found instanceof Promise) return found.then((e) => decide(ctx, state, e, false));
      return decide(ctx, state, found, false);
    },

    postHandler(ctx: RequestContext): void | Promise<void> {
      const s = ctx.get(STATE) as MissState | InvalidateState | undefined;
      if (s === undefined) return;
      if ('invalidate' in s) {
        // Awaited: once this client has the answer to its POST, no instance serves the old entry.
        const r = safely('invalidate', () => store.invalidate(s.invalidate));
        return r instanceof Promise ? r.then(() => undefined) : undefined;
      }
      const state = s;
      if (ctx.statusCode >= 500 && serveStaleOnError(ctx, state)) return release(state);
      const h = stagedHeaders(ctx);
      h['x-cache'] = 'MISS';
      if (!state.store || ctx.statusCode !== 200 || h['set-cookie'] !== undefined || freshnessMs(h, options.defaultTtlMs, now()) === null) {
        return release(state);
      }
      // A hook after the lookup established an identity (or changed what the partition rests on): what this
      // request received is not for the partition it looked up in, and is not stored (see validator's order check).
      if (partitionFor(ctx) !== state.partition) return release(state);
      const status = ctx.statusCode;
      const resVary = ctx.res?.getHeader('vary');
      const body = ctx.body;
      if (typeof body === 'string' || Buffer.isBuffer(body)) {
        const buf = typeof body === 'string' ? Buffer.from(body) : body;
        if (buf.length <= maxEntry) return save(state, status, h, buf, resVary);
        return release(state);
      }
      if (body instanceof Readable) {
        const declared = h['content-length'] === undefined ? -1 : Number(h['content-length']);
        if (declared > maxEntry) return release(state);
        // too big after all: waiters need not wait for the rest of a body that will not be stored
        const tee = new StoringTee(
          maxEntry,
          (buf) => save(state, status, { ...h }, buf, resVary),
          () => release(state),
        );
        body.once('error', (err) => tee.destroy(err));
        // The client left (the server destroys ctx.body): release the upstream body too.
        tee.once('close', () => {
          if (!body.readableEnded) body.destroy();
          release(state);
        });
        body.pipe(tee);
        ctx.body = tee;
        return;
      }
      release(state);
    },

    // Every answer a miss ends with comes here, including a refusal by a later preHandler hook (no postHandler
    // then): its flight must not hold the next request for the same URI until coalesceTimeoutMs. A stored body
    // has been saved by now (the response finishes only after StoringTee's flush settled).
    postResponse(ctx: RequestContext): void {
      const s = ctx.get(STATE) as MissState | InvalidateState | undefined;
      if (s !== undefined && !('invalidate' in s)) release(s);
    },

    onError(ctx: RequestContext): void {
      const s = ctx.get(STATE) as MissState | InvalidateState | undefined;
      if (s === undefined || 'invalidate' in s) return;
      serveStaleOnError(ctx, s);
      release(s);
    },

    destroy() {
      store.close();
    },
  };
}

export const cachePlugin = createCachePlugin();

/**
 * Passes the body through while keeping a copy; stores it only if it ended complete and within the cap. The end
 * of the body waits for the store to settle (bounded by the store's own timeout), so the client that caused a
 * store finds the entry on its next request, whichever process or instance serves it.
 */
class StoringTee extends Transform {
  private chunks: Buffer[] = [];
  private size = 0;
  private overflow = false;
  constructor(
    private readonly cap: number,
    private readonly onComplete: (body: Buffer) => MaybePromise<void>,
    private readonly onOverflow: () => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.overflow) {
      this.size += chunk.length;
      if (this.size > this.cap) {
        this.overflow = true;
        this.chunks = [];
        this.onOverflow();
      } else this.chunks.push(chunk);
    }
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.overflow) return cb();
    const body = Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    const r = this.onComplete(body);
    if (r instanceof Promise)
      r.then(
        () => cb(),
        () => cb(),
      );
    else cb();
  }
}

function serve(ctx: RequestContext, entry: CachedResponse, now: number, label: 'HIT' | 'STALE'): void {
  const req = ctx.req!;
  const age = String(Math.max(0, Math.floor((now - entry.storedAt) / 1000)));
  const etag = entry.headers.etag === undefined ? undefined : String(entry.headers.etag);
  const lastModified = entry.headers['last-modified'] === undefined ? undefined : String(entry.headers['last-modified']);
  const inm = req.headers['if-none-match'];
  const ims = req.headers['if-modified-since'];
  const notModified = inm !== undefined ? etagMatches(inm, etag) : ims !== undefined && notModifiedSince(ims, lastModified);
  if (notModified) {
    const headers: OutgoingHttpHeaders = { age, 'x-cache': label };
    for (const f of NOT_MODIFIED_FIELDS) if (entry.headers[f] !== undefined) headers[f] = entry.headers[f];
    ctx.send(304, headers, null);
    return;
  }
  ctx.send(entry.status, { ...entry.headers, age, 'x-cache': label }, entry.body);
}

export default cachePlugin;
