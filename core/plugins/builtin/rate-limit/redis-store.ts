import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { connectRedis, createRedisClient, type RedisConnectionOptions } from '../shared/redis.js';
import type { Algorithm, Decision } from './algorithms.js';

/**
 * One atomic round trip per decision. Mirrors algorithms.ts; time comes from the Redis server (TIME), so
 * gateways on machines with skewed clocks still share one consistent limit.
 */
const TAKE_LUA = `
local key = KEYS[1]
local algo = ARGV[1]
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', key, 'a', 'b', 'c')
local a, b, c = tonumber(s[1]), tonumber(s[2]), tonumber(s[3])
if algo == 'token-bucket' then
  local rate = limit / window
  local tokens = limit
  if a ~= nil and b ~= nil then tokens = math.min(limit, a + math.max(0, now - b) * rate) end
  local allowed = 0
  if tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
  end
  local reset = math.ceil((limit - tokens) / rate)
  local retry = 0
  if allowed == 0 then retry = math.ceil((1 - tokens) / rate) end
  redis.call('HSET', key, 'a', string.format('%.17g', tokens), 'b', now)
  redis.call('PEXPIRE', key, math.max(reset, 1))
  return {allowed, math.floor(tokens), reset, retry}
end
local index = math.floor(now / window)
local elapsed = now - index * window
local prev, cur = 0, 0
if c ~= nil then
  if c == index then
    prev = a or 0
    cur = b or 0
  elseif c == index - 1 then
    prev = b or 0
  end
end
local weight = 1 - elapsed / window
local allowed = 0
if prev * weight + cur + 1 <= limit then
  allowed = 1
  cur = cur + 1
end
redis.call('HSET', key, 'a', prev, 'b', cur, 'c', index)
redis.call('PEXPIRE', key, (index + 2) * window - now)
local remaining = math.max(0, math.floor(limit - (prev * weight + cur)))
local retry = 0
if allowed == 0 then
  local room = limit - 1 - cur
  local t2 = -1
  if room >= 0 and prev > 0 then
    t2 = window * (1 - room / prev) - elapsed
    if t2 > window - elapsed then t2 = -1 end
  end
  if t2 >= 0 then
    retry = math.max(1, math.ceil(t2))
  else
    local toNext = window - elapsed
    local into = 0
    if cur > 0 then into = math.max(0, window * (1 - (limit - 1) / cur)) end
    retry = math.max(1, math.ceil(toNext + into))
  end
end
return {allowed, remaining, window - elapsed, retry}
`;

type TakeCommand = (key: string, algo: string, limit: number, windowMs: number) => Promise<[number, number, number, number]>;

export type RedisStoreOptions = RedisConnectionOptions;

/**
 * A Redis-backed store several gateway instances share. Built never to wait long or pile up work while Redis is
 * away: no offline queue, no per-command retries, a short connect and command timeout — a command fails fast and
 * the plugin applies its fail mode, while the client keeps reconnecting in the background with backoff.
 */
export class RedisStore {
  private readonly client: Redis;
  private readonly take: TakeCommand;

  constructor(
    private readonly opts: RedisStoreOptions,
    logger: Logger,
  ) {
    this.client = createRedisClient(opts, logger, 'rate-limit');
    this.client.defineCommand('gatewayRateLimitTake', { numberOfKeys: 1, lua: TAKE_LUA });
    this.take = (this.client as unknown as { gatewayRateLimitTake: TakeCommand }).gatewayRateLimitTake.bind(this.client);
  }

  /** Connect, waiting at most the connect timeout; failure is not fatal (the fail mode applies until it connects). */
  connect(): Promise<void> {
    return connectRedis(this.client);
  }

  async takeToken(ns: string, key: string, algorithm: Algorithm, limit: number, windowMs: number): Promise<Decision> {
    const [allowed, remaining, resetMs, retryAfterMs] = await this.take(`${this.opts.keyPrefix}${ns}:${key}`, algorithm, limit, windowMs);
    return { allowed: allowed === 1, limit, remaining, resetMs, retryAfterMs };
  }

  close(): void {
    this.client.disconnect();
  }
}
