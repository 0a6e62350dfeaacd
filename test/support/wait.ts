/** The suite's one sleep: for pacing what a test sends, never as a wait for something to happen (see until). */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `cond` until it returns true; throws `message` (with the last value seen, if any) when `timeoutMs`
 * passes first. The deadline is a bound on a real condition, never a stand-in for one: tests wait on what
 * they need (a state in /stats, a counted arrival, a log line), and a broken gateway fails with a clear message
 * instead of hanging.
 */
export async function until(
  cond: () => boolean | Promise<boolean>,
  opts: { timeoutMs?: number; stepMs?: number; message: string | (() => string | Promise<string>) },
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const stepMs = opts.stepMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      if (await cond()) return;
      lastError = null;
    } catch (err) {
      // A request to a server that is restarting can fail: that is "not yet", not the answer.
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await sleep(stepMs);
  }
  const text = typeof opts.message === 'string' ? opts.message : await opts.message();
  const suffix = lastError === null ? '' : ` (last attempt threw: ${(lastError as Error).message})`;
  throw new Error(`timed out after ${timeoutMs} ms: ${text}${suffix}`);
}

/** Resolves with the value once `get` returns something other than undefined; throws like until(). */
export async function eventually<T>(
  get: () => T | undefined | Promise<T | undefined>,
  opts: { timeoutMs?: number; stepMs?: number; message: string | (() => string | Promise<string>) },
): Promise<T> {
  let value: T | undefined;
  await until(async () => {
    value = await get();
    return value !== undefined;
  }, opts);
  return value!;
}
