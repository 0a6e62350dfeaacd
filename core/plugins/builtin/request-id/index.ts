import { randomFillSync } from 'node:crypto';
import type { RequestContext } from '../../../data/context.js';
import type { GatewayPlugin, PluginInstance } from '../../types.js';

export interface RequestIdOptions {
  /** header read from the client, set on the upstream request and echoed on the response */
  header: string;
  /**
   * a line of its own per request with the id (pino, level info). Off by default: the access log's line already
   * carries `requestId`, and two lines per request doubled the log volume; on for `logging.accessLog: false`.
   */
  log: boolean;
}

/** An incoming id is kept only when it is short and tame: it ends up in logs and upstream headers. */
const ACCEPTABLE = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/**
 * A random (version 4) UUID, the same format and entropy source as crypto.randomUUID(), built as one flat string.
 * randomUUID() concatenates 20 pieces into a rope that every later use (the header value check of setHeader,
 * hashing, the socket write) has to flatten first; writing the 36 characters into a buffer and decoding that
 * once costs about half as much per request. Random bytes come from a pool refilled 256 ids at a time, as
 * randomUUID's own cache does.
 */
const POOL_BYTES = 16 * 256;
const pool = Buffer.alloc(POOL_BYTES);
let poolOffset = POOL_BYTES;
const text = Buffer.alloc(36, 45 /* '-' */);
/** where the two hex digits of byte i go in 8-4-4-4-12 */
const HEX_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

export function randomId(): string {
  if (poolOffset === POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const o = poolOffset;
  poolOffset += 16;
  pool[o + 6] = (pool[o + 6]! & 0x0f) | 0x40; // version 4
  pool[o + 8] = (pool[o + 8]! & 0x3f) | 0x80; // RFC 4122 variant
  for (let i = 0; i < 16; i++) {
    const b = pool[o + i]!;
    const at = HEX_AT[i]!;
    text[at] = HEX_DIGITS[b >> 4]!;
    text[at + 1] = HEX_DIGITS[b & 15]!;
  }
  return text.toString('latin1', 0, 36);
}

/** State key under which the id is available to other plugins: `ctx.get('request-id')` (also `ctx.requestId`). */
export const REQUEST_ID_STATE = 'request-id';

export const requestIdPlugin: GatewayPlugin<RequestIdOptions> = {
  name: 'request-id',
  version: '1.0.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      header: { type: 'string', pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", default: 'x-request-id' },
      log: { type: 'boolean', default: false },
    },
  },
  init(options, api): PluginInstance {
    const header = options.header.toLowerCase();
    const logger = api.logger;
    // Decided once: a per-request close listener and closure for a log line the level would drop is pure cost.
    const log = options.log && logger.isLevelEnabled('info');
    // A global entry runs in preRoute and again in preHandler; a route entry with another header still runs.
    const doneKey = `${REQUEST_ID_STATE}:${header}`;
    const assign = (ctx: RequestContext): void => {
      if (ctx.get(doneKey) !== undefined) return;
      const req = ctx.req!;
      const given = req.headers[header];
      const id = typeof given === 'string' && ACCEPTABLE.test(given) ? given : randomId();
      // Vouched for: the upstream receives it whatever the client's Connection header lists.
      ctx.setUpstreamHeader(header, id);
      ctx.set(REQUEST_ID_STATE, id);
      // the access log reads it from here: a plain field, no map lookup per request
      ctx.requestId = id;
      ctx.set(doneKey, true);
      const res = ctx.res;
      if (res !== null) {
        ctx.addResponseHeader(header, id);
        if (log) {
          const method = ctx.method;
          const url = ctx.url;
          const start = ctx.startTime;
          // On the response's close, not postResponse: that one does not run for unmatched routes.
          res.once('close', () => {
            logger.info({ reqId: id, method, url, status: res.statusCode, ms: Math.round((performance.now() - start) * 1000) / 1000 }, 'request');
          });
        }
      }
    };
    // preRoute covers every request of a global entry (404s too); preHandler covers per-route entries.
    return { preRoute: assign, preHandler: assign };
  },
};

export default requestIdPlugin;
