/**
 * Issue 18: does a BufferPool (variants/pool/buffer/) pay for serialising a response head + small body into one
 * socket write? Three ways to put "status line + 5 headers + 256-byte body" on the wire, as a server engine does per
 * response:
 *   string  head + body.toString('latin1') → socket.write(str, 'latin1')   (what the own engine does today)
 *   alloc   Buffer.allocUnsafe(n), head written latin1, body copied in → socket.write(buf)
 *           (below 4 KiB node slices its own shared 8 KiB pool: this already is a pool, with no release step)
 *   pool    a 4 KiB slab from BufferPool, same copy → socket.write(view), slab back on the write callback
 *           (PooledWriter: one FIFO per connection, no closure per write)
 *
 *   npm run bench:micro -- buffer-pool [--quick]     (or node dist/scripts/bench/buffer-pool.js [--quick])
 *
 * Part 1, serialise only (no socket): ns/op (benchmark.js), JS-heap bytes and ArrayBuffer (off-heap) bytes per op.
 * The string way includes copying the string into a reused scratch buffer: node's stream does the same copy (into
 * stack storage) when it writes a short string, so leaving it out would hide the string way's byte copy.
 * Part 2, through a real loopback socket to a reader in another process: the writer's CPU µs (process.cpuUsage,
 * user + system: the syscalls are most of it) and wall time per response, rounds interleaved across the three ways,
 * medians. Writes {results.json,report.md} to the git-ignored reports/runs/<timestamp>-micro-buffer-pool/; with
 * --publish to the committed reports/micro/buffer-pool/ (harness.ts, writeMicroReport).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { cpus } from 'node:os';
import { setImmediate as tick } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import { BufferPool, PooledWriter } from '../../variants/pool/buffer/index.js';
import { environment, fmt, getGc, timeOps, writeReport, type MicroBenchOptions, type MicroBenchResult, type Timing } from './harness.js';
export type { MicroBenchOptions, MicroBenchResult } from './harness.js';

const WAYS = ['string', 'alloc', 'pool'] as const;
type Way = (typeof WAYS)[number];
const SLAB = 4096;
const BODY = Buffer.from(`{"id":1,"name":"${'x'.repeat(256 - 18)}"}`, 'latin1');
const DATE = `Date: ${new Date(0).toUTCString()}\r\n`;
const OPS_PER_CALL = 1000;
const ALLOC_CHUNK = 2000;
/** responses written per event-loop turn in part 2 (as many connections answering in one turn) */
const BURST = 16;

/** A typical head: status line + 5 fields, built per response like an engine does (content-length varies). */
function head(bodyLength: number): string {
  return (
    'HTTP/1.1 200 OK\r\n' +
    'Content-Type: application/json\r\n' +
    `Content-Length: ${bodyLength}\r\n` +
    DATE +
    'Connection: keep-alive\r\n' +
    'Keep-Alive: timeout=5\r\n\r\n'
  );
}

/** Part 1's operations: each serialises one response into bytes and lets the result escape into `sink`. */
function serialisers(pool: BufferPool): Record<Way, (n: number) => void> {
  const scratch = Buffer.allocUnsafeSlow(SLAB);
  const sink: unknown[] = new Array<unknown>(64).fill(null);
  return {
    string: (n) => {
      for (let i = 0; i < n; i++) {
        const s = head(BODY.length + (i & 1)) + BODY.toString('latin1');
        sink[i & 63] = s;
        scratch.write(s, 0, 'latin1');
      }
    },
    alloc: (n) => {
      for (let i = 0; i < n; i++) {
        const h = head(BODY.length + (i & 1));
        const buf = Buffer.allocUnsafe(h.length + BODY.length);
        const w = buf.write(h, 0, 'latin1');
        buf.set(BODY, w);
        sink[i & 63] = buf;
      }
    },
    pool: (n) => {
      for (let i = 0; i < n; i++) {
        const h = head(BODY.length + (i & 1));
        const slab = pool.acquire();
        const w = slab.write(h, 0, 'latin1');
        slab.set(BODY, w);
        sink[i & 63] = slab.subarray(0, w + BODY.length);
        pool.release(slab);
      }
    },
  };
}

interface Allocation {
  heapBytesPerOp: number;
  arrayBufferBytesPerOp: number;
  chunks: number;
  discarded: number;
}

/**
 * Bytes per op on the JS heap (v8 used_heap_size) and off it (process.memoryUsage().arrayBuffers, where Buffer
 * memory lives): forced GC, run a chunk, read both again; medians over chunks minus an empty chunk's. A chunk
 * whose heap shrank had a GC inside and is discarded.
 */
function measureAllocation(run: (n: number) => void, chunks: number, gc: () => void): Allocation {
  const sample = (body: (n: number) => void) => {
    const heap: number[] = [];
    const ab: number[] = [];
    let discarded = 0;
    for (let c = 0; c < chunks; c++) {
      gc();
      const h0 = v8.getHeapStatistics().used_heap_size;
      const a0 = process.memoryUsage().arrayBuffers;
      body(ALLOC_CHUNK);
      const dh = v8.getHeapStatistics().used_heap_size - h0;
      const da = process.memoryUsage().arrayBuffers - a0;
      if (dh < 0 || da < 0) discarded++;
      else {
        heap.push(dh);
        ab.push(da);
      }
    }
    const med = (xs: number[]) => (xs.length === 0 ? 0 : [...xs].sort((x, y) => x - y)[xs.length >> 1]!);
    return { heap: med(heap), ab: med(ab), discarded };
  };
  const base = sample(() => {});
  const ops = sample(run);
  return {
    heapBytesPerOp: Math.max(0, (ops.heap - base.heap) / ALLOC_CHUNK),
    arrayBufferBytesPerOp: Math.max(0, (ops.ab - base.ab) / ALLOC_CHUNK),
    chunks,
    discarded: ops.discarded,
  };
}

/** A reader in its own process (so its CPU is not the writer's): accepts one connection, discards every byte. */
async function startReader(): Promise<{ child: ChildProcess; port: number }> {
  const src = "const s=require('net').createServer(c=>c.on('data',()=>{}));s.listen(0,'127.0.0.1',()=>process.stdout.write(String(s.address().port)+'\\n'));";
  const child = spawn(process.execPath, ['-e', src], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [data] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, port: Number(data.toString().trim()) };
}

interface SocketRound {
  way: Way;
  cpuUsPerResponse: number;
  wallNsPerResponse: number;
}

function writerFor(way: Way, socket: Socket, pool: BufferPool): () => boolean {
  const pooled = new PooledWriter(pool, socket);
  let i = 0;
  switch (way) {
    case 'string':
      return () => socket.write(head(BODY.length + (i++ & 1)) + BODY.toString('latin1'), 'latin1');
    case 'alloc':
      return () => {
        const h = head(BODY.length + (i++ & 1));
        const buf = Buffer.allocUnsafe(h.length + BODY.length);
        buf.set(BODY, buf.write(h, 0, 'latin1'));
        return socket.write(buf);
      };
    case 'pool':
      return () => pooled.write(head(BODY.length + (i++ & 1)), BODY);
  }
}

async function socketRound(way: Way, socket: Socket, pool: BufferPool, n: number): Promise<SocketRound> {
  const write = writerFor(way, socket, pool);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n;) {
    let ok = true;
    for (let j = 0; j < BURST && i < n; j++, i++) ok = write();
    if (!ok) await once(socket, 'drain');
    else await tick();
  }
  while (socket.writableLength > 0) await once(socket, 'drain');
  const wallNs = Number(process.hrtime.bigint() - t0);
  const c = process.cpuUsage(c0);
  return { way, cpuUsPerResponse: (c.user + c.system) / n, wallNsPerResponse: wallNs / n };
}

interface Row {
  way: Way;
  serialise: Timing;
  allocation: Allocation;
  socket: { rounds: number; cpuUsPerResponse: number; cpuUsMin: number; cpuUsMax: number; wallNsPerResponse: number };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export async function runBufferPoolBench(opts: MicroBenchOptions = {}): Promise<MicroBenchResult> {
  const quick = opts.quick === true;
  const gc = getGc();
  const pool = new BufferPool({ size: SLAB, capacity: 256 });
  const ser = serialisers(pool);
  const part1 = new Map<Way, { serialise: Timing; allocation: Allocation }>();
  for (const way of WAYS) {
    ser[way](50_000);
    gc();
    const serialise = timeOps(`serialise ${way}`, () => ser[way](OPS_PER_CALL), OPS_PER_CALL, quick);
    const allocation = measureAllocation(ser[way], quick ? 30 : 300, gc);
    part1.set(way, { serialise, allocation });
    process.stderr.write(
      `serialise ${way}: ${fmt(serialise.nsPerOp)} ns/op, ${fmt(allocation.heapBytesPerOp)} B heap + ${fmt(allocation.arrayBufferBytesPerOp)} B ArrayBuffer per op\n`,
    );
  }

  const reader = await startReader();
  const socket = connect(reader.port, '127.0.0.1');
  await once(socket, 'connect');
  socket.setNoDelay(true);
  const sockPool = new BufferPool({ size: SLAB, capacity: 256 });
  const n = quick ? 20_000 : 200_000;
  const rounds = quick ? 3 : 9;
  const results: SocketRound[] = [];
  try {
    for (const way of WAYS) await socketRound(way, socket, sockPool, n / 4); // warm-up of every path
    for (let r = 0; r < rounds; r++) {
      for (const way of WAYS) {
        const round = await socketRound(way, socket, sockPool, n);
        results.push(round);
        process.stderr.write(`socket ${way} #${r + 1}: ${fmt(round.cpuUsPerResponse, 2)} µs CPU, ${fmt(round.wallNsPerResponse, 0)} ns wall per response\n`);
      }
    }
  } finally {
    socket.destroy();
    reader.child.kill();
  }

  const rows: Row[] = WAYS.map((way) => {
    const mine = results.filter((x) => x.way === way);
    const cpu = mine.map((x) => x.cpuUsPerResponse);
    return {
      way,
      ...part1.get(way)!,
      socket: {
        rounds: mine.length,
        cpuUsPerResponse: median(cpu),
        cpuUsMin: Math.min(...cpu),
        cpuUsMax: Math.max(...cpu),
        wallNsPerResponse: median(mine.map((x) => x.wallNsPerResponse)),
      },
    };
  });
  const byWay = (w: Way) => rows.find((r) => r.way === w)!;
  const poolVs = (w: Way) => byWay('pool').socket.cpuUsPerResponse / byWay(w).socket.cpuUsPerResponse;
  const json = {
    benchmark: 'buffer-pool',
    startedAt: new Date().toISOString(),
    environment: environment(quick),
    method: {
      response: `status line + 5 header fields (${head(BODY.length).length} bytes) + ${BODY.length}-byte body, one write`,
      serialise: `benchmark.js, ${OPS_PER_CALL} responses per call; allocation: forced GC, chunks of ${ALLOC_CHUNK}, v8 used_heap_size and process.memoryUsage().arrayBuffers deltas, median minus an empty chunk's`,
      socket: `${n} responses per round in bursts of ${BURST} per event-loop turn to a reader process on 127.0.0.1, ${rounds} rounds per way interleaved, writer CPU (user + system) ÷ responses, medians`,
      slab: SLAB,
    },
    results: rows,
    poolStats: sockPool.stats(),
    verdict: { poolCpuVsString: poolVs('string'), poolCpuVsAlloc: poolVs('alloc') },
  };
  const lines = [
    '# BufferPool micro-benchmark (issue 18)',
    '',
    `Node ${process.version}, ${String((json.environment as Record<string, unknown>).cpu)} × ${cpus().length}${quick ? ' — **quick run, not for quoting**' : ''}.`,
    `One response: ${json.method.response}. Pool: ${SLAB}-byte slabs, stack variant.`,
    '',
    '| way | serialise ns/op | JS heap B/op | ArrayBuffer B/op | socket: writer CPU µs/response (median [min – max]) | socket: wall ns/response |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.way} | ${fmt(r.serialise.nsPerOp)} ± ${fmt(r.serialise.marginNs)} | ${fmt(r.allocation.heapBytesPerOp)} | ${fmt(r.allocation.arrayBufferBytesPerOp)} | ` +
        `${fmt(r.socket.cpuUsPerResponse, 2)} [${fmt(r.socket.cpuUsMin, 2)} – ${fmt(r.socket.cpuUsMax, 2)}] | ${fmt(r.socket.wallNsPerResponse, 0)} |`,
    ),
    '',
    `Pool CPU per response ÷ string: ${json.verdict.poolCpuVsString.toFixed(3)}; ÷ alloc: ${json.verdict.poolCpuVsAlloc.toFixed(3)} (below 1: the pool spends less).`,
    '',
    `Serialise: ${json.method.serialise}. Socket: ${json.method.socket}.`,
    '',
  ];
  const markdown = lines.join('\n');
  const dir = opts.write === false ? undefined : writeReport('buffer-pool', json, markdown, opts);
  return { json, markdown, dir };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await runBufferPoolBench({ quick: process.argv.includes('--quick') });
  process.stdout.write(result.markdown);
  if (result.dir !== undefined) process.stdout.write(`\nwritten to ${result.dir}\n`);
}
