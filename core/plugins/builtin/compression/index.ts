import { Readable } from 'node:stream';
import { brotliCompressSync, constants, createBrotliCompress, createGzip, gzipSync, type BrotliCompress, type Gzip } from 'node:zlib';
import type { RequestContext } from '../../../data/context.js';
import type { GatewayPlugin, PluginInstance } from '../../types.js';
import { addVary, stagedHeaders } from '../shared/headers.js';
import { negotiateEncoding } from './negotiate.js';

export interface CompressionOptions {
  /** bodies smaller than this (when the size is known) are sent as they are */
  thresholdBytes: number;
  /** offered encodings in preference order */
  encodings: Array<'br' | 'gzip'>;
  /** gzip level 1-9 */
  gzipLevel: number;
  /** brotli quality 0-11; on-the-fly compression wants a low one (11 costs ~100× the CPU of 4) */
  brotliQuality: number;
}

/**
 * Bodies already in memory up to this size are compressed in one synchronous call: for small bodies a zlib
 * stream's setup and thread-pool round trip cost several times the compression itself. Larger ones stream.
 */
const ONE_SHOT_MAX = 64 * 1024;

/** Types whose bytes are already compressed: recompressing costs CPU and usually grows them. */
// application/grpc: gRPC compresses per message (grpc-encoding); an HTTP content-encoding would break its framing
const INCOMPRESSIBLE =
  /^(?:image\/(?!svg\+xml|x-icon|bmp)|video\/|audio\/|font\/woff2?|application\/(?:zip|gzip|x-gzip|x-bzip2|x-xz|x-7z-compressed|x-rar-compressed|zstd|octet-stream|pdf|wasm|vnd\.rar|grpc))/i;

/**
 * Response compression (gzip, brotli) negotiated by Accept-Encoding q-values, streaming through zlib. Skips
 * HEAD, 1xx/204/304, bodies already encoded, incompressible types and bodies known to be under the threshold.
 * Every compressible response carries `Vary: Accept-Encoding` (whether or not this client got it compressed).
 *
 * A streamed answer (a body of unknown length: chunked, Server-Sent Events, NDJSON; or any body the upstream sent
 * with `X-Accel-Buffering: no`) is flushed through zlib each time a piece arrives, so the client gets every piece
 * when the upstream sends it instead of once zlib's buffer fills. A body with a Content-Length is compressed
 * without flushes: it is a download, not a conversation, and every flush costs ratio.
 */
export const compressionPlugin: GatewayPlugin<CompressionOptions> = {
  name: 'compression',
  version: '1.0.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      thresholdBytes: { type: 'integer', minimum: 0, default: 1024 },
      encodings: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: ['br', 'gzip'] }, default: ['br', 'gzip'] },
      gzipLevel: { type: 'integer', minimum: 1, maximum: 9, default: 6 },
      brotliQuality: { type: 'integer', minimum: 0, maximum: 11, default: 4 },
    },
  },
  init(options, api): PluginInstance {
    const compressed = api.counter('compression_responses_total', 'responses compressed by the compression plugin');
    const makeStream = (enc: string, sizeHint: number): Gzip | BrotliCompress =>
      enc === 'br'
        ? createBrotliCompress({
            params: {
              [constants.BROTLI_PARAM_QUALITY]: options.brotliQuality,
              ...(sizeHint > 0 ? { [constants.BROTLI_PARAM_SIZE_HINT]: sizeHint } : {}),
            },
          })
        : createGzip({ level: options.gzipLevel });

    return {
      postHandler(ctx: RequestContext): void {
        const body = ctx.body;
        const status = ctx.statusCode;
        if (body === null || ctx.res === null || ctx.method === 'HEAD' || status < 200 || status === 204 || status === 304) return;
        const h = stagedHeaders(ctx);
        if (h['content-encoding'] !== undefined && String(h['content-encoding']).toLowerCase() !== 'identity') return;
        const type = h['content-type'];
        if (type !== undefined && INCOMPRESSIBLE.test(String(type))) return;
        if (/\bno-transform\b/i.test(String(h['cache-control'] ?? ''))) return;
        let size = -1;
        if (typeof body === 'string') size = Buffer.byteLength(body);
        else if (Buffer.isBuffer(body)) size = body.length;
        else if (h['content-length'] !== undefined) size = Number(h['content-length']);
        if (size >= 0 && size < options.thresholdBytes) return;

        addVary(ctx, 'Accept-Encoding');
        if (h.vary === undefined && ctx.res.getHeader('vary') !== undefined) h.vary = ctx.res.getHeader('vary') as string;
        const ae = ctx.req!.headers['accept-encoding'];
        const enc = negotiateEncoding(ae, options.encodings);
        if (enc === null) return;

        if (!(body instanceof Readable) && size <= ONE_SHOT_MAX) {
          const out = enc === 'br' ? brotliCompressSync(body, brotliOneShot(options.brotliQuality, size)) : gzipSync(body, { level: options.gzipLevel });
          ctx.body = out;
          h['content-length'] = String(out.length);
          h['content-encoding'] = enc;
          weakenEtag(h);
          compressed.inc();
          return;
        }
        const z = makeStream(enc, size);
        if (body instanceof Readable) {
          // If the client leaves, the server destroys ctx.body (z); propagate to the source so its socket frees.
          z.once('close', () => {
            if (!body.readableEnded) body.destroy();
          });
          body.once('error', (err) => z.destroy(err));
          if (size < 0 || ctx.unbuffered) flushEachPiece(body, z, enc === 'br' ? constants.BROTLI_OPERATION_FLUSH : constants.Z_SYNC_FLUSH);
          body.pipe(z);
        } else {
          z.end(body);
        }
        ctx.body = z;
        delete h['content-length'];
        h['content-encoding'] = enc;
        weakenEtag(h);
        compressed.inc();
      },
    };
  },
};

/**
 * Flushes `z` once after the pieces of `body` that arrived in one event-loop turn: what the upstream sent
 * together stays compressed together (a burst costs one flush, not one per TCP read), and a piece sent alone
 * leaves zlib at once. A sync flush keeps the dictionary, so the ratio lost is a few bytes per flush.
 */
function flushEachPiece(body: Readable, z: Gzip | BrotliCompress, kind: number): void {
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (!z.destroyed && !z.writableEnded) z.flush(kind);
  };
  // setImmediate, not nextTick: the flush must come after pipe() has written this turn's pieces into z
  body.on('data', () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  });
}

function brotliOneShot(quality: number, size: number): { params: Record<number, number> } {
  return { params: { [constants.BROTLI_PARAM_QUALITY]: quality, [constants.BROTLI_PARAM_SIZE_HINT]: size } };
}

/** Another representation: a strong validator of the identity bytes no longer matches these. */
function weakenEtag(h: import('node:http').OutgoingHttpHeaders): void {
  const etag = h.etag;
  if (typeof etag === 'string' && !etag.startsWith('W/')) h.etag = `W/${etag}`;
}

export default compressionPlugin;
