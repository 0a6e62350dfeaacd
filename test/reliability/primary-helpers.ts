import { spawn, type ChildProcess } from 'node:child_process';
import type { CliGateway } from '../support/cli.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { until } from '../support/wait.js';

/** Test plugins and helpers of the cluster tests here (primary-workers, worker-start-timeout, workers, worker-deaths). */
export const dir = writePlugins(
  {
    // Exits its worker during init while the flag file exists: a crash while booting (no FATAL message sent),
    // like an out-of-memory kill or a native crash. The primary's dry run (workerId -1) never exits.
    crashy: `
import { existsSync } from 'node:fs';
export default { name: 'crashy', version: '1.0.0', init(o, api) {
  if (api.workerId >= 0 && existsSync(o.flag)) process.exit(3);
  return {};
} };`,
    // Never finishes its init in a worker while the flag file exists: a worker that never becomes ready.
    stuck: `
import { existsSync } from 'node:fs';
export default { name: 'stuck', version: '1.0.0', async init(o, api) {
  if (api.workerId >= 0 && existsSync(o.flag)) await new Promise(() => {});
  return {};
} };`,
    // Holds the init of worker 1 while its gate file exists.
    gate: `
import { existsSync } from 'node:fs';
export default { name: 'gate', version: '1.0.0', async init(o, api) {
  while (api.workerId === 1 && existsSync(o.gate)) await new Promise((r) => setTimeout(r, 10));
  return {};
} };`,
  },
  'gw-primary-workers-',
);

export interface WorkerRow {
  id: number;
  pid: number;
  state: string;
  restarts: number;
  configVersion: number;
}
export interface Stats {
  configVersion: number;
  workers: WorkerRow[];
}
export const stats = async (gw: CliGateway): Promise<Stats> => JSON.parse((await request(`${gw.adminUrl}/stats`, { agent: false })).body) as Stats;

/**
 * Waits until every worker is ready (on config `version`, if given) and returns the /stats that said so: /ready
 * answers 200 as soon as one worker does, which is not enough before killing the other.
 */
export async function allReady(gw: CliGateway, version?: number): Promise<Stats> {
  let last: Stats | null = null;
  await until(
    async () => {
      last = await stats(gw);
      return last.workers.every((w) => w.state === 'ready' && (version === undefined || w.configVersion === version));
    },
    { timeoutMs: 30_000, message: () => `every worker ready${version === undefined ? '' : ` on config ${version}`}: ${JSON.stringify(last?.workers)}` },
  );
  return last!;
}

/** Waits until every worker slot serves again, failing at once if the primary exits. */
export async function everyWorkerReady(gw: CliGateway, timeoutMs = 60_000): Promise<void> {
  await until(
    async () => {
      alive(gw);
      return (await workers(gw)).every((w) => w.state === 'ready');
    },
    { timeoutMs, message: async () => `every worker serving again: ${JSON.stringify(await workers(gw))}` },
  );
}

export const workers = async (gw: CliGateway): Promise<WorkerRow[]> =>
  (JSON.parse((await request(`${gw.adminUrl}/stats`, { agent: false, timeoutMs: 5000 })).body) as { workers: WorkerRow[] }).workers;

export const configVersion = async (gw: CliGateway): Promise<number> =>
  (JSON.parse((await request(`${gw.adminUrl}/stats`, { agent: false })).body) as { configVersion: number }).configVersion;

export function alive(gw: CliGateway): void {
  if (gw.proc.exitCode !== null) throw new Error(`primary exited ${gw.proc.exitCode}:\n${gw.output().slice(-2000)}`);
}

/** The production CLI before it listens (startCli resolves only once it does): the process and its JSON log lines. */
export function spawnCli(file: string): { proc: ChildProcess; lines: () => Array<Record<string, unknown>>; output: () => string } {
  const proc = spawn(process.execPath, ['dist/core/cli.js', '--config', file, '--port', '0', '--admin-port', '0', '--workers', '2'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const lines = (): Array<Record<string, unknown>> =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  return { proc, lines, output: () => out };
}
