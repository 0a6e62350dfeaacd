import { pino, type Logger } from 'pino';
import type { LoggingConfig } from '../config/types.js';

/**
 * pino: JSON lines in production (async, cheap), pino-pretty in development. Pretty printing runs in a
 * transport worker thread so it never blocks the request path either.
 */
export function createLogger(config: Pick<LoggingConfig, 'level' | 'pretty'>, bindings?: Record<string, unknown>): Logger {
  const options = { level: config.level, base: bindings ?? { pid: process.pid } };
  if (config.pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, destination: 1 } } });
  }
  return pino(options, pino.destination({ dest: 1, sync: false }));
}

export type { Logger };
