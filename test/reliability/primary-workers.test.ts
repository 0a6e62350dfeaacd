import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startCli, writeConfig, type CliGateway } from '../support/cli.js';
import { request } from '../support/http.js';
import { eventually, until } from '../support/wait.js';
import { alive, dir, everyWorkerReady, spawnCli, workers, type WorkerRow } from './primary-helpers.js';

/**
 * Workers that misbehave, seen from the primary (cluster mode): whatever a worker does, the primary stays up,
 * keeps every slot filled (with backoff) and keeps answering the admin API. A worker that never becomes ready is
 * in worker-start-timeout.test.ts.
 */
const running: CliGateway[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop('SIGKILL');
});

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
    await everyWorkerReady(gw);
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
