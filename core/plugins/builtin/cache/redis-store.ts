import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { connectRedis, createRedisClient, type RedisConnectionOptions } from '../shared/redis.js';
import { retentionMs, variantKey, type CachedResponse } from './entry.js';
import type { MemoryLimits } from './memory-store.js';
import type { CacheStore } from './store.js';

/** Keys are hashes of the cache keys: URLs can be long, and credentials (per-user keys) must not sit in Redis. */
function digest(s: string): string {
  return createHash('sha256').update(s).digest('base64url');
}

/** An entry's metadata as stored: everything but the body, plus the id naming its body key. */
type StoredMeta = Omit<CachedResponse, 'body'> & { id: string };

/**
 * Adds a variant to its primary key's set and keeps the set alive as long as its longest-lived variant (a set
 * that expired first would let an invalidation miss the variants it no longer names).
 */
const ADD_VARIANT = `
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`;

/** Deletes the metadata of every variant named in the set (their bodies become unreachable), then spec and set. */
const INVALIDATE = `
for _, v in ipairs(redis.call('SMEMBERS', KEYS[2])) do redis.call('DEL', ARGV[1] .. v) end
return redis.call('DEL', KEYS[1], KEYS[2])`;

/** Per-entry bookkeeping counted against maxBytes besides the body. */
const COPY_OVERHEAD_BYTES = 64;

/**
 * Responses in Redis, shared by every gateway instance using the same server and keyPrefix. Per primary key:
 * `<prefix>v:<hash>` holds the Vary field names (JSON) and `<prefix>s:<hash>` the set of its variants' hashes (what
 * an invalidation deletes: every variant, RFC 9111 §4.4); per variant, `<prefix>m:<hash>` the metadata (JSON, with
 * a random id) and `<prefix>b:<hash>:<id>` the body as binary (written with SET, read with getBuffer: no base64).
 * Every key has a PX TTL of the entry's retention (freshness + stale windows), so Redis forgets what no one may
 * serve. A body key is never rewritten (a new version gets a new id), so metadata always names its own body.
 *
 * Each process keeps a bounded copy of bodies it has read, by id: a lookup reads the small keys (one pipelined
 * round trip without Vary) and fetches the body only when its id is not held. Correctness does not depend on the
 * copy: the metadata, read on every lookup, names the one body to serve. Measured in docs/plugins.md: reading a
 * 100 KB body from Redis on every hit cost more gateway CPU than proxying it from a loopback upstream.
 * Fails fast while Redis is away (shared/redis.ts): the plugin turns the rejection into a miss.
 */
export class RedisCacheStore implements CacheStore {
  private readonly client: Redis;
  private readonly prefix: string;
  private readonly copies: LRUCache<string, Buffer>;

  constructor(opts: RedisConnectionOptions, limits: MemoryLimits, logger: Logger) {
    this.client = createRedisClient(opts, logger, 'cache');
    this.prefix = opts.keyPrefix;
    this.copies = new LRUCache<string, Buffer>({
      max: limits.maxEntries,
      maxSize: limits.maxBytes,
      sizeCalculation: (b) => Math.max(1, b.length + COPY_OVERHEAD_BYTES),
    });
  }

  connect(): Promise<void> {
    return connectRedis(this.client);
  }

  private specKey(primaryKey: string): string {
    return `${this.prefix}v:${digest(primaryKey)}`;
  }

  private variantsKey(primaryKey: string): string {
    return `${this.prefix}s:${digest(primaryKey)}`;
  }

  private metaKey(variant: string): string {
    return `${this.prefix}m:${digest(variant)}`;
  }

  private bodyKey(variant: string, id: string): string {
    return `${this.prefix}b:${digest(variant)}:${id}`;
  }

  async lookup(primaryKey: string, request: IncomingHttpHeaders): Promise<CachedResponse | undefined> {
    // Without Vary the variant key is the primary key: its metadata comes in the same round trip as the spec.
    const results = await this.client.pipeline().get(this.specKey(primaryKey)).get(this.metaKey(primaryKey)).exec();
    if (results === null) throw new Error('redis pipeline aborted');
    const [specR, plainR] = results as [[Error | null, string | null], [Error | null, string | null]];
    if (specR[0] !== null) throw specR[0];
    if (specR[1] === null) return undefined;
    const names = JSON.parse(specR[1]) as string[];
    let variant = primaryKey;
    let metaJson: string | null;
    if (names.length === 0) {
      if (plainR[0] !== null) throw plainR[0];
      metaJson = plainR[1];
    } else {
      variant = variantKey(primaryKey, names, request);
      metaJson = await this.client.get(this.metaKey(variant));
    }
    if (metaJson === null) return undefined;
    const meta = parseMeta(metaJson);
    if (meta === undefined) return undefined;
    let body = this.copies.get(meta.id);
    if (body === undefined) {
      const fetched = await this.client.getBuffer(this.bodyKey(variant, meta.id));
      if (fetched === null) return undefined;
      body = fetched;
      this.copies.set(meta.id, body, { ttl: Math.max(1, retentionMs(meta)) });
    }
    const { id: _id, ...rest } = meta;
    return { ...rest, body };
  }

  async save(primaryKey: string, varyNames: string[], request: IncomingHttpHeaders, entry: CachedResponse): Promise<void> {
    const ttl = Math.max(1, Math.ceil(retentionMs(entry)));
    const variant = variantKey(primaryKey, varyNames, request);
    const id = randomBytes(9).toString('base64url');
    const { body, ...rest } = entry;
    const meta: StoredMeta = { ...rest, id };
    // the body first: metadata must never name a body that is not there yet
    const results = await this.client
      .pipeline()
      .set(this.bodyKey(variant, id), body, 'PX', ttl)
      .set(this.metaKey(variant), JSON.stringify(meta), 'PX', ttl)
      .set(this.specKey(primaryKey), JSON.stringify(varyNames), 'PX', ttl)
      .eval(ADD_VARIANT, 1, this.variantsKey(primaryKey), digest(variant), ttl)
      .exec();
    const failed = results?.find(([err]) => err !== null);
    if (failed !== undefined) throw failed[0]!;
    this.copies.set(id, body, { ttl });
  }

  async invalidate(primaryKey: string): Promise<void> {
    await this.client.eval(INVALIDATE, 2, this.specKey(primaryKey), this.variantsKey(primaryKey), `${this.prefix}m:`);
  }

  close(): void {
    this.client.disconnect();
  }
}

/** Metadata back, or undefined when the value is not ours (a foreign value under our prefix is a miss, not an error). */
function parseMeta(json: string): StoredMeta | undefined {
  try {
    const m = JSON.parse(json) as StoredMeta;
    return typeof m.id === 'string' && typeof m.status === 'number' && typeof m.storedAt === 'number' ? m : undefined;
  } catch {
    return undefined;
  }
}
