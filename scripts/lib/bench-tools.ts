import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Shared by the stand-alone benchmark scripts (bench-core, bench-proxy): pinning, processes, the load tool. */
export const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

/** Prefix a command so it runs on one CPU (when taskset exists and the machine has more than one core). */
export function pinned(cpu: number, cmd: string, args: string[]): [string, string[]] {
  return hasTaskset ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export function get(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

export async function waitForUrl(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await get(url)) > 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

export function writeTempJson(name: string, value: unknown): string {
  const file = join(mkdtempSync(join(tmpdir(), 'bench-')), name);
  writeFileSync(file, JSON.stringify(value));
  return file;
}

export function startProcess(cpu: number, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const [cmd, argv] = pinned(cpu, process.execPath, args);
  return spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env } });
}

export async function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

export interface LoadResult {
  tool: 'autocannon';
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

/** autocannon in its own pinned process (so its CPU never competes with the gateway's), JSON result. */
export function autocannon(url: string, opts: { connections: number; durationS: number; pipelining?: number; cpu: number }): Promise<LoadResult> {
  const bin = new URL('../../../node_modules/autocannon/autocannon.js', import.meta.url).pathname;
  const [cmd, argv] = pinned(opts.cpu, process.execPath, [
    bin,
    '-j',
    '-c',
    String(opts.connections),
    '-d',
    String(opts.durationS),
    '-p',
    String(opts.pipelining ?? 1),
    url,
  ]);
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    p.on('exit', (code) => {
      try {
        const j = JSON.parse(out) as { requests: { average: number }; latency: { p50: number; p99: number }; errors: number; non2xx: number };
        resolve({ tool: 'autocannon', rps: j.requests.average, p50: j.latency.p50, p99: j.latency.p99, errors: j.errors, non2xx: j.non2xx });
      } catch {
        reject(new Error(`autocannon exited ${code}: ${out.slice(0, 200)}`));
      }
    });
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
