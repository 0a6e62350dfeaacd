import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUCKET_COUNT } from '../../core/base/histogram.js';
import { ATOMIC_BUFFER_BYTES, createRecorder } from '../../variants/metrics/atomic-buckets/index.js';
import { until } from '../support/wait.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Worker threads do not go through vitest's TypeScript transform, and Node 20 cannot strip types, so the recorder's
 * module graph is transpiled (typescript's transpileModule, no bundling) into a temp dir mirroring the repo layout.
 */
function transpileGraph(entry: string, outDir: string): string {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const src = readFileSync(file, 'utf8');
    const out = ts.transpileModule(src, {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
      fileName: file,
    }).outputText;
    const target = join(outDir, relative(ROOT, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, out);
    for (const m of out.matchAll(/from\s+['"](\.{1,2}\/[^'"]+)\.js['"]/g)) visit(resolve(dirname(file), `${m[1]}.ts`));
  };
  visit(entry);
  return join(outDir, relative(ROOT, entry)).replace(/\.ts$/, '.js');
}

let tmp = '';
let recorderModule = '';

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'atomic-buckets-'));
  writeFileSync(join(tmp, 'package.json'), '{"type":"module"}');
  recorderModule = pathToFileURL(transpileGraph(join(ROOT, 'variants/metrics/atomic-buckets/index.ts'), tmp)).href;
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const WORKER_SRC = `
import { workerData, parentPort } from 'node:worker_threads';
const { createRecorder } = await import(workerData.module);
const rec = createRecorder(workerData.buffer);
const { n, offset, errorEvery } = workerData;
// wait for the go signal so both threads really record at the same time
const flag = new Int32Array(workerData.flag);
Atomics.add(flag, 1, 1);
Atomics.wait(flag, 0, 0);
for (let i = 0; i < n; i++) rec.record(offset + (i % 1000) * 0.01, i % errorEvery === 0);
parentPort.postMessage('done');
`;

function runWorker(buffer: SharedArrayBuffer, flag: SharedArrayBuffer, n: number, offset: number, errorEvery: number): Promise<void> {
  return new Promise((res, rej) => {
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(WORKER_SRC)}`), {
      workerData: { module: recorderModule, buffer, flag, n, offset, errorEvery },
    });
    w.once('message', () => res());
    w.once('error', rej);
    w.once('exit', (code) => (code === 0 ? res() : rej(new Error(`worker exited with ${code}`))));
  });
}

describe('atomic-buckets across threads', () => {
  it('two worker threads recording into one SharedArrayBuffer lose no count', async () => {
    const main = createRecorder();
    expect(main.buffer.byteLength).toBe(ATOMIC_BUFFER_BYTES);
    const flag = new SharedArrayBuffer(8);
    const flags = new Int32Array(flag);
    const N = 200_000;
    const done = Promise.all([runWorker(main.buffer, flag, N, 1, 3), runWorker(main.buffer, flag, N, 50, 4)]);
    // release both workers together once both are parked
    await until(() => Atomics.load(flags, 1) >= 2, { timeoutMs: 20_000, stepMs: 5, message: () => `both workers parked (${Atomics.load(flags, 1)}/2)` });
    Atomics.store(flags, 0, 1);
    Atomics.notify(flags, 0);
    await done;

    const s = main.snapshot();
    expect(s.count).toBe(2 * N);
    expect(s.errors).toBe(Math.ceil(N / 3) + Math.ceil(N / 4));
    expect(s.min).toBe(1);
    expect(s.max).toBeCloseTo(50 + 999 * 0.01, 4);
    const e = main.exportDistribution();
    let total = 0;
    for (let i = 1; i < e.buckets.length; i += 2) total += e.buckets[i]!;
    expect(total).toBe(2 * N);
    // mean from the integer-ns sum: both streams have mean offset + 4.995
    expect(s.mean).toBeCloseTo((1 + 4.995 + 50 + 4.995) / 2, 6);
    // a second recorder constructed over the same buffer is a view of the same histogram
    expect(createRecorder(main.buffer).snapshot()).toEqual(s);
  });

  it('carries 32-bit counter overflow into the high word', () => {
    const rec = createRecorder();
    const words = new Int32Array(rec.buffer);
    words[0] = -2; // count low word at 0xfffffffe
    rec.record(1, false);
    rec.record(1, false);
    rec.record(1, false);
    expect(rec.exportDistribution().count).toBe(2 ** 32 + 1);
    // the sum is kept in ns: a value over 2^32 ns (4.3 s) spans both words
    rec.reset();
    rec.record(10_000, false);
    rec.record(10_000, false);
    expect(rec.exportDistribution().sum).toBe(20_000);
    expect(BUCKET_COUNT).toBeGreaterThan(0);
  });

  it('rejects a buffer too small for the layout', () => {
    expect(() => createRecorder(new SharedArrayBuffer(64))).toThrow(RangeError);
  });
});
