import { spawn } from 'node:child_process';
import { closeSync, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ConfigWatcher } from '../../core/config/loader.js';
import type { GatewayConfig } from '../../core/config/types.js';
import { startCli, withGatewayState, type CliGateway } from '../support/cli.js';
import { request } from '../support/http.js';
import { eventually, sleep, until } from '../support/wait.js';

/**
 * The three ways a config file changes under a running gateway: kubelet's ConfigMap update (a symlink swap,
 * nothing named gateway.json changes), an editor's write-and-rename, an in-place write; plus a write that is
 * read half-done. Real files in a temp dir, the layout kubelet's AtomicWriter builds
 * (kubernetes pkg/volume/util/atomic_writer.go).
 */

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const configText = (body: string): string =>
  JSON.stringify({ logging: { level: 'info', accessLog: false }, routes: [{ path: '/v', methods: ['GET'], response: { body } }] }, null, 2);

/** A ConfigMap volume as kubelet mounts it: `gateway.json -> ..data/gateway.json`, `..data -> ..<timestamp>`. */
class KubeletVolume {
  readonly dir = mkdtempSync(join(tmpdir(), 'gw-configmap-'));
  readonly file = join(this.dir, 'gateway.json');
  private current: string;
  private generation = 0;

  constructor(text: string) {
    dirs.push(this.dir);
    this.current = this.writeFolder(text);
    symlinkSync(this.current, join(this.dir, '..data'));
    symlinkSync('..data/gateway.json', this.file);
  }

  /** AtomicWriter's update: new timestamped folder, `..data_tmp` symlink renamed over `..data`, old folder removed. */
  update(text: string): void {
    const next = this.writeFolder(text);
    symlinkSync(next, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    rmSync(join(this.dir, this.current), { recursive: true });
    this.current = next;
  }

  private writeFolder(text: string): string {
    this.generation += 1;
    const name = `..2026_11_29_01_02_0${this.generation}.${100 + this.generation}`;
    mkdirSync(join(this.dir, name));
    writeFileSync(join(this.dir, name, 'gateway.json'), text);
    return name;
  }
}

/** An editor's save: write a temp file next to the config, rename it over the config (a new inode). */
function writeAndRename(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

function plainFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gw-watch-'));
  dirs.push(dir);
  const file = join(dir, 'gateway.json');
  writeFileSync(file, text);
  return file;
}

describe('ConfigWatcher: events alone (poll off) see every kind of update', () => {
  const watchers: ConfigWatcher[] = [];
  afterEach(() => {
    while (watchers.length > 0) watchers.pop()!.close();
  });

  function watchBodies(file: string, pollIntervalMs = 0): { bodies: string[]; invalid: string[][]; restored: number } {
    const w = new ConfigWatcher(file, undefined, { pollIntervalMs });
    watchers.push(w);
    const seen = { bodies: [] as string[], invalid: [] as string[][], restored: 0 };
    w.on('change', (c: GatewayConfig) => seen.bodies.push(String(c.routes[0]!.response!.body)));
    w.on('invalid', (errors) => seen.invalid.push(errors));
    w.on('restored', () => seen.restored++);
    w.start();
    return seen;
  }

  it('kubelet ConfigMap updates, twice (the second after the first folder is gone)', async () => {
    const volume = new KubeletVolume(configText('a'));
    const seen = watchBodies(volume.file);
    volume.update(configText('b'));
    await until(() => seen.bodies.at(-1) === 'b', { message: () => `first kubelet update seen (bodies: ${seen.bodies.join()})` });
    volume.update(configText('c'));
    await until(() => seen.bodies.at(-1) === 'c', { message: () => `second kubelet update seen (bodies: ${seen.bodies.join()})` });
    expect(seen.bodies).toEqual(['b', 'c']);
    expect(seen.invalid).toEqual([]);
  });

  it('an in-place write through the symlink (lands in the timestamped folder) is seen', async () => {
    const volume = new KubeletVolume(configText('a'));
    const seen = watchBodies(volume.file);
    writeFileSync(volume.file, configText('w'));
    await until(() => seen.bodies.at(-1) === 'w', { message: () => `write through the symlink seen (bodies: ${seen.bodies.join()})` });
  });

  it("an editor's write-and-rename, then an in-place write", async () => {
    const file = plainFile(configText('a'));
    const seen = watchBodies(file);
    writeAndRename(file, configText('b'));
    await until(() => seen.bodies.at(-1) === 'b', { message: () => `rename seen (bodies: ${seen.bodies.join()})` });
    writeFileSync(file, configText('c'));
    await until(() => seen.bodies.at(-1) === 'c', { message: () => `in-place write seen (bodies: ${seen.bodies.join()})` });
  });

  it('unrelated files in the folder and a rewrite with the same content are not reloads', async () => {
    const file = plainFile(configText('a'));
    const seen = watchBodies(file);
    writeFileSync(`${file}.swp`, 'editor state');
    writeFileSync(file, configText('a'));
    // the marker: a real change after the noise; had the noise been a reload, 'a' would come first
    await sleep(300);
    writeFileSync(file, configText('m'));
    await until(() => seen.bodies.length > 0, { message: 'the marker change seen' });
    expect(seen.bodies).toEqual(['m']);
  });

  it('a folder that never goes quiet (a file next to the config written every 20 ms) does not postpone a reload forever', async () => {
    const file = plainFile(configText('a'));
    const seen = watchBodies(file);
    let n = 0;
    const noise = setInterval(() => writeFileSync(`${file}.log`, String(n++)), 20);
    try {
      writeFileSync(file, configText('q'));
      await until(() => seen.bodies.at(-1) === 'q', { message: 'the change seen while the folder keeps changing' });
    } finally {
      clearInterval(noise);
    }
  });

  it('a bad file is rejected once however many folder events follow; putting the config in force back says so once', async () => {
    const file = plainFile(configText('a'));
    const seen = watchBodies(file, 50);
    writeFileSync(file, '{ "routes": [');
    await until(() => seen.invalid.length > 0, { message: 'the bad save rejected' });
    // a log file beside the config, written every 10 ms: each write is a folder event
    const log = `${file}.log`;
    for (let i = 0; i < 100; i++) {
      writeFileSync(log, `line ${i}\n`, { flag: 'a' });
      await sleep(10);
    }
    writeFileSync(file, '{ "routes": ['); // the same bad content saved again: nothing new to say
    await sleep(300);
    expect(seen.invalid).toHaveLength(1);
    expect(seen.restored).toBe(0);
    writeAndRename(file, configText('a'));
    await until(() => seen.restored === 1, { message: 'the file back at the config in force' });
    writeFileSync(file, '[]');
    await until(() => seen.invalid.length === 2, { message: 'a different bad content is a new rejection' });
    expect(seen.invalid[1]![0]).toMatch(/^\/: must be object/);
    expect(seen.bodies).toEqual([]);
  });

  it('a rejected file is rejected once, though the folder keeps changing (a log written next to it)', async () => {
    const file = plainFile(configText('a'));
    const seen = watchBodies(file);
    writeFileSync(file, '{ "routes": "not a list" }');
    await until(() => seen.invalid.length > 0, { message: 'the invalid file rejected' });
    // what the rejection's own log line did when the log sat in the config's folder: more events
    for (let i = 0; i < 5; i++) {
      writeFileSync(`${file}.log`, String(i));
      await sleep(150);
    }
    // the marker: a valid change after the noise is still seen
    writeFileSync(file, configText('r'));
    await until(() => seen.bodies.at(-1) === 'r', { message: 'the fixed file applied' });
    expect(seen.invalid).toHaveLength(1);
  });

  it('the poll catches a change no folder event reports (a write through a hard link in another folder)', async () => {
    const file = plainFile(configText('a'));
    const elsewhere = mkdtempSync(join(tmpdir(), 'gw-watch-link-'));
    dirs.push(elsewhere);
    linkSync(file, join(elsewhere, 'link.json'));
    // Poll off first: inotify reports a write to the folder the file was opened through, so nothing comes.
    const deaf = watchBodies(file, 0);
    const polled = watchBodies(file, 50);
    writeFileSync(join(elsewhere, 'link.json'), configText('h'));
    await until(() => polled.bodies.at(-1) === 'h', { message: 'the poll saw the write' });
    expect(deaf.bodies).toEqual([]);
  });
});

describe('a running gateway follows its config file (real HTTP)', () => {
  let gw: CliGateway | null = null;
  afterEach(async () => {
    await gw?.stop('SIGKILL');
    gw = null;
  });
  const body = async (): Promise<string> => (await request(`${gw!.url}/v`)).body;
  const serves = (expected: string, what: string) => until(async () => (await body()) === expected, { message: `${what}: serves ${expected}` });

  it('a kubelet ConfigMap update, twice', async () => {
    const volume = new KubeletVolume(configText('a'));
    gw = await startCli(undefined, ['--workers', '0'], volume.file);
    expect(await body()).toBe('a');
    volume.update(configText('b'));
    await serves('b', 'first kubelet update');
    volume.update(configText('c'));
    await serves('c', 'second kubelet update');
  });

  it("an editor's write-and-rename and an in-place write, with workers", async () => {
    const file = plainFile(configText('a'));
    gw = await startCli(undefined, ['--workers', '2'], file);
    writeAndRename(file, configText('b'));
    await serves('b', 'write-and-rename');
    writeFileSync(file, configText('c'));
    await serves('c', 'in-place write');
  }, 60_000);

  it('a file written in two chunks with a pause: the half is rejected and logged, then the whole is applied', async () => {
    const file = plainFile(configText('a'));
    gw = await startCli(undefined, ['--workers', '0'], file);
    const text = configText('z');
    const fd = openSync(file, 'w'); // truncates: the in-place write a careless editor or `cat > file` does
    try {
      writeSync(fd, text.slice(0, text.length >> 1));
      await until(() => gw!.output().includes('config file rejected'), { message: 'the half-written file rejected' });
      // the rejected half changed nothing: the old config keeps serving
      expect(await body()).toBe('a');
      writeSync(fd, text.slice(text.length >> 1));
    } finally {
      closeSync(fd);
    }
    await serves('z', 'the completed write');
    const rejected = gw
      .output()
      .split('\n')
      .find((l) => l.includes('config file rejected'))!;
    expect(JSON.parse(rejected).errors[0]).toMatch(/^\/: invalid JSON in .*gateway\.json at line \d+, column \d+/);
  });
});

describe('the gateway logging into the folder of its own config', () => {
  // stdout and stderr appended to a file beside gateway.json, as `ts-gateway --config /etc/gw/gateway.json >> /etc/gw/gw.log` does
  for (const workers of ['0', '2']) {
    it(`one bad save: exactly one rejection line in 10 s, and putting the file back clears the reload error (workers ${workers})`, async () => {
      const file = plainFile(configText('a'));
      const logFile = join(file, '..', 'gateway.log');
      const fd = openSync(logFile, 'a');
      const proc = spawn(process.execPath, ['dist/core/cli.js', '--config', file, '--port', '0', '--admin-port', '0', '--workers', workers], {
        stdio: ['ignore', fd, fd],
      });
      closeSync(fd);
      const lines = (): Array<Record<string, unknown>> =>
        readFileSync(logFile, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>);
      const rejections = (): number => lines().filter((l) => String(l.msg).includes('rejected; previous config keeps serving')).length;
      try {
        const adminPort = await eventually(() => lines().find((l) => l.msg === 'admin listening')?.adminPort as number | undefined, {
          timeoutMs: 60_000,
          message: () => `the gateway starts:\n${readFileSync(logFile, 'utf8').slice(-2000)}`,
        });
        const gateway = { proc, output: () => readFileSync(logFile, 'utf8') };
        const stats = async (): Promise<{ lastReloadError: string[] | null }> =>
          JSON.parse((await withGatewayState(gateway, request(`http://127.0.0.1:${adminPort}/stats`, { agent: false }))).body) as {
            lastReloadError: string[] | null;
          };
        writeFileSync(file, '{ "routes": [ oops');
        await until(() => rejections() > 0, { timeoutMs: 15_000, message: 'the bad save rejected' });
        const rejected = lines().find((l) => String(l.msg).includes('rejected; previous config keeps serving'))!;
        expect(rejected.msg).toBe('config file rejected; previous config keeps serving');
        // ten seconds of the gateway's own writes landing beside its config (the admin API logs nothing per request, so the rejection line itself is the only trigger there is, as in the field)
        const until10s = Date.now() + 10_000;
        while (Date.now() < until10s) {
          expect((await stats()).lastReloadError).not.toBeNull();
          await sleep(250);
        }
        expect(rejections()).toBe(1);
        writeAndRename(file, configText('a'));
        await until(async () => (await stats()).lastReloadError === null, { timeoutMs: 15_000, message: 'the red banner gone once the file is back' });
        expect(rejections()).toBe(1);
        expect(proc.exitCode).toBeNull();
      } finally {
        proc.kill('SIGKILL');
      }
    }, 90_000);
  }
});
