import { spawn } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { sendToWorker } from '../../core/control/ipc.js';
import { blockUntilExited } from '../support/proc.js';

/**
 * The race the primary used to die of: a worker is SIGKILLed and its end of the IPC channel is closed, but the
 * primary's event loop has not read the EOF yet, so `isConnected()` still says true and a send fails with EPIPE.
 * Blocking until the peer has exited (it stays a zombie: reaping also runs on the event loop) opens that
 * window every time instead of once in a few hundred full-suite runs. The orphan-worker script below carries
 * its own copy of test/support/proc.ts's check, since it runs outside the test's module graph.
 */
const dir = mkdtempSync(join(tmpdir(), 'gw-ipc-'));
const ipcModule = pathToFileURL(resolve('dist/core/control/ipc.js')).href;

describe('primary → worker: a send to a worker that just died', () => {
  const idle = join(dir, 'idle-worker.mjs');
  writeFileSync(idle, "process.on('message', () => {}); process.send('online'); setInterval(() => {}, 1000);\n");
  const workers: Worker[] = [];
  afterAll(() => {
    for (const w of workers) w.process.kill('SIGKILL');
  });

  async function killedWorker(): Promise<{ worker: Worker; events: Error[] }> {
    cluster.setupPrimary({ exec: idle, silent: true });
    const worker = cluster.fork();
    workers.push(worker);
    const events: Error[] = [];
    worker.on('error', (err: Error) => events.push(err));
    await new Promise((ok) => worker.once('message', ok));
    worker.process.kill('SIGKILL');
    blockUntilExited(worker.process.pid!);
    // The window is open: the channel is gone, and this process does not know yet.
    expect(worker.isConnected()).toBe(true);
    return { worker, events };
  }

  it('a plain worker.send reports EPIPE as an error event, which nobody handling it would end the process', async () => {
    const { worker, events } = await killedWorker();
    worker.send({ type: 'METRICS_REQUEST', id: 1 });
    await new Promise((ok) => setTimeout(ok, 50));
    expect(events.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['EPIPE']);
  });

  it('sendToWorker hands the EPIPE to its callback and emits nothing', async () => {
    const { worker, events } = await killedWorker();
    const closed: Error[] = [];
    sendToWorker(worker, { type: 'METRICS_REQUEST', id: 1 }, (err) => closed.push(err));
    await new Promise((ok) => setTimeout(ok, 50));
    expect(events).toEqual([]);
    expect(closed.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['EPIPE']);
    // After the exit is seen, the channel counts as closed and the callback says so without writing.
    await new Promise((ok) => (worker.isDead() ? ok(null) : worker.once('exit', ok)));
    const after: Error[] = [];
    expect(sendToWorker(worker, { type: 'METRICS_REQUEST', id: 2 }, (err) => after.push(err))).toBe(false);
    expect(after).toHaveLength(1);
    expect(events).toEqual([]);
  });
});

describe('worker → primary: a send after the primary died', () => {
  // A small primary forks one worker; the worker busy-waits until the test has SIGKILLed that primary, then
  // sends to it one way or the other and writes what happened to a file (its stdout went with the primary).
  const worker = join(dir, 'orphan-worker.mjs');
  writeFileSync(
    worker,
    `import { readFileSync, writeFileSync } from 'node:fs';
import { sendToPrimary } from ${JSON.stringify(ipcModule)};
const out = process.env.RESULT_FILE;
const primary = process.ppid;
function dead() {
  try { const s = readFileSync('/proc/' + primary + '/status', 'utf8'); return /^State:\\s+Z/m.test(s) && /^Threads:\\s+1$/m.test(s); }
  catch { return true; }
}
process.on('exit', (code) => { try { writeFileSync(out + '.exit', String(code)); } catch {} });
process.send('ready');
const deadline = Date.now() + 5000;
while (!dead()) if (Date.now() > deadline) process.exit(3);
const connected = process.connected;
if (process.env.MODE === 'raw') {
  process.send({ type: 'HELLO', workerId: 1 });
  setTimeout(() => { writeFileSync(out, JSON.stringify({ connected, survived: true })); process.exit(0); }, 100);
} else {
  // The callback runs before the channel's EOF is read (and before cluster's own 'disconnect' handler exits).
  sendToPrimary({ type: 'HELLO', workerId: 1 }, (err) => writeFileSync(out, JSON.stringify({ connected, survived: true, errors: [err.code] })));
}
`,
  );
  const primary = join(dir, 'primary.mjs');
  writeFileSync(
    primary,
    `import cluster from 'node:cluster';
cluster.setupPrimary({ exec: ${JSON.stringify(worker)} });
const w = cluster.fork();
w.on('message', () => process.stdout.write('ready\\n'));
`,
  );

  async function run(mode: 'raw' | 'helper'): Promise<{ result: { connected: boolean; errors?: string[] } | null; exit: string }> {
    const out = join(dir, `result-${mode}`);
    const child = spawn(process.execPath, [primary], { env: { ...process.env, MODE: mode, RESULT_FILE: out }, stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((ok, fail) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && ok());
      child.once('exit', () => fail(new Error('primary exited early')));
    });
    child.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    while (!existsSync(`${out}.exit`)) {
      if (Date.now() > deadline) throw new Error('worker never exited');
      await new Promise((ok) => setTimeout(ok, 20));
    }
    return { result: existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : null, exit: readFileSync(`${out}.exit`, 'utf8') };
  }

  it('a plain process.send ends the worker with an unhandled EPIPE', async () => {
    const { result, exit } = await run('raw');
    expect(result).toBeNull();
    expect(exit).toBe('1');
  });

  it('sendToPrimary reports EPIPE to its callback, and the worker goes on to a normal exit', async () => {
    const { result, exit } = await run('helper');
    expect(result).toEqual({ connected: true, survived: true, errors: ['EPIPE'] });
    expect(exit).toBe('0');
  });
});
