import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from './http.js';
import { sleep } from './wait.js';

export interface CliGateway {
  proc: ChildProcess;
  port: number;
  adminPort: number;
  url: string;
  adminUrl: string;
  configFile: string;
  output: () => string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Rethrows a failed request to a CLI gateway with what the gateway did meanwhile (alive or its exit, the tail of
 * its output): a refused or hung-up connection alone does not say whether the process died, and why.
 */
export async function withGatewayState<T>(gw: Pick<CliGateway, 'proc' | 'output'>, what: Promise<T>): Promise<T> {
  try {
    return await what;
  } catch (err) {
    const p = gw.proc;
    const state = p.exitCode !== null || p.signalCode !== null ? `exited (code ${p.exitCode}, signal ${p.signalCode})` : 'still running';
    throw new Error(`${(err as Error).message}; the gateway ${state}; its output ends:\n${gw.output().slice(-3000)}`, { cause: err });
  }
}

export function writeConfig(config: unknown, dir = mkdtempSync(join(tmpdir(), 'gw-'))): string {
  const file = join(dir, 'gateway.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/**
 * Runs the production CLI (dist/core/cli.js) on ephemeral ports and waits until the admin API says ready.
 * Ports are read from the gateway's own JSON log lines.
 */
export async function startCli(config: unknown, args: string[] = [], file?: string): Promise<CliGateway> {
  const configFile = file ?? writeConfig(config);
  const proc = spawn(process.execPath, ['dist/core/cli.js', '--config', configFile, '--port', '0', '--admin-port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  // A bound, not a speed check: on a loaded 2-core machine (the suite runs files in parallel) a cluster start
  // with two workers has taken over 20 s.
  const deadline = Date.now() + 60_000;
  let port = 0;
  let adminPort = 0;
  while (Date.now() < deadline && (port === 0 || adminPort === 0)) {
    for (const line of out.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const j = JSON.parse(line) as { msg?: string; port?: number; adminPort?: number };
        if (j.msg === 'gateway listening' && j.port) port = j.port;
        if (j.msg === 'admin listening' && j.adminPort) adminPort = j.adminPort;
      } catch {
        /* partial line */
      }
    }
    if (proc.exitCode !== null) throw new Error(`gateway exited ${proc.exitCode}:\n${out}`);
    await sleep(25);
  }
  if (port === 0 || adminPort === 0) {
    proc.kill('SIGKILL');
    throw new Error(`gateway did not start:\n${out}`);
  }
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  while (Date.now() < deadline) {
    const r = await request(`${adminUrl}/ready`).catch(() => null);
    if (r?.status === 200) break;
    await sleep(25);
  }
  return {
    proc,
    port,
    adminPort,
    url: `http://127.0.0.1:${port}`,
    adminUrl,
    configFile,
    exited,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
