/**
 * The own engine with a pooled head buffer (OwnEngineOptions.headPool, issue 18's BufferPool measurement) must put
 * exactly the bytes on the wire that it puts there without one, for every way the pipeline answers: static string
 * bodies (latin1), small and large Buffers, no body, HEAD, a piped body written before end(), chunked, pipelined.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerConfig } from '../../core/config/types.js';
import type { ServerRequest, ServerResponse } from '../../core/contracts/server.js';
import { BufferPool } from '../../variants/pool/buffer/index.js';
import { OwnEngine } from '../../variants/server/own/engine.js';
import { exchange } from '../support/raw.js';
import { until } from '../support/wait.js';

function serverConfig(): ServerConfig {
  return {
    keepAliveTimeoutMs: 5000,
    headersTimeoutMs: 60000,
    requestTimeoutMs: 300000,
    maxHeaderSize: 16384,
    connectionsCheckingIntervalMs: 30000,
    http2: false,
  } as ServerConfig;
}

const engines: OwnEngine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) {
    e.closeAll();
    await new Promise<void>((r) => e.listener.close(() => r()));
  }
});

/** Every answer shape the pipeline (core/data/response.ts) produces, by path. */
function answer(req: ServerRequest, res: ServerResponse): void {
  const big = Buffer.alloc(6000, 0x62);
  switch (req.url) {
    case '/latin1':
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"caf\u00e9":1}', 'latin1');
      return;
    case '/buffer':
      res.writeHead(201, { 'content-type': 'application/octet-stream', 'x-many': ['a', 'b'] });
      res.end(Buffer.from([0, 1, 2, 0xff, 0x80]));
      return;
    case '/big':
      res.writeHead(200);
      res.end(big);
      return;
    case '/empty':
      res.writeHead(204);
      res.end();
      return;
    case '/piped':
      res.writeHead(200, { 'content-length': '10' });
      res.write(Buffer.from('01234'));
      res.write(Buffer.from('56789'));
      res.end();
      return;
    case '/chunked':
      res.writeHead(200);
      res.write(Buffer.from('part one'));
      res.end(Buffer.from('part two'));
      return;
    default:
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('missing');
  }
}

async function start(headPool?: BufferPool): Promise<number> {
  const engine = new OwnEngine(serverConfig(), { request: answer, upgrade: (_r, s) => s.destroy(), connection: () => true }, headPool ? { headPool } : {});
  engines.push(engine);
  await new Promise<void>((r) => engine.listener.listen(0, '127.0.0.1', r));
  return (engine.listener.address() as AddressInfo).port;
}

const PATHS = ['/latin1', '/buffer', '/big', '/empty', '/piped', '/chunked', '/nope'];
const request = (path: string, method = 'GET', extra = '') => `${method} ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
const withoutDate = (raw: string) => raw.replace(/\r\nDate: [^\r]*/g, '\r\nDate: -');

describe('own engine with a pooled head buffer', () => {
  it('sends the same bytes as without one, pipelined on one connection, and returns its slabs', async () => {
    const pool = new BufferPool({ size: 4096, capacity: 64 });
    const [plain, pooled] = [await start(), await start(pool)];
    // the last asks for the close, so both exchanges end when the server is done (HEAD answers carry a length)
    const parts = [...PATHS.map((p) => request(p)), request('/latin1', 'HEAD'), request('/buffer', 'HEAD', 'Connection: close\r\n')];
    const a = await exchange(plain, [parts.join('')], { waitClose: true, timeoutMs: 5000 });
    const b = await exchange(pooled, [parts.join('')], { waitClose: true, timeoutMs: 5000 });
    expect(a.closed && b.closed).toBe(true);
    expect(a.raw.match(/HTTP\/1\.1 \d{3} /g)).toHaveLength(parts.length);
    expect(withoutDate(b.raw)).toBe(withoutDate(a.raw));
    expect(a.raw).toContain('{"caf\u00e9":1}');
    // the heads went through slabs (the 6000-byte body did not fit one) and every slab came back
    // (every slab was created by a miss: it is back in the pool, or dropped as an overflow, or still in flight)
    await until(() => pool.stats().size + pool.stats().overflows === pool.stats().misses, { message: () => `pool ${JSON.stringify(pool.stats())}` });
    expect(pool.stats().misses + pool.stats().hits).toBeGreaterThanOrEqual(5);
    expect(pool.stats().foreign).toBe(0);
  });
});
