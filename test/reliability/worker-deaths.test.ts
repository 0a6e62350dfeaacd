import { Agent } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startCli, type CliGateway } from '../support/cli.js';
import { request } from '../support/http.js';
import { blockUntilExited, exitedOrZombie } from '../support/proc.js';
import { startUpstream } from '../support/upstream.js';
import { sleep, until } from '../support/wait.js';
import { allReady, stats } from './primary-helpers.js';

/**
 * A worker or the primary killed outright (SIGKILL, SIGSTOP): what the survivors do with the requests in flight.
 * Apart from workers.test.ts, the longest file of the suite while they were in it, so the two run side by side.
 */
const running: CliGateway[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop('SIGKILL');
});

describe('a worker that dies between two polls', () => {
  it('the primary survives sending to its closed channel, restarts it, and keeps serving', async () => {
    // The primary is frozen while the worker dies, so when it resumes, its overdue alert and overload timers
    // (the timers phase runs before the poll phase that would read the channel's EOF) send to a worker that is
    // gone while Node still calls it connected: the write fails with EPIPE. Before core/control/ipc.ts that was an
    // unhandled 'error' event that ended the primary (seen once in CI, in alerting.test.ts).
    const gw = await startCli(
      {
        routes: [{ path: '/v', methods: ['GET'], response: { body: 'ok' } }],
        alerts: { evaluateEveryMs: 100, rules: [{ name: 'worker-crash', metric: 'worker_restarts', above: 0, windowMs: 60_000 }] },
      },
      ['--workers', '2'],
    );
    running.push(gw);
    const before = await allReady(gw);
    const victim = before.workers[0]!;
    process.kill(gw.proc.pid!, 'SIGSTOP');
    try {
      process.kill(victim.pid, 'SIGKILL');
      blockUntilExited(victim.pid);
      await sleep(300);
    } finally {
      process.kill(gw.proc.pid!, 'SIGCONT');
    }
    await until(
      async () => {
        if (gw.proc.exitCode !== null) throw new Error(`primary exited ${gw.proc.exitCode}:\n${gw.output().slice(-2000)}`);
        const s = await stats(gw);
        return s.workers.length === 2 && s.workers.every((w) => w.state === 'ready') && s.workers.find((w) => w.id === victim.id)!.pid !== victim.pid;
      },
      { timeoutMs: 30_000, message: 'worker restarted under a live primary' },
    );
    expect(gw.proc.exitCode).toBeNull();
    expect(gw.output()).not.toContain('Unhandled');
    expect((await request(`${gw.url}/v`, { agent: false })).body).toBe('ok');
  }, 120_000);
});

describe('the primary killed outright', () => {
  it('a request in flight through a worker still gets its whole answer: the orphaned worker drains, then exits', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const upstream = await startUpstream('slow', (req, res) => {
      req.resume();
      void held.then(() => res.end('slow answer'));
    });
    try {
      const gw = await startCli(
        {
          server: { shutdownTimeoutMs: 10_000 },
          upstreams: { app: { targets: [upstream.url] } },
          routes: [{ path: '/slow', methods: ['GET'], upstream: 'app' }],
        },
        ['--workers', '1'],
      );
      running.push(gw);
      const { workers } = await allReady(gw);
      const answer = request(`${gw.url}/slow`, { agent: false });
      await until(() => upstream.received.length === 1, { message: 'the request reached the upstream' });
      gw.proc.kill('SIGKILL');
      await gw.exited;
      // Cluster's default would have ended the worker here, and the client would see its connection reset.
      await sleep(200);
      expect(exitedOrZombie(workers[0]!.pid)).toBe(false);
      release();
      const res = await answer;
      expect(res.status).toBe(200);
      expect(res.body).toBe('slow answer');
      await until(() => exitedOrZombie(workers[0]!.pid), { timeoutMs: 15_000, message: 'the orphaned worker exits once drained' });
    } finally {
      release();
      await upstream.close();
    }
  }, 120_000);

  it("a request waiting on the primary (the rate limiter's shared store) is answered by the fail mode, not left hanging", async () => {
    const gw = await startCli(
      {
        server: { shutdownTimeoutMs: 20_000 },
        routes: [
          { path: '/limited', methods: ['GET'], response: { body: 'ok' }, plugins: [{ name: 'rate-limit', options: { limit: 100, windowMs: 60_000 } }] },
        ],
      },
      ['--workers', '1'],
    );
    running.push(gw);
    await allReady(gw);
    // One keep-alive connection, already handed to the worker: a frozen primary accepts no new one.
    const conn = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await request(`${gw.url}/limited`, { agent: conn })).body).toBe('ok');
    // A frozen primary takes the worker's store call but never answers it; then it dies with the call outstanding.
    process.kill(gw.proc.pid!, 'SIGSTOP');
    const started = Date.now();
    const answer = request(`${gw.url}/limited`, { agent: conn, timeoutMs: 30_000 });
    await sleep(300);
    gw.proc.kill('SIGKILL');
    const res = await answer;
    // failMode "open" (the default): the request is served once the call fails, long before the 20 s drain deadline.
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(10_000);
    conn.destroy();
  }, 120_000);
});
