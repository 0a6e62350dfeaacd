import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { connectRedis, createRedisClient, type RedisConnectionOptions } from '../shared/redis.js';
import { decodeRecord, encodeRecord, retentionMs, variantKey, type CachedResponse } from './entry.js';
import type { CacheStore } from './store.js';

/** Keys are hashes of the cache keys: URLs can be long, and credentials (per-user keys) must not sit in Redis. */
function digest(s: string): string {
  return createHash('sha256').update(s).digest('base64url');
}

/**
 * Responses in Redis, shared by every gateway instance using the same server and keyPrefix. Two keys per
 * primary key: `<prefix><ns>:v:<hash>` holds the Vary field names (JSON), `<prefix><ns>:e:<hash of variant>`
 * one binary record per variant (entry.ts encodeRecord), both with a PX TTL of the entry's retention, so Redis
 * itself forgets what no one may serve. A lookup without Vary is one round trip (both keys pipelined).
 * Fails fast while Redis is away (shared/redis.ts): the plugin turns the rejection into a miss.
 */
export class RedisCacheStore implements CacheStore {
  private readonly client: Redis;
  private readonly prefix: string;

  constructor(opts: RedisConnectionOptions, ns: string, logger: Logger) {
    this.client = createRedisClient(opts, logger, 'cache');
    this.prefix = `${opts.keyPrefix}${ns}:`;
  }

  connect(): Promise<void> {
    return connectRedis(this.client);
  }

  private specKey(primaryKey: string): string {
    return `${this.prefix}v:${digest(primaryKey)}`;
  }

  private entryKey(variant: string): string {
    return `${this.prefix}e:${digest(variant)}`;
  }

  async lookup(primaryKey: string, request: IncomingHttpHeaders): Promise<CachedResponse | undefined> {
    const results = await this.client.pipeline().get(this.specKey(primaryKey)).getBuffer(this.entryKey(primaryKey)).exec();
    if (results === null) throw new Error('redis pipeline aborted');
    const [specR, plainR] = results as [[Error | null, string | null], [Error | null, Buffer | null]];
    if (specR[0] !== null) throw specR[0];
    if (specR[1] === null) return undefined;
    const names = JSON.parse(specR[1]) as string[];
    if (names.length === 0) {
      if (plainR[0] !== null) throw plainR[0];
      return plainR[1] === null ? undefined : decodeRecord(plainR[1]);
    }
    const buf = await this.client.getBuffer(this.entryKey(variantKey(primaryKey, names, request)));
    return buf === null ? undefined : decodeRecord(buf);
  }

  async save(primaryKey: string, varyNames: string[], request: IncomingHttpHeaders, entry: CachedResponse): Promise<void> {
    const ttl = Math.max(1, Math.ceil(retentionMs(entry)));
    const results = await this.client
      .pipeline()
      .set(this.specKey(primaryKey), JSON.stringify(varyNames), 'PX', ttl)
      .set(this.entryKey(variantKey(primaryKey, varyNames, request)), encodeRecord(entry), 'PX', ttl)
      .exec();
    const failed = results?.find(([err]) => err !== null);
    if (failed !== undefined) throw failed[0]!;
  }

  async invalidate(primaryKey: string): Promise<void> {
    await this.client.del(this.specKey(primaryKey));
  }

  close(): void {
    this.client.disconnect();
  }
}
