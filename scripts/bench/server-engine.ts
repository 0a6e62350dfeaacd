/**
 * Server CPU per request: the own HTTP/1.1 engine (variants/server/own/) against a bare `http.createServer`,
 * both answering the same small static response with the same handler (writeHead + end, as the pipeline's
 * static fast path does).
 *
 *   npm run build && node scripts/run.mjs dist/scripts/bench/server-engine.js [--requests 200000] [--connections 50] [--rounds 2]
 *     [--engines node,own,own-data]
 *
 * `own-data` is the own engine reading 'data' events instead of its shared read buffer (userBufferReads false).
 *
 * Each server runs in a child process pinned to CPU 0 (`taskset -c 0`), autocannon to CPU 1, so the two do not
 * share a core. The server's CPU time is read from /proc/<pid>/stat (utime + stime) around each measured run,
 * after a warm-up run; the result is CPU µs per request (lower is better) and requests/s. Engines alternate
 * per round so drift (thermal, other load) hits both. Prints a table on stdout; writes nothing else.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerConfig } from '../../core/config/types.js';
import type { ServerRequest, ServerResponse } from '../../core/contracts/server.js';
import { OwnEngine } from '../../variants/server/own/engine.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BODY = 'hello world, this is a static answer\n';
const HEADERS = { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(BODY)) };

function handler(_req: ServerRequest, res: ServerResponse): void {
  res.writeHead(200, HEADERS);
  res.end(BODY, 'latin1');
}

/** Child mode: serve with one engine and print the port. */
async function serve(engine: string): Promise<void> {
  let server: import('node:net').Server;
  if (engine === 'own' || engine === 'own-data') {
    const config = {
      keepAliveTimeoutMs: 5000,
      headersTimeoutMs: 60000,
      requestTimeoutMs: 300000,
      maxHeaderSize: 16384,
      connectionsCheckingIntervalMs: 30000,
      http2: false,
    } as ServerConfig;
    const handlers = { request: handler, upgrade: (_r: ServerRequest, s: import('node:stream').Duplex) => s.destroy(), connection: () => true };
    server = new OwnEngine(config, handlers, { userBufferReads: engine === 'own' }).listener;
  } else {
    server = http.createServer({ keepAliveTimeout: 5000 }, handler);
  }
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
  // an orderly exit writes a --cpu-prof profile when the child runs with one
  process.once('SIGTERM', () => process.exit(0));
  process.once('SIGINT', () => process.exit(0));
}

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
}

/** [user, system] CPU ticks of a process */
function cpuTicks(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after the command name (which may contain spaces): utime is field 14, stime 15
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(rest[11]), Number(rest[12])];
}

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

async function startChild(engine: string, pin: boolean): Promise<{ child: ChildProcess; port: number }> {
  const script = fileURLToPath(import.meta.url);
  const args = [script, '--serve', engine];
  const child = pin ? spawn('taskset', ['-c', '0', process.execPath, ...args]) : spawn(process.execPath, args);
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', (code) => reject(new Error(`${engine} server exited (${code})`)));
  });
  return { child, port };
}

function load(port: number, requests: number, connections: number, pin: boolean): { requests: number; rps: number } {
  const bin = join(ROOT, 'node_modules', '.bin', 'autocannon');
  const args = ['-c', String(connections), '-a', String(requests), '-j', `http://127.0.0.1:${port}/`];
  const out = pin ? execFileSync('taskset', ['-c', '1', bin, ...args], { encoding: 'utf8' }) : execFileSync(bin, args, { encoding: 'utf8' });
  const r = JSON.parse(out) as { requests: { total: number; average: number }; non2xx: number; errors: number };
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`load run had ${r.non2xx} non-2xx answers and ${r.errors} errors`);
  return { requests: r.requests.total, rps: r.requests.average };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string, dflt: number): number => {
    const i = argv.indexOf(`--${name}`);
    return i === -1 ? dflt : Number(argv[i + 1]);
  };
  const serveAt = argv.indexOf('--serve');
  if (serveAt !== -1) return serve(argv[serveAt + 1]!);
  const requests = opt('requests', 200000);
  const connections = opt('connections', 50);
  const rounds = opt('rounds', 2);
  const pin = hasTaskset();
  const tck = clockTicks();
  const engines = (argv.includes('--engines') ? argv[argv.indexOf('--engines') + 1]! : 'node,own').split(',');
  const results: Record<string, { cpuUs: number[]; userUs: number[]; rps: number[] }> = {};
  for (const e of engines) results[e] = { cpuUs: [], userUs: [], rps: [] };
  for (let round = 0; round < rounds; round++) {
    for (const engine of round % 2 === 0 ? engines : [...engines].reverse()) {
      const { child, port } = await startChild(engine, pin);
      try {
        load(port, Math.min(20000, requests), connections, pin); // warm-up: JIT, connection setup
        const before = cpuTicks(child.pid!);
        const run = load(port, requests, connections, pin);
        const after = cpuTicks(child.pid!);
        const userS = (after[0] - before[0]) / tck;
        const cpuS = userS + (after[1] - before[1]) / tck;
        results[engine]!.cpuUs.push((cpuS * 1e6) / run.requests);
        results[engine]!.userUs.push((userS * 1e6) / run.requests);
        results[engine]!.rps.push(run.rps);
      } finally {
        child.kill('SIGTERM');
      }
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  process.stdout.write(`server engine, static answer, ${requests} requests × ${rounds} rounds, ${connections} connections, pinned: ${pin}\n`);
  process.stdout.write(`engine  CPU µs/request: median (runs) | of it user time (runs) | req/s (runs)\n`);
  const list = (xs: number[], d: number): string => xs.map((x) => x.toFixed(d)).join(', ');
  for (const e of engines) {
    const r = results[e]!;
    process.stdout.write(
      `${e.padEnd(6)}  ${median(r.cpuUs).toFixed(2)} (${list(r.cpuUs, 2)}) | ${median(r.userUs).toFixed(2)} (${list(r.userUs, 2)}) | ${list(r.rps, 0)}\n`,
    );
  }
  const [first, ...rest] = engines;
  const base = median(results[first!]!.cpuUs);
  for (const e of rest) process.stdout.write(`${e} is ${(base / median(results[e]!.cpuUs)).toFixed(2)}× ${first} in CPU per request\n`);
}

await main();
