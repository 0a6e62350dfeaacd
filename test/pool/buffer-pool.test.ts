/**
 * BufferPool (issue 18: the seed's pooled byte buffers): fixed-size slabs on a pool variant, only whole slabs taken
 * back, and PooledWriter releasing a slab only after the socket is done with it (real loopback sockets).
 */
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { BufferPool, PooledWriter } from '../../variants/pool/buffer/index.js';
import { poolVariants } from '../../variants/pool/index.js';
import { until } from '../support/wait.js';

describe('BufferPool', () => {
  it('hands out slabs of its size, each owning its memory, and reuses released ones', () => {
    const pool = new BufferPool({ size: 4096, capacity: 2 });
    const a = pool.acquire();
    const b = pool.acquire();
    expect(a.byteLength).toBe(4096);
    expect(a.buffer.byteLength).toBe(4096);
    expect(a.buffer).not.toBe(b.buffer);
    pool.release(a);
    expect(pool.acquire()).toBe(a);
    expect(pool.stats()).toEqual({ hits: 1, misses: 2, overflows: 0, size: 0, capacity: 2, slabSize: 4096, foreign: 0 });
  });

  it("takes back only whole slabs of its own size (a slice of node's shared pool is someone else's memory)", () => {
    const pool = new BufferPool({ size: 4096, capacity: 4 });
    const slab = pool.acquire();
    pool.release(Buffer.allocUnsafe(100)); // a slice of node's 8 KiB allocation pool
    pool.release(slab.subarray(0, 100));
    pool.release(Buffer.allocUnsafeSlow(16384));
    expect(pool.stats()).toMatchObject({ foreign: 3, size: 0 });
    pool.release(slab);
    expect(pool.stats()).toMatchObject({ foreign: 3, size: 1 });
  });

  it('drops what does not fit back (an overflow), on any pool variant', () => {
    for (const [name, factory] of Object.entries(poolVariants)) {
      const pool = new BufferPool({ size: 64, capacity: 1, pool: factory });
      const a = pool.acquire();
      const b = pool.acquire();
      pool.release(a);
      pool.release(b);
      const pooling = name !== 'none';
      expect(pool.stats(), name).toMatchObject({ misses: 2, overflows: pooling ? 1 : 2, size: pooling ? 1 : 0 });
    }
  });

  it('refuses a size that is not a positive integer', () => {
    expect(() => new BufferPool({ size: 0, capacity: 1 })).toThrow(RangeError);
    expect(() => new BufferPool({ size: 1.5, capacity: 1 })).toThrow(/positive integer/);
  });
});

async function socketPair(): Promise<{ client: Socket; server: Socket; received: () => Buffer; close: () => void }> {
  const chunks: Buffer[] = [];
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const client = connect((srv.address() as AddressInfo).port, '127.0.0.1');
  const [server] = (await once(srv, 'connection')) as [Socket];
  client.on('data', (d: Buffer) => chunks.push(d));
  return {
    client,
    server,
    received: () => Buffer.concat(chunks),
    close: () => {
      client.destroy();
      server.destroy();
      srv.close();
    },
  };
}

describe('PooledWriter', () => {
  it('sends head + body as written and returns each slab to the pool once its write completed', async () => {
    const pair = await socketPair();
    try {
      const pool = new BufferPool({ size: 256, capacity: 8 });
      const writer = new PooledWriter(pool, pair.server);
      const expected: string[] = [];
      // many writes in one tick: slabs stay out while their bytes are queued, so each response needs its own
      for (let i = 0; i < 50; i++) {
        const head = `HTTP/1.1 200 OK\r\nx-i: ${i}\r\ncontent-length: 3\r\n\r\n`;
        writer.write(head, Buffer.from(String(i % 10).repeat(3)));
        expected.push(head + String(i % 10).repeat(3));
      }
      // one larger than a slab goes out from a plain buffer
      const big = 'x'.repeat(300);
      writer.write(big);
      expected.push(big);
      const want = expected.join('');
      await until(() => pair.received().length >= want.length, { message: () => `received ${pair.received().length} of ${want.length} bytes` });
      expect(pair.received().toString('latin1')).toBe(want);
      await until(() => pool.stats().size === 8, { message: () => `pool ${JSON.stringify(pool.stats())}` });
      // every slab came back exactly once: hits + misses = acquires, the rest overflowed
      const s = pool.stats();
      expect(s.hits + s.misses).toBe(50);
      expect(s.overflows).toBe(s.misses - 8);
      expect(s.foreign).toBe(0);
    } finally {
      pair.close();
    }
  });

  it('a write to a destroyed socket still gives its slab back', async () => {
    const pair = await socketPair();
    try {
      const pool = new BufferPool({ size: 256, capacity: 8 });
      const writer = new PooledWriter(pool, pair.server);
      pair.server.on('error', () => {});
      pair.server.destroy();
      writer.write('HTTP/1.1 200 OK\r\n\r\n');
      await until(() => pool.stats().size === 1, { message: () => `pool ${JSON.stringify(pool.stats())}` });
      expect(pool.stats()).toMatchObject({ misses: 1, size: 1 });
    } finally {
      pair.close();
    }
  });
});
