import { afterAll, beforeAll } from 'vitest';

/**
 * Records what escapes to the process while a test file runs: unhandled rejections, and uncaught exceptions (in
 * a real worker, a crash). Listens from beforeAll to afterAll; a test asserts both lists stay empty.
 */
export function captureProcessErrors(): { unhandled: unknown[]; uncaught: unknown[] } {
  const seen = { unhandled: [] as unknown[], uncaught: [] as unknown[] };
  const onUnhandled = (reason: unknown): void => void seen.unhandled.push(reason);
  const onUncaught = (err: unknown): void => void seen.uncaught.push(err);
  beforeAll(() => {
    process.on('unhandledRejection', onUnhandled);
    // first in line: vitest's own listener would report it as a failure of whatever test runs at that moment
    process.prependListener('uncaughtException', onUncaught);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUncaught);
  });
  return seen;
}
