import type { ServerRequest, ServerResponse } from '../../../contracts/server.js';
import type { RequestContext } from '../../../data/context.js';
import type { GatewayPlugin, PluginInstance } from '../../types.js';
import { sendError } from '../shared/headers.js';

export interface BodyLimitOptions {
  maxBytes: number;
}

const STATE = 'body-limit';
const TOO_LARGE = JSON.stringify({ error: 'Payload Too Large', statusCode: 413 });

/**
 * Caps request bodies. A declared Content-Length over the cap is refused before a byte is read; a chunked (or
 * lying) body is counted as the parser pushes it into the request stream, whoever consumes it (the proxy pipes
 * ctx.req to the upstream), and the request is cut off at the first chunk over the cap: the client gets 413,
 * the upstream request is aborted because its body stream is destroyed.
 */
export const bodyLimitPlugin: GatewayPlugin<BodyLimitOptions> = {
  name: 'body-limit',
  version: '1.0.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['maxBytes'],
    properties: { maxBytes: { type: 'integer', minimum: 0 } },
  },
  init(options, api): PluginInstance {
    const max = options.maxBytes;
    const refused = api.counter('body_limit_refused_total', 'requests refused by body-limit (413)');
    return {
      preHandler(ctx: RequestContext): void {
        const req = ctx.req!;
        const cl = req.headers['content-length'];
        if (cl !== undefined) {
          if (Number(cl) > max) {
            refused.inc();
            // We will not read the body: close the connection rather than drain an oversized upload.
            sendError(ctx, 413, 'Payload Too Large', { connection: 'close' });
            return;
          }
          // Node's parser enforces Content-Length framing: a declared-small body cannot grow past it.
          return;
        }
        if (req.headers['transfer-encoding'] === undefined || ctx.res === null) return;
        monitor(ctx, req, max, () => refused.inc());
      },
      onError(ctx: RequestContext): void {
        // The proxy saw its body stream cut and reports a 502; what the client got (and the metrics) is 413.
        if (ctx.get(STATE) === true) ctx.statusCode = 413;
      },
    };
  },
};

function monitor(ctx: RequestContext, req: ServerRequest, max: number, onRefuse: () => void): void {
  const res = ctx.res!;
  let seen = 0;
  let cut = false;
  const push = req.push;
  // The HTTP parser hands each body chunk to IncomingMessage#push; counting there works for any consumer and
  // never changes the stream's flowing mode (a 'data' listener would, and would lose chunks before the proxy pipes).
  req.push = function countingPush(this: ServerRequest, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (cut) return false;
    if (chunk !== null && chunk !== undefined) {
      seen += (chunk as Buffer).length;
      if (seen > max) {
        cut = true;
        onRefuse();
        ctx.set(STATE, true);
        refuse(res, req);
        return false;
      }
    }
    return push.call(this, chunk, encoding);
  } as typeof req.push;
}

function refuse(res: ServerResponse, req: ServerRequest): void {
  const abortBody = (): void => {
    // Destroyed with an error so a consumer piping the body (the proxy's upstream request) aborts rather than
    // waits; the listener keeps that error from being unhandled when nobody else reads the body.
    req.on('error', ignore);
    req.destroy(new BodyTooLargeError());
  };
  if (res.headersSent || res.destroyed) {
    abortBody();
    return;
  }
  res.writeHead(413, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(TOO_LARGE.length), connection: 'close' });
  // Destroying the request also destroys the socket: only after the 413 has been flushed.
  res.end(TOO_LARGE, abortBody);
}

class BodyTooLargeError extends Error {
  readonly statusCode = 413;
  constructor() {
    super('request body over the limit');
    this.name = 'BodyTooLargeError';
  }
}

function ignore(): void {}

export default bodyLimitPlugin;
