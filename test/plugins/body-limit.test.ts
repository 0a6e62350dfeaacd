import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { request } from '../support/http.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { sleep, until } from '../support/wait.js';
import { gatewayFor } from './helpers.js';

let gw: RunningGateway;
let up: RecordingUpstream;

beforeAll(async () => {
  // The upstream answers only once it has the whole body, as an app server would.
  up = await startUpstream('up', (req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => res.end(`got ${n}`));
  });
  gw = await gatewayFor({
    upstreams: { up: { targets: [up.url], retries: { count: 0 } } },
    plugins: [{ name: 'body-limit', options: { maxBytes: 1000 } }],
    routes: [{ path: '/up/*', methods: ['POST', 'PUT'], upstream: 'up' }],
  });
});
afterAll(async () => {
  await gw.close();
  await up.close();
});

/** Streams `chunks` chunked pieces of `size` bytes with a pause between them; resolves with the response. */
function chunkedUpload(url: string, chunks: number, size: number): Promise<{ status: number; body: string; sent: number }> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let done = false;
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        done = true;
        resolve({ status: res.statusCode!, body, sent });
      });
    });
    req.on('error', (err) => (done ? undefined : reject(err)));
    void (async () => {
      for (let i = 0; i < chunks && !done && !req.destroyed; i++) {
        req.write(Buffer.alloc(size, 97));
        sent += size;
        await sleep(10);
      }
      if (!req.destroyed) req.end();
    })();
  });
}

describe('body-limit', () => {
  it('passes bodies under the limit', async () => {
    const r = await request(`${gw.url}/up/a`, { method: 'POST', body: 'x'.repeat(1000) });
    expect(r.status).toBe(200);
    expect(r.body).toBe('got 1000');
  });

  it('refuses an oversized Content-Length with 413 before anything goes upstream', async () => {
    const before = up.received.length;
    const r = await request(`${gw.url}/up/a`, { method: 'POST', body: 'x'.repeat(1001), agent: false });
    expect(r.status).toBe(413);
    expect(r.headers.connection).toBe('close');
    expect(JSON.parse(r.body)).toEqual({ error: 'Payload Too Large', statusCode: 413 });
    expect(up.received.length).toBe(before);
  });

  it('passes a chunked body under the limit', async () => {
    const r = await chunkedUpload(`${gw.url}/up/a`, 4, 200);
    expect(r.status).toBe(200);
    expect(r.body).toBe('got 800');
  });

  it('cuts a chunked body crossing the limit: 413 to the client, upstream request aborted', async () => {
    const r = await chunkedUpload(`${gw.url}/up/b`, 50, 100);
    expect(r.status).toBe(413);
    expect(r.sent).toBeLessThan(5000);
    const rec = up.received.at(-1)!;
    expect(rec.url).toBe('/up/b');
    await until(() => rec.aborted, { timeoutMs: 5000, message: 'the upstream saw its request aborted' });
    expect(rec.bodyBytes).toBeLessThanOrEqual(1000);
  });
});
