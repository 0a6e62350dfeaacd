import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startCli, writeConfig, type CliGateway } from '../support/cli.js';
import { request } from '../support/http.js';
import { eventually, until } from '../support/wait.js';
import { alive, configVersion, dir, everyWorkerReady, spawnCli, workers } from './primary-helpers.js';

/**
 * server.workerStartTimeoutMs, seen from the primary: a worker that never becomes ready is killed at the deadline,
 * at the first start and on a restart. Apart from primary-workers.test.ts, whose slowest tests these are, so the
 * two files run side by side.
 */
const running: CliGateway[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop('SIGKILL');
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
    await everyWorkerReady(gw);
    expect((await workers(gw))[0]!.restarts).toBeGreaterThanOrEqual(3);
  }, 120_000);
});
