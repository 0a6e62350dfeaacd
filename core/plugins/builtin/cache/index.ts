import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { LRUCache } from 'lru-cache';
import type { RequestContext } from '../../../context.js';
import type { GatewayPlugin, PluginInstance } from '../../types.js';
import { headerTokens, stagedHeaders } from '../shared/headers.js';
import { etagMatches, freshnessMs, notModifiedSince, parseCacheControl } from './freshness.js';

export interface CacheOptions {
  maxEntries: number;
  maxBytes: number;
  /** largest single body stored; bigger responses pass through uncached */
  maxEntryBytes: number;
  /** freshness when the response carries no max-age / s-maxage / Expires */
  defaultTtlMs: number;
  /** store and serve responses to requests with credentials (keyed per credential); off by default */
  cacheAuthenticated: boolean;
}

interface Entry {
  status: number;
  headers: OutgoingHttpHeaders;
  body: Buffer;
  storedAt: number;
  etag: string | undefined;
  lastModified: string | undefined;
}

interface MissState {
  primaryKey: string;
  request: IncomingHttpHeaders;
  store: boolean;
}

const STATE = 'cache';
/** Never stored: per-connection or per-response-instance fields, and ours. */
const UNSTORED = ['connection', 'keep-alive', 'transfer-encoding', 'set-cookie', 'age', 'x-cache', 'date'];
/** What a 304 repeats from the stored response (RFC 9110 §15.4.5). */
const NOT_MODIFIED_FIELDS = ['cache-control', 'content-location', 'etag', 'expires', 'vary', 'last-modified'];

/** What can be injected into the cache plugin; production uses the defaults. */
export interface CacheDeps {
  /** the wall clock in epoch ms, for freshness, Age and entry expiry (default Date.now); a test moves it instead of sleeping */
  now?: () => number;
}

/**
 * A shared response cache in process memory (per worker), for GET and HEAD. Freshness from Cache-Control
 * (s-maxage, max-age), Expires, or defaultTtlMs; no-store / private / no-cache responses and Set-Cookie are
 * never stored; Vary selects among stored variants; conditional requests on a hit get 304.
 * Put it after auth in the plugin list (auth must refuse before a hit is served), and after compression to store
 * compressed variants.
 */
export function createCachePlugin(deps: CacheDeps = {}): GatewayPlugin<CacheOptions> {
  const now = deps.now ?? Date.now;
  return {
    name: 'cache',
    version: '1.0.0',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxEntries: { type: 'integer', minimum: 1, default: 1000 },
        maxBytes: { type: 'integer', minimum: 1, default: 64 * 1024 * 1024 },
        maxEntryBytes: { type: 'integer', minimum: 1, default: 1024 * 1024 },
        defaultTtlMs: { type: 'integer', minimum: 0, default: 60_000 },
        cacheAuthenticated: { type: 'boolean', default: false },
      },
    },
    init(options, api): PluginInstance {
      const maxEntry = Math.min(options.maxEntryBytes, options.maxBytes);
      const entries = new LRUCache<string, Entry>({
        max: options.maxEntries,
        maxSize: options.maxBytes,
        sizeCalculation: (e) => Math.max(1, e.body.length + 256),
        // entry ttls run on the same clock as freshness (lru-cache's default is performance.now), read at every
        // check: with the default ttlResolution lru-cache reuses one reading for 1 ms of real time
        ...(deps.now === undefined ? {} : { perf: { now: deps.now }, ttlResolution: 0 }),
      });
      /** primary key → the Vary field names its last stored response named */
      const varySpecs = new LRUCache<string, string[]>({ max: options.maxEntries });
      const hits = api.counter('cache_hits_total', 'responses served from the cache plugin');
      const misses = api.counter('cache_misses_total', 'cacheable requests not served from the cache plugin');

      const variantKey = (primaryKey: string, names: string[], req: IncomingHttpHeaders): string => {
        let key = primaryKey;
        for (const n of names) {
          const v = req[n];
          key += `\n${n}:${v === undefined ? '' : (Array.isArray(v) ? v.join(',') : v).replace(/\s+/g, ' ').trim()}`;
        }
        return key;
      };

      const primaryKeyOf = (ctx: RequestContext, authenticated: boolean): string => {
        const req = ctx.req!;
        let key = `${req.headers.host ?? ''}${ctx.url}`;
        if (authenticated) {
          // Per credential: one user's cached answer must never be served to another.
          const who = ctx.identity?.sub ?? req.headers.authorization ?? '';
          key += `\n@${createHash('sha256').update(String(who)).digest('hex')}`;
        }
        return key;
      };

      const store = (state: MissState, status: number, headers: OutgoingHttpHeaders, body: Buffer, resVary: unknown): void => {
        const storedAt = now();
        const ttl = freshnessMs(headers, options.defaultTtlMs, storedAt);
        if (ttl === null) return;
        const names = [...new Set([...headerTokens(headers.vary as string | undefined), ...headerTokens(resVary as string | undefined)])];
        if (names.includes('*')) return;
        const kept: OutgoingHttpHeaders = {};
        for (const k in headers) if (!UNSTORED.includes(k)) kept[k] = headers[k];
        kept['content-length'] = String(body.length);
        names.sort();
        varySpecs.set(state.primaryKey, names);
        const etag = headers.etag === undefined ? undefined : String(headers.etag);
        const lastModified = headers['last-modified'] === undefined ? undefined : String(headers['last-modified']);
        entries.set(variantKey(state.primaryKey, names, state.request), { status, headers: kept, body, storedAt, etag, lastModified }, { ttl });
      };

      return {
        preHandler(ctx: RequestContext): void {
          if (ctx.res === null) return;
          const method = ctx.method;
          const req = ctx.req!;
          const authenticated = ctx.identity !== null || req.headers.authorization !== undefined;
          if (method !== 'GET' && method !== 'HEAD') {
            // An unsafe method invalidates what we hold for the same URL (RFC 9111 §4.4).
            if (method !== 'OPTIONS' && method !== 'TRACE') varySpecs.delete(primaryKeyOf(ctx, authenticated && options.cacheAuthenticated));
            return;
          }
          if (authenticated && !options.cacheAuthenticated) return;
          const reqCc = parseCacheControl(req.headers['cache-control']);
          if (reqCc.has('no-store')) return;
          const primaryKey = primaryKeyOf(ctx, authenticated);
          const skipLookup = reqCc.has('no-cache') || reqCc.get('max-age') === '0' || req.headers.pragma === 'no-cache';
          if (!skipLookup) {
            const names = varySpecs.get(primaryKey);
            const entry = names === undefined ? undefined : entries.get(variantKey(primaryKey, names, req.headers));
            if (entry !== undefined) {
              hits.inc();
              serve(ctx, entry, now());
              return;
            }
          }
          misses.inc();
          ctx.set(STATE, { primaryKey, request: req.headers, store: method === 'GET' } satisfies MissState);
        },

        postHandler(ctx: RequestContext): void {
          const state = ctx.get(STATE) as MissState | undefined;
          if (state === undefined) return;
          const h = stagedHeaders(ctx);
          h['x-cache'] = 'MISS';
          if (!state.store || ctx.statusCode !== 200 || h['set-cookie'] !== undefined) return;
          if (freshnessMs(h, options.defaultTtlMs, now()) === null) return;
          const status = ctx.statusCode;
          const resVary = ctx.res?.getHeader('vary');
          const body = ctx.body;
          if (typeof body === 'string' || Buffer.isBuffer(body)) {
            const buf = typeof body === 'string' ? Buffer.from(body) : body;
            if (buf.length <= maxEntry) store(state, status, h, buf, resVary);
            return;
          }
          if (body instanceof Readable) {
            const declared = h['content-length'] === undefined ? -1 : Number(h['content-length']);
            if (declared > maxEntry) return;
            const tee = new StoringTee(maxEntry, (buf) => store(state, status, { ...h }, buf, resVary));
            body.once('error', (err) => tee.destroy(err));
            // The client left (the server destroys ctx.body): release the upstream body too.
            tee.once('close', () => {
              if (!body.readableEnded) body.destroy();
            });
            body.pipe(tee);
            ctx.body = tee;
          }
        },
      };
    },
  };
}

export const cachePlugin = createCachePlugin();

/** Passes the body through while keeping a copy; stores it only if it ended complete and within the cap. */
class StoringTee extends Transform {
  private chunks: Buffer[] = [];
  private size = 0;
  private overflow = false;
  constructor(
    private readonly cap: number,
    private readonly onComplete: (body: Buffer) => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.overflow) {
      this.size += chunk.length;
      if (this.size > this.cap) {
        this.overflow = true;
        this.chunks = [];
      } else this.chunks.push(chunk);
    }
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (!this.overflow) this.onComplete(Buffer.concat(this.chunks, this.size));
    this.chunks = [];
    cb();
  }
}

function serve(ctx: RequestContext, entry: Entry, now: number): void {
  const req = ctx.req!;
  const age = String(Math.max(0, Math.floor((now - entry.storedAt) / 1000)));
  const inm = req.headers['if-none-match'];
  const ims = req.headers['if-modified-since'];
  const notModified = inm !== undefined ? etagMatches(inm, entry.etag) : ims !== undefined && notModifiedSince(ims, entry.lastModified);
  if (notModified) {
    const headers: OutgoingHttpHeaders = { age, 'x-cache': 'HIT' };
    for (const f of NOT_MODIFIED_FIELDS) if (entry.headers[f] !== undefined) headers[f] = entry.headers[f];
    ctx.send(304, headers, null);
    return;
  }
  ctx.send(entry.status, { ...entry.headers, age, 'x-cache': 'HIT' }, entry.body);
}

export default cachePlugin;
