import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { variantNames } from '../../core/variants.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { captureProcessErrors } from '../support/process-errors.js';
import { gatewayFor } from './helpers.js';

/**
 * A plugin handler may return any thenable, and a hand-written one can break the promise rules: call both of its
 * callbacks, one twice, or throw from `then` after calling one. The pipeline used to hand its own callbacks to
 * that `then` directly, so the stage machine resumed twice: the request was sent and finished twice (its context
 * released twice into the pool, so two later requests shared one), and the second pass threw on the released
 * context where nothing catches (an uncaught exception: a dead worker). Hooks were always safe (the executor
 * awaits them); this is the handler stage.
 */
const dir = writePlugins(
  {
    thenables: `
const kinds = {
  'resolves-twice': () => ({ then(res) { res(); res(); } }),
  'resolves-and-rejects': () => ({ then(res, rej) { res(); rej(new Error('also rejected')); } }),
  'rejects-and-resolves': () => ({ then(res, rej) { rej(new Error('rejected first')); res(); } }),
  'then-returns-nothing': () => ({ then(res) { setTimeout(res, 5); } }),
  'then-throws-after-resolving': () => ({ then(res) { res(); throw new Error('then threw after resolving'); } }),
};
export default {
  name: 'thenables', version: '1.0.0',
  init(options, api) {
    api.registerHandler('thenable', (ctx) => { ctx.send(200, null, 'handled'); return kinds[ctx.header('x-kind')]?.(); });
    return {};
  },
};`,
  },
  'gw-careless-thenable-',
);

const { unhandled, uncaught } = captureProcessErrors();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const EXPECTED: Record<string, number> = {
  'resolves-twice': 200,
  'resolves-and-rejects': 200,
  'rejects-and-resolves': 500,
  // what `then` returns is not the gateway's business: it resolves 5 ms later
  'then-returns-nothing': 200,
  'then-throws-after-resolving': 200,
};

describe.each(variantNames('server'))('a handler returning a thenable that breaks the rules (engine %s)', (engine) => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await gatewayFor({
      pluginDirs: [dir],
      // the guarded pool counts a context released twice instead of pooling it twice
      variants: { server: engine, pool: 'guarded' },
      plugins: [{ name: 'thenables' }],
      routes: [{ path: '/t', methods: ['GET'], handler: 'thenable' }],
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  for (const [kind, status] of Object.entries(EXPECTED)) {
    it(`${kind}: ${status}, the request finished once`, async () => {
      const r = await request(`${gw.url}/t`, { headers: { 'x-kind': kind }, timeoutMs: 3000 });
      expect(r.status).toBe(status);
      const next = await request(`${gw.url}/t`);
      expect(next.status).toBe(200);
      expect(next.body).toBe('handled');
      expect(gw.gateway.metrics.inFlight).toBe(0);
      expect((gw.gateway.pool as unknown as { doubleReleases: number }).doubleReleases).toBe(0);
    });
  }

  it('left nothing unhandled or uncaught', async () => {
    await new Promise((r) => setTimeout(r, 20));
    expect(unhandled).toEqual([]);
    expect(uncaught).toEqual([]);
  });
});
