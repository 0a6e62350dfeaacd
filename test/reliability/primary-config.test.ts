import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigFile, MAX_CONFIG_BYTES } from '../../core/config/loader.js';
import { DRY_RUN_TIMEOUT_MS } from '../../core/control/orchestrator.js';
import { startCli, withGatewayState, writeConfig, type CliGateway } from '../support/cli.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { until } from '../support/wait.js';

/**
 * The config file as hostile input to the primary (cluster mode): the watcher, SIGHUP and POST /config/reload
 * all read it synchronously in the primary, so a file that cannot be read must be an error, never a wait.
 */
const running: CliGateway[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop('SIGKILL');
});

const config = (body: string): unknown => ({
  logging: { level: 'info', accessLog: false },
  routes: [{ path: '/v', methods: ['GET'], response: { body } }],
});

const tmp = (): string => mkdtempSync(join(tmpdir(), 'gw-primary-config-'));

describe('loadConfigFile refuses what is not a config file, without reading it', () => {
  it('a FIFO, a directory, a symlink loop, an oversized file, bytes that are not UTF-8', () => {
    const dir = tmp();
    const fifo = join(dir, 'fifo.json');
    execFileSync('mkfifo', [fifo]);
    const folder = join(dir, 'folder.json');
    mkdirSync(folder);
    symlinkSync(join(dir, 'loop-b.json'), join(dir, 'loop-a.json'));
    symlinkSync(join(dir, 'loop-a.json'), join(dir, 'loop-b.json'));
    const huge = join(dir, 'huge.json');
    writeFileSync(huge, '');
    truncateSync(huge, 100 * 1024 * 1024); // sparse: 100 MB on paper, nothing on disk
    const latin1 = join(dir, 'latin1.json');
    writeFileSync(
      latin1,
      Buffer.concat([Buffer.from('{"routes":[{"path":"/v","methods":["GET"],"response":{"body":"caf'), Buffer.from([0xe9]), Buffer.from('"}}]}')]),
    );

    const errors = (file: string): string[] => {
      const r = loadConfigFile(file);
      return r.ok ? [] : r.errors;
    };
    expect(errors(fifo)).toEqual([`/: cannot read ${fifo}: not a regular file (a FIFO)`]);
    expect(errors(folder)).toEqual([`/: cannot read ${folder}: not a regular file (a directory)`]);
    expect(errors(join(dir, 'loop-a.json'))).toEqual([`/: cannot read ${join(dir, 'loop-a.json')}: ELOOP`]);
    expect(errors(huge)).toEqual([`/: cannot read ${huge}: ${100 * 1024 * 1024} bytes, more than the ${MAX_CONFIG_BYTES} a config file may have`]);
    expect(errors(latin1)).toEqual([`/: cannot read ${latin1}: not valid UTF-8`]);
  });
});

describe('the primary watching a config file that turns hostile', () => {
  it('replaced by a FIFO nobody writes: admin keeps answering, the reload is rejected, a valid file is applied after', async () => {
    const dir = tmp();
    const file = writeConfig(config('one'), dir);
    const gw = await startCli(null, ['--workers', '1'], file);
    running.push(gw);
    expect((await request(`${gw.url}/v`, { agent: false })).body).toBe('one');

    rmSync(file);
    execFileSync('mkfifo', [file]);
    // The watcher sees the swap and reads: with a blocking read the primary's event loop stopped here for good.
    await until(() => gw.output().includes('not a regular file (a FIFO)'), { timeoutMs: 15_000, message: () => `FIFO rejected:\n${gw.output().slice(-1500)}` });
    expect((await request(`${gw.adminUrl}/ready`, { agent: false, timeoutMs: 3000 })).status).toBe(200);
    const reload = await request(`${gw.adminUrl}/config/reload`, { method: 'POST', agent: false, timeoutMs: 3000 });
    expect(reload.status).toBe(400);
    expect(JSON.parse(reload.body)).toMatchObject({ ok: false, errors: [`/: cannot read ${file}: not a regular file (a FIFO)`] });
    gw.proc.kill('SIGHUP');
    expect((await request(`${gw.adminUrl}/health`, { agent: false, timeoutMs: 3000 })).status).toBe(200);
    // the running config keeps serving
    expect((await request(`${gw.url}/v`, { agent: false })).body).toBe('one');

    rmSync(file);
    const next = join(dir, 'next.json');
    writeFileSync(next, JSON.stringify(config('two')));
    renameSync(next, file);
    await until(async () => (await request(`${gw.url}/v`, { agent: false })).body === 'two', { timeoutMs: 15_000, message: 'the valid file applied' });
    expect(gw.proc.exitCode).toBeNull();
  }, 90_000);
});

describe('a reload whose dry run never finishes (a plugin init that hangs in the primary)', () => {
  it('is rejected at the dry-run deadline, and the reloads after it are not held behind it', async () => {
    const flag = join(tmp(), 'stall');
    const plugins = writePlugins(
      {
        // Hangs its init in the primary's dry run (workerId -1) while the flag file exists; workers never hang.
        stall: `
import { existsSync } from 'node:fs';
export default { name: 'stall', version: '1.0.0', init(o, api) {
  if (api.workerId < 0 && existsSync(o.flag)) return new Promise(() => undefined);
  return {};
} };`,
      },
      'gw-primary-stall-',
    );
    const cfg = { ...(config('one') as object), pluginDirs: [plugins], plugins: [{ name: 'stall', options: { flag } }] };
    const gw = await startCli(cfg, ['--workers', '1']);
    running.push(gw);
    writeFileSync(flag, '');
    const started = Date.now();
    // Before the fix this request never got an answer, and neither did any reload after it.
    const stuck = await withGatewayState(gw, request(`${gw.adminUrl}/config/reload`, { method: 'POST', agent: false, timeoutMs: DRY_RUN_TIMEOUT_MS + 20_000 }));
    expect(stuck.status).toBe(400);
    expect(JSON.parse(stuck.body)).toMatchObject({
      ok: false,
      errors: [`/: the dry run of the new config did not finish within ${DRY_RUN_TIMEOUT_MS} ms (a plugin's module load or init hangs)`],
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(DRY_RUN_TIMEOUT_MS - 100);
    rmSync(flag);
    const next = await withGatewayState(gw, request(`${gw.adminUrl}/config/reload`, { method: 'POST', agent: false, timeoutMs: 10_000 }));
    expect(next.status).toBe(200);
    expect(JSON.parse(next.body)).toMatchObject({ ok: true, version: 2 });
  }, 120_000);
});
