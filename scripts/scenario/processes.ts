import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, connect } from 'node:net';
import { availableParallelism } from 'node:os';

/** Which CPUs the gateway side and the load side get, and why. */
export interface CpuPlan {
  taskset: boolean;
  gatewayCpus: number[];
  loaderCpus: number[];
  note: string;
}

function hasTaskset(): boolean {
  const r = spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
  return r.status === 0;
}

/**
 * Gateway on every CPU but the last, load generator (and upstream stub) on the last: they never steal each
 * other's core, which is the biggest single source of noise when both saturate a 2-core box.
 */
export function planCpus(disable = false): CpuPlan {
  const cores = availableParallelism();
  if (disable) return { taskset: false, gatewayCpus: [], loaderCpus: [], note: 'CPU pinning disabled (--no-pin)' };
  if (!hasTaskset()) {
    return { taskset: false, gatewayCpus: [], loaderCpus: [], note: 'taskset not available: gateway and load generator are NOT pinned and share CPUs' };
  }
  if (cores < 2) {
    return { taskset: false, gatewayCpus: [], loaderCpus: [], note: `only ${cores} CPU: gateway and load generator share it; results are a lower bound` };
  }
  const gatewayCpus = Array.from({ length: cores - 1 }, (_, i) => i);
  return {
    taskset: true,
    gatewayCpus,
    loaderCpus: [cores - 1],
    note: `gateway pinned to CPU ${gatewayCpus.join(',')}, load generator and upstream stub to CPU ${cores - 1} (taskset)`,
  };
}

/** Spawns `node args…`, under `taskset -c cpus` when pinning (taskset execs, so the pid is node's). */
export function spawnNode(args: string[], cpus: number[], opts: SpawnOptions): ChildProcess {
  if (cpus.length > 0) return spawn('taskset', ['-c', cpus.join(','), process.execPath, ...args], opts);
  return spawn(process.execPath, args, opts);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', timeout: 1000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => {
      req.destroy();
      resolve(0);
    });
    req.end();
  });
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Polls until the process serves (admin /ready → 200, or the port accepts), it exits, or the deadline passes. */
export async function waitReady(child: ChildProcess, check: { adminPort?: number; port: number }, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`process exited before it was ready (code ${child.exitCode}, signal ${child.signalCode})\n${describe()}`);
    }
    const ok = check.adminPort !== undefined ? (await httpStatus(check.adminPort, '/ready')) === 200 : await tcpOpen(check.port);
    if (ok && (check.adminPort === undefined || (await tcpOpen(check.port)))) return;
    await sleep(100);
  }
  throw new Error(`process not ready after ${timeoutMs} ms\n${describe()}`);
}

/** The process and all its descendants (cluster workers), from /proc/<pid>/task/<tid>/children. */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    out.push(p);
    try {
      const tasks = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      if (tasks !== '') for (const c of tasks.split(/\s+/)) stack.push(Number(c));
    } catch {
      // process gone, or no /proc: nothing below it
    }
  }
  return out;
}

/** A process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or null once it is gone. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * SIGKILL for a process of an earlier snapshot, only if it is still that process: a pid freed since the snapshot
 * may already belong to someone else (the test suite forks thousands of processes; pid_max can be 32768).
 */
function killIfSame(pid: number, start: string | null): void {
  if (start === null || startTime(pid) !== start) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
}

/** SIGTERM (graceful drain), then SIGKILL for the whole tree after graceMs. */
export async function stopProcess(child: ChildProcess, graceMs = 5000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const tree = processTree(child.pid).map((pid) => ({ pid, start: startTime(pid) }));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = sleep(graceMs).then(() => 'timeout' as const);
  if ((await Promise.race([exited.then(() => 'exit' as const), timer])) === 'timeout') {
    for (const p of [...tree].reverse()) killIfSame(p.pid, p.start);
    await exited;
  }
  // cluster workers whose primary died abruptly would otherwise keep the port
  for (const p of tree) if (p.pid !== child.pid) killIfSame(p.pid, p.start);
}

/** Keeps the last `max` bytes of a stream for error messages. */
export function tail(max = 4000): { push(chunk: Buffer | string): void; text(): string } {
  let buf = '';
  return {
    push(chunk) {
      buf += chunk.toString();
      if (buf.length > max) buf = buf.slice(buf.length - max);
    },
    text: () => buf,
  };
}
