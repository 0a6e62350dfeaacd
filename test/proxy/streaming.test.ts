import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_VARIANTS, sleep, startProxy, startUpstream, type GatewayUnderTest, type TestUpstream } from './helpers.js';

const CHUNK = 64 * 1024;
const TOTAL = 50 * 1024 * 1024;
const CHUNKS = TOTAL / CHUNK;
/** in flight between producer and consumer while the consumer is paused: socket buffers + stream HWMs, not the body */
const MAX_IN_FLIGHT = 24 * 1024 * 1024;
/**
 * Uploads cross two loopback receive buffers that Linux autotunes up to tcp_rmem's maximum (32 MiB on these
 * machines), so under a quiet machine the kernel alone can hold ~28 MiB (seen in 1 of 3 full runs). The bound
 * still fails a gateway that reads the body ahead of the upstream: it would reach the whole 50 MiB.
 */
const MAX_UPLOAD_IN_FLIGHT = 40 * 1024 * 1024;

function chunk(i: number): Buffer {
  return Buffer.alloc(CHUNK, i % 251);
}

/** Write CHUNKS chunks honouring backpressure; `progress` sees the bytes handed to the stream. */
async function produce(w: NodeJS.WritableStream, progress: (n: number) => void): Promise<void> {
  for (let i = 0; i < CHUNKS; i++) {
    const ok = w.write(chunk(i));
    progress(CHUNK);
    if (!ok) await new Promise<void>((r) => w.once('drain', () => r()));
  }
}

/** Consume, verifying content; pauses for `pauseMs` once `pauseAt` bytes arrived and reports the gap then. */
function consume(
  r: NodeJS.ReadableStream & { pause(): void; resume(): void },
  pauseAt: number,
  pauseMs: number,
  gapAtPause: () => number,
): Promise<{ bytes: number; ok: boolean; gap: number }> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    let ok = true;
    let paused = false;
    let gap = -1;
    r.on('data', (c: Buffer) => {
      for (let off = 0; off < c.length; off += 4096) {
        const pos = bytes + off;
        if (c[off] !== Math.floor(pos / CHUNK) % 251) ok = false;
      }
      bytes += c.length;
      if (!paused && bytes >= pauseAt) {
        paused = true;
        r.pause();
        setTimeout(() => {
          gap = gapAtPause();
          r.resume();
        }, pauseMs);
      }
    });
    r.on('end', () => resolve({ bytes, ok, gap }));
    r.on('error', reject);
  });
}

describe.each(CLIENT_VARIANTS)('streaming 50 MB with backpressure (%s client)', (variant) => {
  let up: TestUpstream;
  let gw: GatewayUnderTest;
  let upstreamWritten = 0;
  let upstreamRead = 0;

  beforeAll(async () => {
    up = await startUpstream('stream', (req, res) => {
      if (req.url!.startsWith('/download')) {
        upstreamWritten = 0;
        const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/octet-stream' };
        if (req.url === '/download/cl') headers['content-length'] = TOTAL;
        res.writeHead(200, headers);
        void produce(res, (n) => (upstreamWritten += n)).then(() => res.end());
        return;
      }
      upstreamRead = 0;
      void consume(req, 1024 * 1024, 400, () => 0).then((r) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ ...r, te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null }));
      });
      req.on('data', (c: Buffer) => (upstreamRead += c.length));
    });
    gw = await startProxy(variant, { svc: { targets: [up.url] } }, [{ path: '/*', upstream: 'svc' }]);
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
  });

  for (const mode of ['cl', 'chunked']) {
    it(`download (${mode}) is streamed: a paused client stalls the upstream`, async () => {
      const u = new URL(gw.url);
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get({ hostname: u.hostname, port: u.port, path: `/download/${mode}`, agent: false }, resolve).on('error', reject);
      });
      expect(res.statusCode).toBe(200);
      if (mode === 'cl') expect(res.headers['content-length']).toBe(String(TOTAL));
      let received = 0;
      res.on('data', (c: Buffer) => (received += c.length));
      const result = await consume(res, 1024 * 1024, 500, () => upstreamWritten - received);
      expect(result.ok).toBe(true);
      expect(result.bytes).toBe(TOTAL);
      expect(result.gap).toBeGreaterThanOrEqual(0);
      expect(result.gap).toBeLessThan(MAX_IN_FLIGHT);
    });
  }

  for (const mode of ['cl', 'chunked']) {
    it(`upload (${mode}) is streamed: a paused upstream stalls the client`, async () => {
      const u = new URL(gw.url);
      const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/octet-stream' };
      if (mode === 'cl') headers['content-length'] = TOTAL;
      let sent = 0;
      let maxGap = 0;
      const req = http.request({ hostname: u.hostname, port: u.port, path: '/upload', method: 'POST', headers, agent: false });
      const response = new Promise<http.IncomingMessage>((resolve, reject) => {
        req.on('response', resolve);
        req.on('error', reject);
      });
      await produce(req, (n) => {
        sent += n;
        if (sent - upstreamRead > maxGap) maxGap = sent - upstreamRead;
      });
      req.end();
      const res = await response;
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { bytes: number; ok: boolean; te: string | null; cl: string | null };
      expect(res.statusCode).toBe(200);
      expect(body.ok).toBe(true);
      expect(body.bytes).toBe(TOTAL);
      if (mode === 'cl') expect(body.cl).toBe(String(TOTAL));
      else expect(body.te).toBe('chunked');
      expect(maxGap).toBeLessThan(MAX_UPLOAD_IN_FLIGHT);
      await sleep(0);
    });
  }
});
