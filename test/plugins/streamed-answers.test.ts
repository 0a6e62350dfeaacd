import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { brotliCompressSync, constants, createBrotliDecompress, createGunzip, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { gatewayFor } from './helpers.js';

/**
 * An answer the upstream sends in pieces over time (Server-Sent Events, NDJSON, a slow download) reaches the client
 * piece by piece whichever body-touching plugin the route runs. The upstream writes a piece every 250 ms and, before
 * it writes the next, checks that the client has already decoded the previous one: event-based, so a loaded machine
 * only makes the check more lenient, never flaky.
 */
const PIECES = 4;
const INTERVAL_MS = 250;

/** Per request tag: when the upstream wrote each piece, and when the client had decoded it (performance.now()). */
const writtenAt = new Map<string, number[]>();
const seenAt = new Map<string, number[]>();

const SHAPES: Record<string, { headers: OutgoingHttpHeaders; piece: (i: number) => string; knownLength?: boolean }> = {
  sse: {
    headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
    piece: (i) => `id: ${i}\ndata: {"tick":${i},"pad":"${'p'.repeat(40)}"}\n\n`,
  },
  ndjson: { headers: { 'content-type': 'application/x-ndjson', 'cache-control': 'max-age=60' }, piece: (i) => `{"row":${i},"pad":"${'r'.repeat(40)}"}\n` },
  // a slow download with a Content-Length: buffered is fine by default, but the upstream says otherwise
  'no-buffering': {
    headers: { 'content-type': 'text/plain', 'x-accel-buffering': 'no', 'cache-control': 'max-age=60' },
    piece: (i) => `line ${i} ${'l'.repeat(1000)}\n`,
    knownLength: true,
  },
};

function streamPieces(req: IncomingMessage, res: http.ServerResponse, shape: string): void {
  const tag = String(req.headers['x-tag']);
  const { headers, piece, knownLength } = SHAPES[shape]!;
  const all = Array.from({ length: PIECES }, (_, i) => piece(i));
  res.writeHead(200, knownLength === true ? { ...headers, 'content-length': Buffer.byteLength(all.join('')) } : headers);
  const written: number[] = [];
  writtenAt.set(tag, written);
  const write = (): void => {
    written.push(performance.now());
    res.write(all[written.length - 1]);
    if (written.length === PIECES) res.end();
    else setTimeout(write, INTERVAL_MS);
  };
  write();
}

/** GET through the gateway, decoding what the gateway's Content-Encoding says, noting when each piece was decoded. */
function fetchStreamed(url: string, tag: string, acceptEncoding: string, pieces: string[]): Promise<{ headers: http.IncomingHttpHeaders; text: string }> {
  const seen: number[] = [];
  seenAt.set(tag, seen);
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { 'accept-encoding': acceptEncoding, 'x-tag': tag }, agent: false }, (res) => {
      const enc = res.headers['content-encoding'];
      const stream: Readable = enc === 'gzip' ? res.pipe(createGunzip()) : enc === 'br' ? res.pipe(createBrotliDecompress()) : res;
      let text = '';
      stream.on('data', (c: Buffer) => {
        text += c.toString();
        while (seen.length < pieces.length && text.includes(pieces[seen.length]!)) seen.push(performance.now());
      });
      stream.on('end', () => resolve({ headers: res.headers, text }));
      stream.on('error', reject);
    });
    req.on('error', reject);
  });
}

let up: RecordingUpstream;
const BIG = JSON.stringify({ items: Array.from({ length: 6000 }, (_, i) => ({ id: i, name: `item-${i}`, tags: ['a', 'b', String(i % 7)] })) });

beforeAll(async () => {
  up = await startUpstream('up', (req, res) => {
    const shape = req.url!.split('/')[2]!;
    if (shape in SHAPES) return streamPieces(req, res, shape);
    // an ordinary download: a Content-Length, delivered in pieces that arrive in separate turns
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BIG), 'cache-control': 'max-age=60' });
    let at = 0;
    const next = (): void => {
      if (at >= BIG.length) return void res.end();
      res.write(BIG.slice(at, (at += 16 * 1024)));
      setImmediate(next);
    };
    next();
  });
});
afterAll(() => up?.close());

const PLUGIN_SETS: Record<string, { plugins: Array<Record<string, unknown>>; accept: string }> = {
  'compression (gzip)': { plugins: [{ name: 'compression', options: { encodings: ['gzip'], thresholdBytes: 10 } }], accept: 'gzip' },
  'compression (br)': { plugins: [{ name: 'compression', options: { encodings: ['br'], thresholdBytes: 10 } }], accept: 'br' },
  cache: { plugins: [{ name: 'cache' }], accept: 'identity' },
  'compression then cache': {
    plugins: [{ name: 'compression', options: { encodings: ['gzip'], thresholdBytes: 10 } }, { name: 'cache' }],
    accept: 'gzip',
  },
};

describe.each(Object.keys(PLUGIN_SETS))('a streamed answer through %s', (set) => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await gatewayFor({
      upstreams: { up: { targets: [up.url] } },
      routes: [{ path: '/*', methods: ['GET'], upstream: 'up', plugins: PLUGIN_SETS[set]!.plugins }],
    });
  });
  afterAll(() => gw?.close());

  it.each(Object.keys(SHAPES))('%s: each piece reaches the client before the upstream writes the next', async (shape) => {
    const tag = `${set}/${shape}`;
    const want = Array.from({ length: PIECES }, (_, i) => SHAPES[shape]!.piece(i));
    const { headers, text } = await fetchStreamed(`${gw.url}/s/${shape}/${encodeURIComponent(set)}`, tag, PLUGIN_SETS[set]!.accept, want);
    expect(text).toBe(want.join(''));
    const written = writtenAt.get(tag)!;
    const seen = seenAt.get(tag)!;
    // piece i decoded before piece i + 1 was written (250 ms later); the lags are in the message for a failure
    const lags = seen.map((t, i) => Math.round(t - written[i]!));
    for (let i = 0; i + 1 < PIECES; i++) expect(seen[i]!, `ms from write to client per piece: ${String(lags)}`).toBeLessThan(written[i + 1]!);
    // an instruction to us, not to the client (nginx does not pass it on either)
    expect(headers['x-accel-buffering']).toBeUndefined();
    if (set.startsWith('compression')) expect(headers['content-encoding']).toBe(PLUGIN_SETS[set]!.accept);
  });
});

describe('an ordinary (Content-Length) body keeps its compression ratio', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await gatewayFor({
      upstreams: { up: { targets: [up.url] } },
      routes: [
        { path: '/gzip/*', methods: ['GET'], upstream: 'up', plugins: [{ name: 'compression', options: { encodings: ['gzip'] } }] },
        { path: '/br/*', methods: ['GET'], upstream: 'up', plugins: [{ name: 'compression', options: { encodings: ['br'] } }] },
      ],
    });
  });
  afterAll(() => gw?.close());

  const compressedSize = (url: string, enc: string): Promise<number> =>
    new Promise((resolve, reject) => {
      http
        .get(url, { headers: { 'accept-encoding': enc }, agent: false }, (res) => {
          expect(res.headers['content-encoding']).toBe(enc);
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(n));
        })
        .on('error', reject);
    });

  it('gzip: byte for byte the size of one unflushed deflate of the whole body', async () => {
    expect(await compressedSize(`${gw.url}/gzip/big`, 'gzip')).toBe(gzipSync(BIG, { level: 6 }).length);
  });

  it('br: byte for byte the size of one unflushed brotli of the whole body', async () => {
    const size = Buffer.byteLength(BIG);
    const want = brotliCompressSync(BIG, { params: { [constants.BROTLI_PARAM_QUALITY]: 4, [constants.BROTLI_PARAM_SIZE_HINT]: size } }).length;
    expect(await compressedSize(`${gw.url}/br/big`, 'br')).toBe(want);
  });
});
