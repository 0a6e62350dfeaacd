/**
 * The two limiting algorithms, as pure functions over a small numeric state, so the in-memory store (TypeScript)
 * and the Redis store (the Lua in redis-store.ts, which mirrors this file) decide identically.
 */
export type Algorithm = 'token-bucket' | 'sliding-window';

export interface Decision {
  allowed: boolean;
  limit: number;
  /** requests still allowed now */
  remaining: number;
  /** ms until the limit is fully restored (token bucket) or the current window ends (sliding window) */
  resetMs: number;
  /** ms until the next request would be allowed (0 when allowed) */
  retryAfterMs: number;
}

/** Mutable per-key state: token bucket uses a = tokens, b = last refill time; sliding window a = previous
 * window's count, b = current window's count, c = current window index. */
export interface KeyState {
  a: number;
  b: number;
  c: number;
  /** when this state can be forgotten (ms epoch) */
  expiresAt: number;
}

export function tokenBucket(s: KeyState | undefined, limit: number, windowMs: number, now: number): { state: KeyState; decision: Decision } {
  const rate = limit / windowMs; // tokens per ms
  let tokens = limit;
  if (s !== undefined) tokens = Math.min(limit, s.a + Math.max(0, now - s.b) * rate);
  let allowed = false;
  if (tokens >= 1) {
    tokens -= 1;
    allowed = true;
  }
  const state: KeyState = s ?? { a: 0, b: 0, c: 0, expiresAt: 0 };
  state.a = tokens;
  state.b = now;
  const resetMs = Math.ceil((limit - tokens) / rate);
  state.expiresAt = now + resetMs;
  return {
    state,
    decision: { allowed, limit, remaining: Math.floor(tokens), resetMs, retryAfterMs: allowed ? 0 : Math.ceil((1 - tokens) / rate) },
  };
}

export function slidingWindow(s: KeyState | undefined, limit: number, windowMs: number, now: number): { state: KeyState; decision: Decision } {
  const index = Math.floor(now / windowMs);
  const elapsed = now - index * windowMs;
  let prev = 0;
  let cur = 0;
  if (s !== undefined) {
    if (s.c === index) {
      prev = s.a;
      cur = s.b;
    } else if (s.c === index - 1) prev = s.b;
  }
  const weight = 1 - elapsed / windowMs;
  const estimate = prev * weight + cur;
  const allowed = estimate + 1 <= limit;
  if (allowed) cur += 1;
  const state: KeyState = s ?? { a: 0, b: 0, c: 0, expiresAt: 0 };
  state.a = prev;
  state.b = cur;
  state.c = index;
  state.expiresAt = (index + 2) * windowMs;
  const used = prev * weight + cur;
  return {
    state,
    decision: {
      allowed,
      limit,
      remaining: Math.max(0, Math.floor(limit - used)),
      resetMs: windowMs - elapsed,
      retryAfterMs: allowed ? 0 : slidingRetryAfter(prev, cur, limit, windowMs, elapsed),
    },
  };
}

/** Smallest wait after which prev·weight + cur + 1 ≤ limit (the previous window's share decays linearly). */
function slidingRetryAfter(prev: number, cur: number, limit: number, windowMs: number, elapsed: number): number {
  const room = limit - 1 - cur;
  if (room >= 0 && prev > 0) {
    const t = windowMs * (1 - room / prev) - elapsed;
    if (t <= windowMs - elapsed) return Math.max(1, Math.ceil(t));
  }
  // Wait for the next window, where this window's count becomes the decaying "previous" one.
  const toNext = windowMs - elapsed;
  if (cur <= 0) return Math.max(1, Math.ceil(toNext));
  const into = windowMs * (1 - (limit - 1) / cur);
  return Math.max(1, Math.ceil(toNext + Math.max(0, into)));
}

export function decide(algorithm: Algorithm, s: KeyState | undefined, limit: number, windowMs: number, now: number): { state: KeyState; decision: Decision } {
  return algorithm === 'token-bucket' ? tokenBucket(s, limit, windowMs, now) : slidingWindow(s, limit, windowMs, now);
}
