import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startCli, writeConfig, type CliGateway } from '../support/cli.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { eventually, until } from '../support/wait.js';

/**
 * Workers that misbehave, seen from the primary (cluster mode): whatever a worker does, the primary stays up,
 * keeps every slot filled (with backoff) and keeps answering the admin API.
 */
const running: CliGateway[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop('SIGKILL');
});

const dir = writePlugins(
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

interface WorkerRow {
  id: number;
  pid: number;
  state: string;
  restarts: number;
  configVersion: number;
}
const workers = async (gw: CliGateway): Promise<WorkerRow[]> =>
  (JSON.parse((await request(`${gw.adminUrl}/stats`, { agent: false, timeoutMs: 5000 })).body) as { workers: WorkerRow[] }).workers;

const configVersion = async (gw: CliGateway): Promise<number> =>
  (JSON.parse((await request(`${gw.adminUrl}/stats`, { agent: false })).body) as { configVersion: number }).configVersion;

function alive(gw: CliGateway): void {
  if (gw.proc.exitCode !== null) throw new Error(`primary exited ${gw.proc.exitCode}:\n${gw.output().slice(-2000)}`);
}

/** The production CLI before it listens (startCli resolves only once it does): the process and its JSON log lines. */
function spawnCli(file: string): { proc: ChildProcess; lines: () => Array<Record<string, unknown>>; output: () => string } {
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

describe('a worker that keeps dying while it boots (crash loop)', () => {
  it('is restarted again and again with growing delays, and serves once the cause is gone', async () => {
    const flag = join(dir, 'crash-flag');
    rmSync(flag, { force: true });
    const gw = await startCli(
      {
        logging: { level: 'info', accessLog: false },
        pluginDirs: [dir],
        plugins: [{ name: 'crashy', options: { flag } }],
        routes: [{ path: '/v', methods: ['GET'], response: { body: 'v' } }],
      },
      ['--workers', '2'],
    );
    running.push(gw);
    await until(async () => (await workers(gw)).every((w) => w.state === 'ready'), { timeoutMs: 30_000, message: 'both workers ready' });
    const victim = (await workers(gw))[0]!;
    writeFileSync(flag, '');
    const started = Date.now();
    process.kill(victim.pid, 'SIGKILL');
    // Before the fix the first restart that died while booting was the last: the slot stayed "exited" for good.
    await until(
      async () => {
        alive(gw);
        return (await workers(gw))[0]!.restarts >= 4;
      },
      { timeoutMs: 60_000, message: async () => `slot 0 restarted 4 times: ${JSON.stringify(await workers(gw))}` },
    );
    const elapsed = Date.now() - started;
    const { restarts } = (await workers(gw))[0]!;
    // Backoff holds: delays 100, 200, 400 … ms, so n restarts need at least 100 × (2^(n-1) - 1) ms.
    expect(restarts).toBeLessThanOrEqual(Math.floor(Math.log2(elapsed / 100 + 1)) + 1);
    // the other worker was never touched, and the admin API and the data plane answer throughout
    expect((await workers(gw))[1]!.restarts).toBe(0);
    expect((await request(`${gw.adminUrl}/ready`, { agent: false })).status).toBe(200);
    expect((await request(`${gw.url}/v`, { agent: false })).body).toBe('v');

    rmSync(flag);
    await until(
      async () => {
        alive(gw);
        return (await workers(gw)).every((w) => w.state === 'ready');
      },
      { timeoutMs: 60_000, message: async () => `slot 0 serving again: ${JSON.stringify(await workers(gw))}` },
    );
    expect(gw.output()).toContain('worker restart failed');
  }, 150_000);
});

describe('a worker that dies while another is still booting (the gateway not started yet)', () => {
  it('is restarted like one that dies later', async () => {
    const gate = join(dir, 'gate-1');
    writeFileSync(gate, '');
    const file = writeConfig({
      logging: { level: 'info', accessLog: false },
      pluginDirs: [dir],
      plugins: [{ name: 'gate', options: { gate } }],
      routes: [{ path: '/v', methods: ['GET'], response: { body: 'v' } }],
    });
    const { proc, lines, output } = spawnCli(file);
    try {
      const firstReady = await eventually(() => lines().find((l) => l.msg === 'worker ready' && l.worker === 0), {
        timeoutMs: 60_000,
        message: () => `worker 0 ready:\n${output()}`,
      });
      process.kill(firstReady.workerPid as number, 'SIGKILL');
      await until(() => output().includes('worker exited'), { timeoutMs: 10_000, message: () => `worker 0's exit seen:\n${output()}` });
      rmSync(gate);
      const adminPort = await eventually(() => lines().find((l) => l.msg === 'admin listening')?.adminPort as number | undefined, {
        timeoutMs: 60_000,
        message: () => `admin listening:\n${output()}`,
      });
      // Before the fix slot 0 stayed "exited" for good: nothing restarts a worker before start() has resolved.
      let last: WorkerRow[] = [];
      await until(
        async () => {
          if (proc.exitCode !== null) throw new Error(`primary exited ${proc.exitCode}:\n${output()}`);
          last = (JSON.parse((await request(`http://127.0.0.1:${adminPort}/stats`, { agent: false })).body) as { workers: WorkerRow[] }).workers;
          return last.every((w) => w.state === 'ready') && last[0]!.pid !== firstReady.workerPid;
        },
        { timeoutMs: 60_000, message: () => `both slots serving: ${JSON.stringify(last)}` },
      );
      expect(last[0]!.restarts).toBe(1);
    } finally {
      proc.kill('SIGKILL');
      rmSync(gate, { force: true });
    }
  }, 150_000);
});

describe('SIGHUP while the gateway starts', () => {
  it('does not end the primary (the default action); the reload runs once the gateway serves', async () => {
    const gate = join(dir, 'gate-1');
    writeFileSync(gate, '');
    const file = writeConfig({
      logging: { level: 'info', accessLog: false },
      pluginDirs: [dir],
      plugins: [{ name: 'gate', options: { gate } }],
      routes: [{ path: '/v', methods: ['GET'], response: { body: 'v' } }],
    });
    const { proc, lines, output } = spawnCli(file);
    try {
      await until(() => lines().some((l) => l.msg === 'worker ready' && l.worker === 0), { timeoutMs: 60_000, message: () => `worker 0 ready:\n${output()}` });
      // worker 1 is held in its init: the primary is inside orchestrator.start()
      proc.kill('SIGHUP');
      await until(() => output().includes('SIGHUP while starting') || proc.exitCode !== null || proc.signalCode !== null, {
        timeoutMs: 10_000,
        message: () => `SIGHUP handled:\n${output()}`,
      });
      expect({ code: proc.exitCode, signal: proc.signalCode }).toEqual({ code: null, signal: null });
      rmSync(gate);
      const adminPort = await eventually(() => lines().find((l) => l.msg === 'admin listening')?.adminPort as number | undefined, {
        timeoutMs: 60_000,
        message: () => `admin listening:\n${output()}`,
      });
      // the deferred reload: a second config version, pushed to both workers
      await until(
        async () => {
          const s = JSON.parse((await request(`http://127.0.0.1:${adminPort}/stats`, { agent: false })).body) as { configVersion: number };
          return s.configVersion === 2;
        },
        { timeoutMs: 30_000, message: () => `config version 2 after the deferred SIGHUP:\n${output().slice(-1500)}` },
      );
      expect(proc.exitCode).toBeNull();
    } finally {
      proc.kill('SIGKILL');
      rmSync(gate, { force: true });
    }
  }, 150_000);
});

describe('a worker that never becomes ready (server.workerStartTimeoutMs)', () => {
  const config = (flag: string, workerStartTimeoutMs: number): Record<string, unknown> => ({
    logging: { level: 'info', accessLog: false },
    server: { workerStartTimeoutMs },
    pluginDirs: [dir],
    plugins: [{ name: 'stuck', options: { flag } }],
    routes: [{ path: '/v', methods: ['GET'], response: { body: 'v' } }],
  });

  it('at first start: killed at the deadline, and the gateway exits 1 saying why (it used to wait forever)', async () => {
    const flag = join(dir, 'stuck-first');
    writeFileSync(flag, '');
    // every worker hangs, so the deadline decides however loaded the machine is
    const cli = spawnCli(writeConfig(config(flag, 1500)));
    try {
      const code = await eventually(() => cli.proc.exitCode ?? undefined, {
        timeoutMs: 30_000,
        message: () => `the gateway exits:\n${cli.output().slice(-1500)}`,
      });
      expect(code).toBe(1);
      expect(cli.output()).toContain('did not become ready within 1500 ms (server.workerStartTimeoutMs)');
    } finally {
      cli.proc.kill('SIGKILL');
      rmSync(flag, { force: true });
    }
  }, 60_000);

  it('on a restart: killed at the deadline and restarted with backoff, until it boots', async () => {
    const flag = join(dir, 'stuck-restart');
    rmSync(flag, { force: true });
    // Started with the default deadline: a loaded machine (the full suite) has taken over 20 s to boot two
    // workers. The short one comes with a hot reload (the setting applies to the next worker start).
    const gw = await startCli(config(flag, 60_000), ['--workers', '2']);
    running.push(gw);
    await until(async () => (await workers(gw)).every((w) => w.state === 'ready'), { timeoutMs: 30_000, message: 'both workers ready' });
    writeFileSync(gw.configFile, JSON.stringify(config(flag, 5000)));
    await until(async () => (await workers(gw)).every((w) => w.configVersion === 2), { timeoutMs: 30_000, message: 'the reload applied' });
    writeFileSync(flag, '');
    process.kill((await workers(gw))[0]!.pid, 'SIGKILL');
    await until(
      async () => {
        alive(gw);
        return gw.output().split('worker did not become ready within server.workerStartTimeoutMs').length - 1 >= 2;
      },
      { timeoutMs: 45_000, message: async () => `two boots killed at the deadline: ${JSON.stringify(await workers(gw))}` },
    );
    expect((await request(`${gw.url}/v`, { agent: false })).body).toBe('v');
    // The boot that recovers gets the default deadline back first: judged by the 5 s one, a loaded machine's
    // ordinary boot was killed again and again (backoff growing each time; the test once took 77 s).
    writeFileSync(gw.configFile, JSON.stringify(config(flag, 60_000)));
    await until(async () => (await configVersion(gw)) === 3, { timeoutMs: 30_000, message: 'the default deadline reloaded' });
    rmSync(flag);
    await until(
      async () => {
        alive(gw);
        return (await workers(gw)).every((w) => w.state === 'ready');
      },
      { timeoutMs: 60_000, message: async () => `slot 0 serving again: ${JSON.stringify(await workers(gw))}` },
    );
    expect((await workers(gw))[0]!.restarts).toBeGreaterThanOrEqual(3);
  }, 120_000);
});
