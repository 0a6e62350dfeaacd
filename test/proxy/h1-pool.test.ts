import http from 'node:http';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { UpstreamClient, UpstreamRequestOptions, UpstreamResponse } from '../../core/contracts/upstream.js';
import { createUpstreamClient } from '../../variants/upstream/h1/index.js';
import { until } from '../support/wait.js';
import { sleep, startRawServer, startUpstream, type TestUpstream } from './helpers.js';

/** The h1 client's own pool behaviour, driven directly against real upstreams on 127.0.0.1. */

const running: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.close();
});

function client(url: string, o: Partial<{ maxSockets: number; maxIdleSockets: number; idleMs: number; connectTimeoutMs: number }> = {}): UpstreamClient {
  const c = createUpstreamClient(new URL(url), { connectTimeoutMs: 1000, maxSockets: 8, maxIdleSockets: 8, idleMs: 10_000, ...o });
  running.push(c);
  return c;
}

function opts(path: string, extra: Partial<UpstreamRequestOptions> = {}): UpstreamRequestOptions {
  return { method: 'GET', path, headers: { host: 'test' }, body: null, headersTimeoutMs: 2000, idleTimeoutMs: 2000, abort: null, ...extra };
}

async function text(r: UpstreamResponse): Promise<string> {
  if (Buffer.isBuffer(r.body)) return r.body.toString();
  const chunks: Buffer[] = [];
  for await (const c of r.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

async function upstream(
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void,
  configure?: (s: http.Server) => void,
): Promise<TestUpstream & { sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const up = await startUpstream('h1', handler, (s) => {
    s.on('connection', (c: Socket) => sockets.add(c));
    configure?.(s);
  });
  running.push(up);
  return Object.assign(up, { sockets });
}

describe('h1 upstream client pool', () => {
  it('reuses one keep-alive connection for sequential requests', async () => {
    const up = await upstream((req, res) => res.end(`you asked ${req.url}`));
    const c = client(up.url);
    for (let i = 0; i < 20; i++) expect(await text(await c.request(opts(`/r${i}`)))).toBe(`you asked /r${i}`);
    expect(up.sockets.size).toBe(1);
    expect(c.inFlight).toBe(0);
  });

  it('never opens more than maxSockets; queued requests are served as connections free up', async () => {
    let concurrent = 0;
    let peak = 0;
    const up = await upstream((_req, res) => {
      concurrent++;
      peak = Math.max(peak, concurrent);
      setTimeout(() => {
        concurrent--;
        res.end('ok');
      }, 20);
    });
    const c = client(up.url, { maxSockets: 2 });
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => c.request(opts(`/${i}`)).then(text)));
    expect(answers).toEqual(answers.map(() => 'ok'));
    expect(peak).toBe(2);
    expect(up.sockets.size).toBe(2);
  });

  it('closes connections idle longer than idleMs', async () => {
    const up = await upstream((_req, res) => res.end('ok'));
    const c = client(up.url, { idleMs: 150 });
    await text(await c.request(opts('/')));
    const sock = [...up.sockets][0]!;
    await until(() => sock.destroyed, { timeoutMs: 2000, message: 'the socket destroyed' });
    // and the next request simply opens a new one
    expect(await text(await c.request(opts('/')))).toBe('ok');
    expect(up.sockets.size).toBe(2);
  });

  it('honours a Keep-Alive: timeout hint shorter than idleMs (stops reusing a second before it)', async () => {
    const up = await upstream((_req, res) => {
      res.setHeader('keep-alive', 'timeout=1');
      res.end('ok');
    });
    const c = client(up.url, { idleMs: 60_000 });
    await text(await c.request(opts('/')));
    await text(await c.request(opts('/')));
    // timeout=1 s leaves nothing after the one-second margin: every request gets its own connection
    expect(up.sockets.size).toBe(2);
  });

  it('keeps at most maxIdleSockets idle connections', async () => {
    const up = await upstream((_req, res) => setTimeout(() => res.end('ok'), 20));
    const c = client(up.url, { maxSockets: 6, maxIdleSockets: 2 });
    await Promise.all(Array.from({ length: 6 }, () => c.request(opts('/')).then(text)));
    await until(() => [...up.sockets].filter((s) => !s.destroyed).length === 2, {
      timeoutMs: 2000,
      message: () => `2 upstream sockets open (${[...up.sockets].filter((s) => !s.destroyed).length})`,
    });
  });

  it('streams a body that does not come with the head, with the connection reused afterwards', async () => {
    const up = await upstream((_req, res) => {
      res.setHeader('content-length', 6);
      res.write('abc');
      setTimeout(() => res.end('def'), 30);
    });
    const c = client(up.url);
    const r = await c.request(opts('/'));
    expect(Buffer.isBuffer(r.body)).toBe(false);
    expect(await text(r)).toBe('abcdef');
    expect(await text(await c.request(opts('/')))).toBe('abcdef');
    expect(up.sockets.size).toBe(1);
  });

  it('a body read slowly to its end leaves the connection reading: the next exchange on it is answered', async () => {
    // the last body bytes and the response's end arrive in one read while the consumer lags (push() says stop):
    // the connection went back to the pool paused and the next answer on it was never read (found by h2.test.ts)
    const big = Buffer.alloc(300_000, 120);
    const up = await upstream((req, res) => (req.url === '/big' ? res.end(big) : res.end('small')));
    const c = client(up.url, { maxSockets: 1 });
    for (let i = 0; i < 5; i++) {
      const r = await c.request(opts('/big'));
      let got = 0;
      if (Buffer.isBuffer(r.body)) got = r.body.length;
      else
        for await (const chunk of r.body) {
          got += (chunk as Buffer).length;
          await sleep(2);
        }
      expect(got).toBe(big.length);
      expect(await text(await c.request(opts('/small')))).toBe('small');
    }
    expect(up.sockets.size).toBe(1);
  });

  it('sends a body without Content-Length chunked, byte for byte', async () => {
    const up = await upstream((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => res.end(`${req.headers['transfer-encoding']}:${Buffer.concat(chunks).toString()}`));
    });
    const { Readable } = await import('node:stream');
    const c = client(up.url);
    const r = await c.request(opts('/', { method: 'POST', body: Readable.from([Buffer.from('one,'), Buffer.from('two')]) }));
    expect(await text(r)).toBe('chunked:one,two');
  });

  it('times out waiting for headers, and abort() fails a request still queued', async () => {
    const up = await upstream(() => {
      /* never answers */
    });
    const c = client(up.url, { maxSockets: 1 });
    const t0 = Date.now();
    await expect(c.request(opts('/', { headersTimeoutMs: 150 }))).rejects.toMatchObject({ kind: 'headers-timeout' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    const first = c.request(opts('/a', { headersTimeoutMs: 5000 }));
    const queued = opts('/b', { headersTimeoutMs: 5000 });
    const second = c.request(queued);
    await sleep(20);
    queued.abort!();
    await expect(second).rejects.toMatchObject({ kind: 'aborted' });
    first.catch(() => undefined);
    expect(c.inFlight).toBe(1);
  });

  it('connection refused is a connect error; a protocol violation closes the connection', async () => {
    const raw = await startRawServer((s) => s.once('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab')));
    running.push(raw);
    const c = client(raw.url);
    await expect(c.request(opts('/'))).rejects.toMatchObject({ kind: 'protocol' });
    await raw.close();
    running.pop();
    await expect(c.request(opts('/'))).rejects.toMatchObject({ kind: 'connect' });
    expect(c.inFlight).toBe(0);
  });

  it('refuses header values that would split the request, before anything is sent', async () => {
    let got = 0;
    const up = await upstream((_req, res) => {
      got++;
      res.end('ok');
    });
    const c = client(up.url);
    await expect(c.request(opts('/', { headers: { host: 'x', 'x-evil': 'a\r\nInjected: 1' } }))).rejects.toMatchObject({ kind: 'protocol' });
    await expect(c.request(opts('/ space'))).rejects.toMatchObject({ kind: 'protocol' });
    expect(got).toBe(0);
  });

  it('close() closes idle connections at once and busy ones when they finish', async () => {
    const up = await upstream((req, res) => (req.url === '/slow' ? setTimeout(() => res.end('late'), 100) : res.end('ok')));
    const c = client(up.url);
    await text(await c.request(opts('/')));
    const slow = c.request(opts('/slow'));
    await sleep(10);
    const closed = c.close();
    expect(await text(await slow)).toBe('late');
    await closed;
    await until(() => [...up.sockets].every((s) => s.destroyed), { timeoutMs: 2000, message: 'every upstream socket closed' });
  });
});
