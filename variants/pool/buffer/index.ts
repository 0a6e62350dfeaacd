import type { Socket } from 'node:net';
import type { ObjectPool, PoolFactory, PoolStats } from '../../../core/contracts/pool.js';
import { createPool as stack } from '../stack/index.js';

/**
 * BufferPool: fixed-size byte slabs for what a server engine serialises per response (the head, and a small body
 * joined to it into one write), reused instead of allocated — the seed's "BufferPool for byte buffers, minimizes GC
 * pressure", measured in issue 18 (scripts/bench/buffer-pool.ts) against node's own allocation and against
 * writing a latin1 string. It is an ObjectPool<Buffer> built on any pool variant (default `stack`, LIFO: the slab
 * written last is the one still in cache), so it keeps the family's contract and statistics; it is not a
 * RequestState pool and is not registered in variants/pool/index.ts.
 *
 * Slabs are Buffer.allocUnsafeSlow: each owns its ArrayBuffer. A slice of node's shared 8 KiB allocation pool
 * (what Buffer.allocUnsafe hands out below 4 KiB) must never be recycled, since its neighbours belong to others;
 * `release` therefore takes back only whole slabs of this pool's size and counts anything else as foreign.
 */
export interface BufferPoolOptions {
  /** bytes per slab, e.g. 4096 or 16384 */
  size: number;
  /** slabs kept for reuse (releasing beyond it drops the slab: an overflow) */
  capacity: number;
  /** the pool variant holding the slabs (default `stack`) */
  pool?: PoolFactory;
}

export interface BufferPoolStats extends PoolStats {
  /** bytes per slab */
  slabSize: number;
  /** release() calls refused because the buffer was not a whole slab of this size */
  foreign: number;
}

export class BufferPool implements ObjectPool<Buffer> {
  readonly size: number;
  private readonly slabs: ObjectPool<Buffer>;
  private foreign = 0;

  constructor(options: BufferPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) throw new RangeError(`BufferPool size must be a positive integer (got ${options.size})`);
    const size = options.size;
    this.size = size;
    this.slabs = (options.pool ?? stack)<Buffer>({ create: () => Buffer.allocUnsafeSlow(size), reset: noReset, capacity: options.capacity });
  }

  /** A slab of exactly `size` bytes; its contents are whatever the last user left (write before you read). */
  acquire(): Buffer {
    return this.slabs.acquire();
  }

  /** Hands a slab back. Only call it once nothing (a pending socket write included) still reads the slab. */
  release(buf: Buffer): void {
    if (buf.byteLength !== this.size || buf.byteOffset !== 0 || buf.buffer.byteLength !== this.size) {
      this.foreign++;
      return;
    }
    this.slabs.release(buf);
  }

  stats(): BufferPoolStats {
    return { ...this.slabs.stats(), slabSize: this.size, foreign: this.foreign };
  }
}

function noReset(): void {
  // slabs are overwritten by the next user; clearing 4-16 KiB per release would cost more than it protects
}

/**
 * Writes `head` and an optional body (bytes, or a string taken as latin1) to a socket as one write through a pooled
 * slab, and releases the slab when the socket is done with it (the write callback: node calls it after libuv has
 * written or dropped the bytes, never while the kernel copy is pending). Callbacks of one socket complete in
 * order, so one writer per connection keeps its slabs in a FIFO and needs no closure per write. A head + body
 * larger than a slab is written from a plain Buffer.allocUnsafe (callers that care check `fits` first).
 */
export class PooledWriter {
  private readonly inFlight: Array<Buffer | null> = [];
  private readonly onWritten = (): void => {
    const slab = this.inFlight.shift();
    if (slab !== undefined && slab !== null) this.pool.release(slab);
  };

  constructor(
    private readonly pool: BufferPool,
    private readonly socket: Socket,
  ) {}

  /** whether `bytes` of head + body go out through a slab */
  fits(bytes: number): boolean {
    return bytes <= this.pool.size;
  }

  /** socket.write's return value (false: wait for 'drain') */
  write(head: string, body?: Uint8Array | string): boolean {
    const total = head.length + (body === undefined ? 0 : typeof body === 'string' ? body.length : body.byteLength);
    const slab = total <= this.pool.size ? this.pool.acquire() : null;
    const out = slab ?? Buffer.allocUnsafe(total);
    const n = out.write(head, 0, 'latin1');
    if (typeof body === 'string') out.write(body, n, 'latin1');
    else if (body !== undefined) out.set(body, n);
    this.inFlight.push(slab);
    return this.socket.write(slab === null ? out : out.subarray(0, total), this.onWritten);
  }
}
