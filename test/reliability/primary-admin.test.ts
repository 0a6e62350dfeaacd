import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_STREAM_BACKLOG_BYTES } from '../../core/admin/dashboard.js';
import { AdminServer } from '../../core/admin/server.js';
import { inProcessAdminSource, startGateway } from '../../core/control/gateway.js';
import { startCli, writeConfig, type CliGateway } from '../support/cli.js';
import { request } from '../support/http.js';
import { sleep, until } from '../support/wait.js';

/** The admin API as hostile input to the primary (cluster mode), where it runs. */
const running: CliGateway[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop('SIGKILL');
});

interface Stream {
  events: string[];
  /** resolves once the first event (history) arrived: the server has subscribed this client */
  subscribed: Promise<void>;
  close(): void;
}

/** A dashboard page's event stream, counting the events it receives. */
function openEvents(adminUrl: string): Stream {
  const events: string[] = [];
  let req: http.ClientRequest | null = null;
  const subscribed = new Promise<void>((resolve, reject) => {
    req = http.get(`${adminUrl}/dashboard/events`, { agent: false }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        for (let i = buf.indexOf('\n\n'); i !== -1; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const name = /^event: (\w+)$/m.exec(block)?.[1];
          if (name !== undefined) events.push(name);
          if (name === 'history') resolve();
        }
      });
      res.on('error', () => undefined);
    });
    req.on('error', reject);
  });
  return { events, subscribed, close: () => req?.destroy() };
}

describe('dashboard clients that come and go while a sample is being taken', () => {
  it('never start a second sampling loop (each would poll every worker once a second, for good)', async () => {
    const gw = await startCli({ logging: { level: 'info', accessLog: false }, routes: [{ path: '/v', methods: ['GET'], response: { body: 'v' } }] }, [
      '--workers',
      '1',
    ]);
    running.push(gw);
    const stats = JSON.parse((await request(`${gw.adminUrl}/stats`, { agent: false })).body) as { workers: Array<{ pid: number }> };
    const worker = stats.workers[0]!.pid;
    // A frozen worker makes each sample wait for the metrics timeout (1 s): a wide, deterministic window in which
    // a page closes and the next one opens.
    process.kill(worker, 'SIGSTOP');
    try {
      for (let i = 0; i < 12; i++) {
        const s = openEvents(gw.adminUrl);
        await s.subscribed;
        s.close();
        await sleep(30);
      }
    } finally {
      process.kill(worker, 'SIGCONT');
    }
    // One page stays: it gets one sample a second from the one loop (the first may come at once).
    const page = openEvents(gw.adminUrl);
    await page.subscribed;
    const from = Date.now();
    await sleep(3000);
    const samples = page.events.filter((e) => e === 'sample').length;
    const seconds = (Date.now() - from) / 1000;
    page.close();
    // Before the fix each page that closed and reopened during a sample added a loop: 12 pages, ~12 samples a second.
    expect(samples).toBeLessThanOrEqual(Math.ceil(seconds) + 2);
    await until(async () => (await request(`${gw.adminUrl}/ready`, { agent: false })).status === 200, { message: 'ready' });
  }, 90_000);
});

describe('a dashboard page that stops reading', () => {
  it('is cut once its unsent backlog passes the bound; a page that reads is unaffected', async () => {
    // Many routes make each sample large, and a 5 ms interval makes many: the kernel's socket buffers fill in seconds.
    const routes = Array.from({ length: 300 }, (_, i) => ({ name: `route-with-a-long-name-${i}`, path: `/r${i}`, methods: ['GET'], response: { body: 'v' } }));
    const gw = await startGateway({ logging: { level: 'silent' }, admin: { enabled: false }, routes });
    const admin = new AdminServer(
      inProcessAdminSource(
        gw.gateway,
        async () => ({ ok: true, version: 1, errors: [] }),
        () => true,
      ),
      { dashboardIntervalMs: 5 },
    );
    const adminUrl = `http://127.0.0.1:${await admin.listen(0, '127.0.0.1')}`;
    try {
      // the streams the admin holds open (white box: a cut stream's client, paused, never reads the FIN)
      const streams = (admin as unknown as { dashboard: { streams: Set<http.ServerResponse> } }).dashboard.streams;
      const reading = openEvents(adminUrl);
      await reading.subscribed;
      const stalled = net.connect(Number(new URL(adminUrl).port), '127.0.0.1');
      stalled.on('error', () => undefined);
      stalled.write('GET /dashboard/events HTTP/1.1\r\nHost: x\r\n\r\n');
      stalled.pause();
      await until(() => streams.size === 2, { message: 'both pages subscribed' });
      let backlog = 0;
      // Before the fix the stalled page's backlog only grew (343 MB of RSS in 60 s here) and it was never cut.
      await until(
        () => {
          for (const res of streams) backlog = Math.max(backlog, res.writableLength);
          return streams.size === 1;
        },
        { timeoutMs: 60_000, message: () => `the stalled page cut (largest backlog seen: ${backlog} bytes)` },
      );
      expect(backlog).toBeLessThan(MAX_STREAM_BACKLOG_BYTES + 512 * 1024);
      stalled.destroy();
      const before = reading.events.length;
      await until(() => reading.events.length > before + 10, { timeoutMs: 10_000, message: 'the reading page still served' });
      reading.close();
    } finally {
      await admin.close();
      await gw.close();
    }
  }, 90_000);
});

describe('the admin port already taken', () => {
  it('one line naming admin.port, exit 1, the workers (serving already) drained and gone', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    const file = writeConfig({ logging: { level: 'info', accessLog: false }, routes: [{ path: '/v', methods: ['GET'], response: { body: 'v' } }] });
    const proc = spawn(process.execPath, ['dist/core/cli.js', '--config', file, '--port', '0', '--admin-port', String(port), '--workers', '2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
    try {
      const code = await new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
      expect(code).toBe(1);
      // Before the fix: an unhandled rejection, its stack trace and no word of which setting to change.
      expect(out).toContain(`admin listener failed on 127.0.0.1:${port} (admin.host / admin.port): EADDRINUSE`);
      expect(out).not.toContain('node:internal');
      const workers = [...out.matchAll(/"workerPid":(\d+)/g)].map((m) => Number(m[1]));
      expect(workers).toHaveLength(2);
      const alive = (pid: number): boolean => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      await until(() => !workers.some(alive), { timeoutMs: 10_000, message: () => `workers ${workers.join(', ')} gone` });
    } finally {
      proc.kill('SIGKILL');
      taken.close();
    }
  }, 90_000);
});
