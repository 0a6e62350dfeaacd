import { rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { variantNames } from '../../core/variants.js';
import { startCli } from '../support/cli.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { until } from '../support/wait.js';
import { captureLogger, gatewayFor } from './helpers.js';

/**
 * What a careless plugin does past the moment its hook returns: stage a body stream that breaks or never ends,
 * keep the request's context after the request, throw from a timer of its own. Each is bounded to its own
 * request (or, for the timer, to the process, which is what an uncaught exception means in Node).
 */
const dir = writePlugins(
  {
    streams: `
import { Readable } from 'node:stream';
export default {
  name: 'streams', version: '1.0.0',
  init(options, api) {
    api.registerHandler('streams', (ctx) => {
      const kind = ctx.header('x-body');
      let body;
      if (kind === 'errors') {
        let n = 0;
        body = new Readable({ read() { if (++n < 3) this.push('chunk' + n + '\\n'); else this.destroy(new Error('body broke')); } });
      } else if (kind === 'never-ends') {
        let pushed = false;
        body = new Readable({ read() { if (!pushed) { pushed = true; this.push('first and last chunk\\n'); } } });
      } else if (kind === 'destroyed') {
        body = new Readable({ read() {} });
        body.destroy();
      } else body = Readable.from(['whole']);
      ctx.send(200, { 'content-type': 'text/plain' }, body);
    });
    return {};
  },
};`,
    // Keeps every context it sees, reads it and writes to it 300 ms after the request (a careless plugin's "later").
    hoarder: `
export default {
  name: 'hoarder', version: '1.0.0',
  init() {
    return {
      postResponse(ctx) {
        if (ctx.header('x-hoard') !== '1') return;
        setTimeout(() => {
          globalThis.__hoarded.push({ method: ctx.method, url: ctx.url, secret: ctx.header('x-secret'), status: ctx.statusCode });
          ctx.addResponseHeader('x-hoarded', 'leaked');
          ctx.statusCode = 299;
        }, 300);
      },
    };
  },
};`,
    slow: `
export default { name: 'slow', version: '1.0.0', init() { return { preHandler: () => new Promise((r) => setTimeout(r, 1000)) }; } };`,
  },
  'gw-careless-lifetime-',
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What the hoarder read through its kept ctx (it runs in this process: the gateway is started in-process). */
const hoarded: Array<Record<string, unknown>> = [];
(globalThis as unknown as { __hoarded: unknown }).__hoarded = hoarded;

describe.each(variantNames('server'))('a careless body stream (engine %s)', (engine) => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await gatewayFor({
      pluginDirs: [dir],
      variants: { server: engine },
      plugins: [{ name: 'streams' }],
      routes: [{ path: '/s', methods: ['GET'], handler: 'streams' }],
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('one that errors mid-way: the client sees an aborted answer, never a complete one; nothing stays taken', async () => {
    const r = await request(`${gw.url}/s`, { headers: { 'x-body': 'errors' }, agent: false }).then(
      (res) => res,
      (err: Error) => err,
    );
    // chunked framing cut before its last chunk: the client reports an error, or (at worst) a body without the end
    if (!(r instanceof Error)) expect(r.body).not.toContain('chunk3');
    await until(() => gw.gateway.metrics.inFlight === 0, { timeoutMs: 5000, message: () => `inFlight ${gw.gateway.metrics.inFlight}` });
    expect((await request(`${gw.url}/s`)).body).toBe('whole');
  });

  it('one destroyed before it is sent: a 502', async () => {
    expect((await request(`${gw.url}/s`, { headers: { 'x-body': 'destroyed' } })).status).toBe(502);
  });

  it('one that never ends: bounded by the client (streaming answers are legitimate); freed when it leaves', async () => {
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${gw.url}/s`, { headers: { 'x-body': 'never-ends' }, agent: false }, (res) => {
        res.once('data', () => req.destroy());
      });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.end();
    });
    await until(() => gw.gateway.metrics.inFlight === 0, { timeoutMs: 5000, message: () => `inFlight ${gw.gateway.metrics.inFlight}` });
  });
});

describe.each(variantNames('pool'))('a plugin that keeps ctx after the request (pool %s)', (pool) => {
  const config: Record<string, unknown> = {
    pluginDirs: [dir],
    variants: { pool },
    plugins: [{ name: 'hoarder' }],
    routes: [
      { path: '/r', methods: ['GET'], response: { body: 'r' } },
      { path: '/victim', methods: ['GET'], response: { body: 'victim' }, plugins: [{ name: 'slow' }] },
    ],
  };

  // A request whose context is held and written and read 300 ms later, while 8 others (1 s each) are in flight on
  // pooled state: with the pooled object itself in plugins' hands the write landed in one of them.
  it('its late writes reach no other request, its late reads see nothing, and it is logged once', async () => {
    const log = captureLogger();
    const gw = await gatewayFor(config, log.logger);
    try {
      hoarded.length = 0;
      expect((await request(`${gw.url}/r`, { headers: { 'x-hoard': '1', 'x-secret': 'hoarder-own' } })).status).toBe(200);
      const all = await Promise.all(Array.from({ length: 8 }, () => request(`${gw.url}/victim`, { agent: false, headers: { 'x-secret': 'victim' } })));
      for (const v of all) expect({ status: v.status, hoarded: v.headers['x-hoarded'] }).toEqual({ status: 200, hoarded: undefined });
      // what the kept ctx read during the victims' requests: nothing of theirs (nor of its own, finished, request)
      expect(hoarded).toEqual([{ method: '', url: '', secret: undefined, status: 200 }]);
      const late = log.lines().filter((l) => String(l.msg).includes('after its request had finished'));
      // two writes (a header and the status) from one plugin file: one line
      expect(late).toHaveLength(1);
      expect(String(late[0]!.at)).toContain('hoarder');
      expect(gw.gateway.server.lateContextWrites).toBe(2);
    } finally {
      await gw.close();
    }
  });
});

describe('a plugin timer that throws in a gateway serving in-process (server.workers 0)', () => {
  it('ends the process with a non-zero code and the error on its output (a supervisor restarts it)', async () => {
    const timerDir = writePlugins(
      {
        'late-throw': `
export default { name: 'late-throw', version: '1.0.0', init() { setTimeout(() => { throw new Error('plugin timer blew up'); }, 300); return {}; } };`,
      },
      'gw-careless-timer-',
    );
    try {
      const cli = await startCli({
        server: { workers: 0 },
        pluginDirs: [timerDir],
        plugins: [{ name: 'late-throw' }],
        routes: [{ path: '/r', methods: ['GET'], response: { body: 'r' } }],
      }).catch((err: Error) => err);
      // it may already be gone before it reports ready: either way the exit is what is asserted
      const exited = cli instanceof Error ? null : await Promise.race([cli.exited, new Promise<'alive'>((r) => setTimeout(() => r('alive'), 10_000))]);
      if (cli instanceof Error) expect(cli.message).toMatch(/plugin timer blew up/);
      else {
        expect(exited).not.toBe('alive');
        expect(exited).not.toBe(0);
        expect(cli.output()).toMatch(/plugin timer blew up/);
      }
    } finally {
      rmSync(timerDir, { recursive: true, force: true });
    }
  }, 30_000);
});
