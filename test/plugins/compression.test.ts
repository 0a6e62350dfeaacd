import http from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { negotiateEncoding } from '../../core/plugins/builtin/compression/negotiate.js';
import { request } from '../support/http.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { gatewayFor } from './helpers.js';

let gw: RunningGateway;
let up: RecordingUpstream;
const BIG = JSON.stringify({ items: Array.from({ length: 400 }, (_, i) => ({ id: i, name: `item-${i}` })) });

beforeAll(async () => {
  up = await startUpstream('up', (req, res) => {
    if (req.url === '/stream') {
      // chunked, no content-length: must be compressed as a stream
      res.writeHead(200, { 'content-type': 'application/json', etag: '"v1"' });
      let i = 0;
      const tick = (): void => {
        if (i++ < 5) {
          res.write(BIG.slice(0, 2000));
          setImmediate(tick);
        } else res.end();
      };
      tick();
      return;
    }
    if (req.url === '/png') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(BIG.length) });
      res.end(BIG);
      return;
    }
    if (req.url === '/small') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' });
      res.end('small');
      return;
    }
    if (req.url === '/nocontent') {
      res.writeHead(204);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(BIG.length) });
    res.end(BIG);
  });
  gw = await gatewayFor({
    upstreams: { up: { targets: [up.url] } },
    plugins: [{ name: 'compression', options: { thresholdBytes: 100 } }],
    routes: [
      { path: '/*', methods: ['GET', 'HEAD'], upstream: 'up' },
      { path: '/static', methods: ['GET'], response: { headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(5000) } },
      { path: '/gzip-only', methods: ['GET'], response: { body: 'y'.repeat(5000) }, plugins: [{ name: 'compression', options: { encodings: ['gzip'] } }] },
    ],
  });
});
afterAll(async () => {
  await gw.close();
  await up.close();
});

/** Raw bytes (the shared helper decodes bodies as strings). */
function getRaw(url: string, headers: Record<string, string>, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('compression', () => {
  it('negotiates with q-values and our preference on ties', () => {
    expect(negotiateEncoding('gzip, br', ['br', 'gzip'])).toBe('br');
    expect(negotiateEncoding('gzip;q=1, br;q=0.5', ['br', 'gzip'])).toBe('gzip');
    expect(negotiateEncoding('br;q=0, *;q=0.1', ['br', 'gzip'])).toBe('gzip');
    expect(negotiateEncoding('identity', ['br', 'gzip'])).toBeNull();
    expect(negotiateEncoding('*', ['br', 'gzip'])).toBe('br');
    expect(negotiateEncoding('GZIP;Q=0.8', ['br', 'gzip'])).toBe('gzip');
    expect(negotiateEncoding(undefined, ['br', 'gzip'])).toBeNull();
  });

  it('brotli for a proxied body, content-length of the compressed bytes (or none), Vary set, ETag weakened', async () => {
    const r = await getRaw(`${gw.url}/data`, { 'accept-encoding': 'gzip, deflate, br' });
    expect(r.status).toBe(200);
    expect(r.headers['content-encoding']).toBe('br');
    // a body that arrived whole is compressed in one shot and sized; a streamed one goes out chunked
    if (r.headers['content-length'] !== undefined) expect(r.headers['content-length']).toBe(String(r.body.length));
    expect(r.headers.vary).toBe('Accept-Encoding');
    expect(brotliDecompressSync(r.body).toString()).toBe(BIG);
    expect(r.body.length).toBeLessThan(BIG.length / 3);
  });

  it('gzip for a chunked upstream stream', async () => {
    const r = await getRaw(`${gw.url}/stream`, { 'accept-encoding': 'gzip' });
    expect(r.headers['content-encoding']).toBe('gzip');
    expect(r.headers.etag).toBe('W/"v1"');
    expect(gunzipSync(r.body).toString()).toBe(BIG.slice(0, 2000).repeat(5));
  });

  it('identity when the client accepts nothing we offer, still with Vary', async () => {
    const r = await getRaw(`${gw.url}/data`, { 'accept-encoding': 'br;q=0, gzip;q=0' });
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.headers['content-length']).toBe(String(BIG.length));
    expect(r.headers.vary).toBe('Accept-Encoding');
    expect(r.body.toString()).toBe(BIG);
  });

  it('skips incompressible types, small bodies, HEAD and 204', async () => {
    const png = await getRaw(`${gw.url}/png`, { 'accept-encoding': 'gzip' });
    expect(png.headers['content-encoding']).toBeUndefined();
    expect(png.body.toString()).toBe(BIG);
    const small = await getRaw(`${gw.url}/small`, { 'accept-encoding': 'gzip' });
    expect(small.headers['content-encoding']).toBeUndefined();
    expect(small.body.toString()).toBe('small');
    const head = await getRaw(`${gw.url}/data`, { 'accept-encoding': 'gzip' }, 'HEAD');
    expect(head.headers['content-encoding']).toBeUndefined();
    expect(head.body.length).toBe(0);
    const empty = await getRaw(`${gw.url}/nocontent`, { 'accept-encoding': 'gzip' });
    expect(empty.status).toBe(204);
    expect(empty.headers['content-encoding']).toBeUndefined();
  });

  it('compresses static responses and honours a route-level encodings list', async () => {
    const s = await getRaw(`${gw.url}/static`, { 'accept-encoding': 'br' });
    expect(s.headers['content-encoding']).toBe('br');
    expect(brotliDecompressSync(s.body).toString()).toBe('x'.repeat(5000));
    const g = await getRaw(`${gw.url}/gzip-only`, { 'accept-encoding': 'br, gzip' });
    expect(g.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(g.body).toString()).toBe('y'.repeat(5000));
  });

  it('keep-alive connections keep working after compressed responses', async () => {
    const a = await request(`${gw.url}/small`);
    const b = await request(`${gw.url}/small`);
    expect([a.status, b.status]).toEqual([200, 200]);
  });
});
