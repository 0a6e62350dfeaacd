import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { dryRunTimedOut } from '../../core/data/runtime.js';
import { startCli, type CliGateway } from '../support/cli.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { eventually, until } from '../support/wait.js';

/**
 * What the process does with signals, uncaught exceptions and a hanging reload, in both shapes: one process
 * (`server.workers: 0`) and a primary with workers.
 */
const running: CliGateway[] = [];
const inProcess: RunningGateway[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop('SIGKILL');
  while (inProcess.length > 0) await inProcess.pop()!.close();
});

const dir = writePlugins(
  {
    // init takes `initMs` while the flag file exists (forever when initMs is -1); destroy leaves a file behind
    slow: `
import { existsSync, writeFileSync } from 'node:fs';
export default { name: 'slow', version: '1.0.0', async init(o) {
  if (existsSync(o.flag)) await new Promise((r) => { if (o.initMs >= 0) setTimeout(r, o.initMs); });
  return { destroy() { if (o.destroyed) writeFileSync(o.destroyed, 'destroyed'); } };
} };`,
    // GET /boom answers, then a timer of the plugin's own throws outside any hook
    boom: `
export default { name: 'boom', version: '1.0.0', init() {
  return { preHandler(ctx) { if (ctx.url === '/boom') { setTimeout(() => { throw new Error('thrown by a plugin timer'); }, 10); ctx.send(200, null, 'ok'); } } };
} };`,
  },
  'gw-process-control-',
);

const routes = [{ path: '/v', methods: ['GET'], response: { body: 'v' } }];
// the refused reloads below log "config reload rejected" by design; the reload results are what is asserted
const logging = { level: 'silent' };

describe('single process (workers: 0): a reload build has the deadline a cluster dry run has', () => {
  it('an init that never settles: the reload is refused at the deadline and the next one applies', async () => {
    const flag = join(dir, `never-${process.pid}`);
    const hanging = { logging, pluginDirs: [dir], plugins: [{ name: 'slow', options: { flag, initMs: -1 } }], routes };
    const gw = await startGateway(hanging, { reloadBuildTimeoutMs: 500 });
    inProcess.push(gw);
    writeFileSync(flag, '');
    try {
      const stuck = await gw.reload(hanging);
      expect(stuck).toEqual({ ok: false, version: 1, errors: [dryRunTimedOut(500)] });
      expect(gw.gateway.reloadError).toEqual([dryRunTimedOut(500)]);
    } finally {
      rmSync(flag);
    }
    const next = await gw.reload(hanging);
    expect(next).toEqual({ ok: true, version: 2, errors: [] });
    expect((await request(`${gw.url}/v`)).body).toBe('v');
  });

  it('a build that finishes after the deadline is disposed (its plugins destroyed), not left running', async () => {
    const flag = join(dir, `late-${process.pid}`);
    const destroyed = join(dir, `late-destroyed-${process.pid}`);
    rmSync(destroyed, { force: true });
    const gw = await startGateway({ logging, routes }, { reloadBuildTimeoutMs: 300 });
    inProcess.push(gw);
    writeFileSync(flag, '');
    try {
      const late = await gw.reload({ logging, pluginDirs: [dir], plugins: [{ name: 'slow', options: { flag, initMs: 800, destroyed } }], routes });
      expect(late.ok).toBe(false);
      await until(
        () => {
          try {
            rmSync(destroyed);
            return true;
          } catch {
            return false;
          }
        },
        { timeoutMs: 10_000, message: 'the late build destroyed' },
      );
    } finally {
      rmSync(flag, { force: true });
    }
  });
});

describe('SIGUSR2 does not end the gateway', () => {
  for (const workers of ['0', '2']) {
    it(`workers ${workers}: taken as "reopen the access log"; the gateway keeps serving and still drains on SIGTERM`, async () => {
      const gw = await startCli({ logging: { level: 'info', accessLog: false }, routes }, ['--workers', workers]);
      running.push(gw);
      gw.proc.kill('SIGUSR2');
      await until(() => gw.output().includes('SIGUSR2: reopening the access log file'), { timeoutMs: 10_000, message: 'the signal logged' });
      expect(gw.proc.exitCode).toBeNull();
      expect((await request(`${gw.url}/v`, { agent: false })).body).toBe('v');
      expect((await request(`${gw.adminUrl}/ready`, { agent: false })).status).toBe(200);
      expect(await gw.stop('SIGTERM')).toBe(0);
    }, 90_000);
  }
});

describe('an uncaught exception from plugin code outside a hook (a timer of its own)', () => {
  const cfg = {
    logging: { level: 'info', accessLog: false },
    pluginDirs: [dir],
    plugins: [{ name: 'boom' }],
    routes: [{ path: '/boom', methods: ['GET'], response: { body: 'never' } }],
  };
  const fatalLine = (gw: CliGateway): Record<string, unknown> | undefined =>
    gw
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.level === 60);

  it('workers 0: the process exits 1 with the cause in the JSON log (it used to be only a stack on stderr)', async () => {
    const gw = await startCli(cfg, ['--workers', '0']);
    running.push(gw);
    expect((await request(`${gw.url}/boom`, { agent: false })).body).toBe('ok');
    expect(await gw.exited).toBe(1);
    const fatal = fatalLine(gw);
    expect(fatal).toMatchObject({ origin: 'uncaughtException', err: { message: 'thrown by a plugin timer' } });
    expect(gw.output()).toContain('uncaughtException: Error: thrown by a plugin timer');
  }, 90_000);

  it('workers 2: the worker logs it and exits, and is replaced', async () => {
    const gw = await startCli(cfg, ['--workers', '2']);
    running.push(gw);
    expect((await request(`${gw.url}/boom`, { agent: false })).body).toBe('ok');
    const fatal = await eventually(() => fatalLine(gw), { timeoutMs: 15_000, message: 'the fatal line' });
    expect(fatal).toMatchObject({ origin: 'uncaughtException', err: { message: 'thrown by a plugin timer' } });
    expect(typeof fatal.worker).toBe('number');
    await until(() => gw.output().includes('"msg":"worker exited; restarting"'), { timeoutMs: 15_000, message: 'the worker replaced' });
    expect(gw.proc.exitCode).toBeNull();
  }, 90_000);
});
