import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** The `redis` options block every Redis-backed plugin store takes (rate-limit, cache). */
export interface RedisConnectionOptions {
  url: string;
  keyPrefix: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

/** Its JSON Schema, with the key prefix default given per plugin (two plugins must not share keys by accident). */
export function redisOptionsSchema(defaultKeyPrefix: string): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: {
      url: { type: 'string', pattern: '^rediss?://' },
      keyPrefix: { type: 'string', default: defaultKeyPrefix },
      connectTimeoutMs: { type: 'integer', minimum: 1, default: 1_000 },
      commandTimeoutMs: { type: 'integer', minimum: 1, default: 500 },
    },
  };
}

/** Reconnect backoff after a lost Redis connection: 50 ms doubling per attempt, capped at 2 s. */
const RECONNECT_BASE_MS = 50;
const RECONNECT_MAX_MS = 2_000;
/** At most one connection-error log line per this interval (a down Redis errors on every reconnect attempt). */
const ERROR_LOG_INTERVAL_MS = 5_000;

/**
 * A client built never to wait long or pile up work while Redis is away: no offline queue, no per-command
 * retries, a short connect and command timeout — a command fails fast and the plugin applies its own failure
 * rule (fail open/closed, a cache miss), while the client keeps reconnecting in the background with backoff.
 * `what` names the user in the log line ("rate-limit", "cache").
 */
export function createRedisClient(opts: RedisConnectionOptions, logger: Logger, what: string): Redis {
  const client = new Redis(opts.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: opts.connectTimeoutMs,
    commandTimeout: opts.commandTimeoutMs,
    retryStrategy: (times: number) => Math.min(RECONNECT_BASE_MS * 2 ** Math.min(times, 6), RECONNECT_MAX_MS),
    // reconnect on READONLY (failover) rather than fail every command
    reconnectOnError: (err: Error) => err.message.startsWith('READONLY'),
  });
  let lastErrorLog = 0;
  // An 'error' listener is mandatory: without one ioredis' connection errors would crash the process.
  client.on('error', (err: Error) => {
    const now = Date.now();
    if (now - lastErrorLog > ERROR_LOG_INTERVAL_MS) {
      lastErrorLog = now;
      logger.warn({ err: err.message, url: redactUrl(opts.url) }, `${what} redis connection error`);
    }
  });
  return client;
}

/** Connect, waiting at most the connect timeout; failure is not fatal (the client keeps retrying). */
export async function connectRedis(client: Redis): Promise<void> {
  try {
    await client.connect();
  } catch {
    /* logged by the error listener; the retry strategy keeps trying */
  }
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
