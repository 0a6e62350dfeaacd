import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { DESTROY_TIMEOUT_MS, destroySlots, type PluginSlot } from '../../core/plugins/executor.js';
import { HOOK_NAMES, type HookName, type HookStats, type PluginInstance } from '../../core/plugins/types.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { until } from '../support/wait.js';
import { captureLogger, gatewayFor } from './helpers.js';

/**
 * destroy hooks run when a reload retires a runtime and at shutdown. One that throws used to be counted and
 * nothing else (the operator never learnt which plugin failed); one that never settled held the rest of the
 * disposal forever: the other plugins' destroy hooks, the old upstream pools, and a shutdown's exit.
 */
function slot(name: string, destroy: PluginInstance['destroy'], logger: PluginSlot['logger']): PluginSlot {
  const stats = {} as Record<HookName, HookStats>;
  for (const h of HOOK_NAMES) stats[h] = { calls: 0, errors: 0, totalMs: 0 };
  return { name, version: '1.0.0', scope: '', instance: destroy === undefined ? {} : { destroy }, stats, logger };
}

describe('destroySlots', () => {
  it('runs every destroy hook past one that hangs, throws or rejects; each failure is counted and logged by plugin', async () => {
    const log = captureLogger();
    const ran: string[] = [];
    const slots = [
      slot('hangs', () => new Promise<void>(() => undefined), log.logger),
      slot(
        'throws',
        () => {
          throw new Error('destroy threw');
        },
        log.logger,
      ),
      slot('rejects', () => Promise.reject(new Error('destroy rejected')), log.logger),
      slot(
        'throws-null',
        () => {
          // plugins are plain JavaScript: anything can be thrown
          // eslint-disable-next-line @typescript-eslint/only-throw-error
          throw null;
        },
        log.logger,
      ),
      slot('fine', () => void ran.push('fine'), log.logger),
    ];
    await destroySlots(slots, 100);
    expect(ran).toEqual(['fine']);
    expect(slots.map((s) => s.stats.destroy)).toEqual([
      expect.objectContaining({ calls: 1, errors: 1 }),
      expect.objectContaining({ calls: 1, errors: 1 }),
      expect.objectContaining({ calls: 1, errors: 1 }),
      expect.objectContaining({ calls: 1, errors: 1 }),
      expect.objectContaining({ calls: 1, errors: 0 }),
    ]);
    const lines = log.lines();
    expect(lines.find((l) => l.plugin === 'hangs')).toMatchObject({
      msg: 'plugin destroy hook did not settle in time; disposal goes on without it',
      timeoutMs: 100,
    });
    for (const name of ['throws', 'rejects', 'throws-null']) expect(lines.find((l) => l.plugin === name)).toMatchObject({ msg: 'plugin destroy hook failed' });
  });
});

const dir = writePlugins(
  {
    'bad-destroy': `
export default {
  name: 'bad-destroy', version: '1.0.0',
  init(options) {
    return {
      destroy() {
        if (options.mode === 'throw') throw new Error('cannot let go');
        if (options.mode === 'hang') return new Promise(() => {});
      },
    };
  },
};`,
  },
  'gw-careless-destroy-',
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a careless destroy hook in a running gateway', () => {
  it('one that throws on a hot reload is logged with its plugin; the new config serves', async () => {
    const log = captureLogger();
    const cfg = (body: string): Record<string, unknown> => ({
      pluginDirs: [dir],
      plugins: [{ name: 'bad-destroy', options: { mode: 'throw' } }],
      routes: [{ path: '/r', methods: ['GET'], response: { body } }],
    });
    const gw = await gatewayFor(cfg('old'), log.logger);
    try {
      expect((await gw.reload(cfg('new'))).ok).toBe(true);
      expect((await request(`${gw.url}/r`)).body).toBe('new');
      await until(() => log.lines().some((l) => l.msg === 'plugin destroy hook failed' && l.plugin === 'bad-destroy'), {
        timeoutMs: 5000,
        message: 'destroy failure logged',
      });
    } finally {
      await gw.close();
    }
  });

  it(
    'one that never settles does not hold the shutdown: close() returns after the drain and the destroy bound',
    async () => {
      const gw = await gatewayFor({
        pluginDirs: [dir],
        plugins: [{ name: 'bad-destroy', options: { mode: 'hang' } }],
        routes: [{ path: '/r', methods: ['GET'], response: { body: 'r' } }],
      });
      expect((await request(`${gw.url}/r`)).status).toBe(200);
      let closed = false;
      const closing = gw.close().then(() => (closed = true));
      await until(() => closed, { timeoutMs: DESTROY_TIMEOUT_MS + 5000, message: 'gateway.close() returned' });
      await closing;
    },
    DESTROY_TIMEOUT_MS + 10_000,
  );
});
