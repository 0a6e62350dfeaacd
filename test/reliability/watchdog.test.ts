import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startCli, type CliGateway } from '../support/cli.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { freePort } from '../support/upstream.js';
import { eventually, until } from '../support/wait.js';

/**
 * A worker whose event loop stops (a plugin's busy loop), seen through the production CLI in cluster mode: the
 * primary's watchdog (server.watchdogMs) notices the missing heartbeat, kills and replaces the worker, and the
 * probes say what is going on meanwhile. Every wait is on something observable (a probe's status, a log line,
 * /stats); the bounds only stop a broken gateway from hanging the test.
 */
const running: CliGateway[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop('SIGKILL');
});

const WATCHDOG_MS = 2000;

const dir = writePlugins(
  {
    // GET /freeze spins forever in preHandler; GET /hold waits on plugin code for `holdMs` (so a heartbeat reports it)
    // and then spins. While `bootFlag` exists, a worker booting never finishes its init (never ready; the primary's
    // dry run, workerId -1, is spared).
    freeze: `
import { existsSync } from 'node:fs';
export default { name: 'freeze', version: '1.0.0', async init(o, api) {
  if (api.workerId >= 0 && o.bootFlag && existsSync(o.bootFlag)) await new Promise(() => {});
  return { async preHandler(ctx) {
    if (ctx.url === '/freeze') for (;;) {}
    if (ctx.url === '/hold') { await new Promise((r) => setTimeout(r, o.holdMs)); for (;;) {} }
  } };
} };`,
  },
  'gw-watchdog-',
);

function config(extra: { bootFlag?: string; server?: Record<string, unknown> } = {}): Record<string, unknown> {
  return {
    logging: { level: 'info', accessLog: false },
    server: { watchdogMs: WATCHDOG_MS, ...extra.server },
    pluginDirs: [dir],
    routes: [
      { path: '/v', methods: ['GET'], response: { body: 'v' } },
      { name: 'freeze', path: '/freeze', methods: ['GET'], response: { body: 'never' }, plugins: [{ name: 'freeze', options: { bootFlag: extra.bootFlag } }] },
      { name: 'hold', path: '/hold', methods: ['GET'], response: { body: 'never' }, plugins: [{ name: 'freeze', options: { holdMs: 1500 } }] },
    ],
  };
}

interface WorkerRow {
  id: number;
  pid: number;
  state: string;
  restarts: number;
  watchdogKills: number;
  responsive: boolean;
}

const status = async (url: string): Promise<number> => (await request(url, { agent: false, timeoutMs: 5000 })).status;
const workers = async (gw: CliGateway): Promise<WorkerRow[]> =>
  (JSON.parse((await request(`${gw.adminUrl}/stats`, { agent: false, timeoutMs: 5000 })).body) as { workers: WorkerRow[] }).workers;
const killLines = (gw: CliGateway): Array<Record<string, unknown>> =>
  gw
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes('server.watchdogMs'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
/** a fresh connection's GET /v: what a new client gets */
const fresh = (gw: CliGateway): Promise<string> => request(`${gw.url}/v`, { agent: false, timeoutMs: 2000 }).then((r) => r.body);

/**
 * One worker: the data-plane port must be a fixed one. The listening socket lives in the primary only while some
 * worker uses it, so with `--port 0` a replacement of the only worker would listen on a new ephemeral port.
 */
const oneWorker = async (): Promise<string[]> => ['--workers', '1', '--port', String(await freePort())];

function alive(gw: CliGateway): void {
  if (gw.proc.exitCode !== null) throw new Error(`primary exited ${gw.proc.exitCode}:\n${gw.output().slice(-2000)}`);
}

describe('a worker whose event loop freezes (server.watchdogMs)', () => {
  it('workers: 1: /ready 503 while it is frozen, /health stays 200 (the watchdog fixes it); killed, replaced, counted, and the log says where it froze', async () => {
    const gw = await startCli(config(), await oneWorker());
    running.push(gw);
    const before = (await workers(gw))[0]!;
    expect(before).toMatchObject({ state: 'ready', responsive: true, watchdogKills: 0 });
    expect(await status(`${gw.adminUrl}/health`)).toBe(200);

    // the one worker waits on plugin code (a heartbeat reports it), then spins
    const frozen = request(`${gw.url}/hold`, { agent: false, timeoutMs: 60_000 }).then(
      (r) => `answered ${r.status}`,
      (err: Error) => `failed: ${err.message}`,
    );
    const startedAt = Date.now();
    await until(async () => (await status(`${gw.adminUrl}/ready`)) === 503, {
      timeoutMs: 30_000,
      message: async () => `/ready 503 while the only worker is frozen: ${JSON.stringify(await workers(gw))}`,
    });
    // nothing can take a request, but the watchdog is about to fix that: no reason to restart the process
    expect(await status(`${gw.adminUrl}/health`)).toBe(200);

    await until(
      async () => {
        alive(gw);
        return (await fresh(gw)) === 'v';
      },
      { timeoutMs: 30_000, message: () => `a fresh request answered again:\n${gw.output().slice(-1500)}` },
    );
    const recoveredInMs = Date.now() - startedAt;
    expect(await frozen).toMatch(/^failed: /); // its connection died with the worker; it was never answered
    expect(await status(`${gw.adminUrl}/ready`)).toBe(200);
    expect(await status(`${gw.adminUrl}/health`)).toBe(200);

    const after = (await workers(gw))[0]!;
    expect(after).toMatchObject({ state: 'ready', responsive: true, watchdogKills: 1, restarts: 1 });
    expect(after.pid).not.toBe(before.pid);
    const metrics = (await request(`${gw.adminUrl}/metrics`, { agent: false })).body;
    expect(metrics).toContain('\ngateway_worker_watchdog_kills_total 1\n');

    const [kill, ...more] = killLines(gw);
    expect(more).toEqual([]);
    expect(kill).toMatchObject({
      level: 50,
      worker: 0,
      workerPid: before.pid,
      watchdogMs: WATCHDOG_MS,
      inFlight: 1,
      oldestRequest: { route: 'hold', plugin: 'freeze', hook: 'preHandler' },
    });
    expect(kill!.silentForMs).toBeGreaterThanOrEqual(WATCHDOG_MS);
    expect(typeof kill!.lastHeartbeatAt).toBe('string');
    // informative, not a bound: hold (1.5 s) + watchdog + restart, however loaded the machine is
    console.log(`workers 1: fresh requests answered again ${recoveredInMs} ms after the request that froze the worker`);
  }, 120_000);

  it('workers: 2: the frozen one is killed and replaced while the other serves; /ready stays 200', async () => {
    const gw = await startCli(config(), ['--workers', '2']);
    running.push(gw);
    const before = await workers(gw);
    const frozen = request(`${gw.url}/freeze`, { agent: false, timeoutMs: 60_000 }).catch(() => null);
    const readiness: number[] = [];
    const victim = await eventually(
      async () => {
        const now = await workers(gw);
        // the healthy worker keeps the node ready: a balancer in front must keep sending traffic
        readiness.push(await status(`${gw.adminUrl}/ready`));
        return now.find((w) => !w.responsive || w.watchdogKills > 0);
      },
      { timeoutMs: 30_000, message: async () => `one worker seen unresponsive: ${JSON.stringify(await workers(gw))}` },
    );
    const startedAt = Date.now();
    await until(
      async () => {
        alive(gw);
        readiness.push(await status(`${gw.adminUrl}/ready`));
        const now = await workers(gw);
        return now.every((w) => w.state === 'ready' && w.responsive) && now.some((w) => w.watchdogKills === 1);
      },
      { timeoutMs: 30_000, message: async () => `the frozen worker replaced: ${JSON.stringify(await workers(gw))}` },
    );
    expect(readiness.filter((s) => s !== 200)).toEqual([]);
    // every fresh connection is answered again, whichever worker the primary hands it to
    for (let i = 0; i < 6; i++) expect(await fresh(gw)).toBe('v');
    await frozen;
    const after = await workers(gw);
    const slot = after.find((w) => w.id === victim.id)!;
    expect(slot).toMatchObject({ watchdogKills: 1, restarts: 1 });
    expect(slot.pid).not.toBe(before.find((w) => w.id === victim.id)!.pid);
    const other = after.find((w) => w.id !== victim.id)!;
    expect(other).toMatchObject({ watchdogKills: 0, restarts: 0, pid: before.find((w) => w.id === other.id)!.pid });
    expect((await request(`${gw.adminUrl}/metrics`, { agent: false })).body).toContain('\ngateway_worker_watchdog_kills_total 1\n');
    expect(killLines(gw)).toHaveLength(1);
    console.log(`workers 2: replaced ${Date.now() - startedAt} ms after it was first seen unresponsive`);
  }, 120_000);

  it('/health answers 503 once no worker could take a request for longer than the watchdog can fix, and 200 when one serves again', async () => {
    const bootFlag = join(dir, `boot-freezes-${process.pid}`);
    rmSync(bootFlag, { force: true });
    // Started with the default start deadline (a loaded machine boots slowly); the short one comes by hot reload,
    // like a config change would bring it.
    const gw = await startCli(config({ bootFlag }), await oneWorker());
    running.push(gw);
    writeFileSync(gw.configFile, JSON.stringify(config({ bootFlag, server: { workerStartTimeoutMs: 5000 } })));
    await until(async () => (JSON.parse((await request(`${gw.adminUrl}/stats`, { agent: false })).body) as { configVersion: number }).configVersion === 2, {
      timeoutMs: 30_000,
      message: 'the short start deadline applied',
    });
    // from now on every replacement hangs while it boots: no kill of the watchdog can help
    writeFileSync(bootFlag, '');
    void request(`${gw.url}/freeze`, { agent: false, timeoutMs: 60_000 }).catch(() => null);
    await until(async () => (await status(`${gw.adminUrl}/ready`)) === 503, { timeoutMs: 30_000, message: '/ready 503' });
    // the window (watchdogMs + the longest restart backoff, 10 s, + workerStartTimeoutMs: 17 s) has just begun
    expect(await status(`${gw.adminUrl}/health`)).toBe(200);
    await until(
      async () => {
        alive(gw);
        return (await status(`${gw.adminUrl}/health`)) === 503;
      },
      { timeoutMs: 60_000, message: async () => `/health 503: ${JSON.stringify(await workers(gw))}\n${gw.output().slice(-1500)}` },
    );
    expect((await request(`${gw.adminUrl}/health`, { agent: false })).body).toContain('unresponsive');
    expect(killLines(gw)).toHaveLength(1);
    expect(gw.output()).toContain('worker did not become ready within server.workerStartTimeoutMs');

    rmSync(bootFlag);
    await until(
      async () => {
        alive(gw);
        return (await status(`${gw.adminUrl}/health`)) === 200 && (await status(`${gw.adminUrl}/ready`)) === 200;
      },
      { timeoutMs: 60_000, message: async () => `serving again: ${JSON.stringify(await workers(gw))}` },
    );
    expect(await fresh(gw)).toBe('v');
  }, 150_000);

  it('a reload turns the watchdog on (started with 0: off)', async () => {
    const gw = await startCli(config({ server: { watchdogMs: 0 } }), await oneWorker());
    running.push(gw);
    const reload = async (watchdogMs: number, version: number): Promise<void> => {
      writeFileSync(gw.configFile, JSON.stringify(config({ server: { watchdogMs } })));
      await until(
        async () => (JSON.parse((await request(`${gw.adminUrl}/stats`, { agent: false })).body) as { configVersion: number }).configVersion === version,
        {
          timeoutMs: 30_000,
          message: `config version ${version}`,
        },
      );
    };
    await reload(WATCHDOG_MS, 2);
    void request(`${gw.url}/freeze`, { agent: false, timeoutMs: 60_000 }).catch(() => null);
    await until(async () => (await workers(gw))[0]!.watchdogKills === 1 && (await fresh(gw)) === 'v', {
      timeoutMs: 30_000,
      message: async () => `killed and replaced once the reload turned the watchdog on: ${JSON.stringify(await workers(gw))}`,
    });
  }, 120_000);
});
