import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { gatewayFor } from '../plugins/helpers.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';

/**
 * A miss claims the URI's coalescing flight in the cache's preHandler. When a later preHandler refuses the request
 * (no postHandler runs then), the flight used to stay open until coalesceTimeoutMs: every request for the URI
 * waited that long. Here the timeout is far longer than the client's, so a flight left open fails the test.
 */
const dir = writePlugins(
  {
    refuse: `export default { name: 'refuse', version: '1.0.0', init() { return {
      preHandler(ctx) { if (ctx.req.headers['x-refuse'] !== undefined) ctx.send(403, { 'content-type': 'text/plain' }, 'refused'); },
    }; } };`,
    throws: `export default { name: 'throws', version: '1.0.0', init() { return {
      preHandler(ctx) { if (ctx.req.headers['x-throw'] !== undefined) throw new Error('boom'); },
    }; } };`,
  },
  'gw-sec-flights-',
);

describe('coalescing flights end with every miss', () => {
  let gw: RunningGateway;
  let up: RecordingUpstream;

  beforeAll(async () => {
    up = await startUpstream('up', (req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end(`fresh ${req.url}`);
    });
    gw = await gatewayFor({
      pluginDirs: [dir],
      upstreams: { up: { targets: [up.url] } },
      plugins: [{ name: 'cache', options: { coalesceTimeoutMs: 600_000 } }, { name: 'refuse' }, { name: 'throws' }],
      routes: [{ path: '/*', methods: ['GET'], upstream: 'up' }],
    });
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
  });

  it.each([
    ['refused by a later hook', '/refused', { 'x-refuse': '1' }, 403],
    ['failed in a later hook', '/failed', { 'x-throw': '1' }, 500],
  ])('a miss %s does not hold the next request for the URI', async (_what, path, headers, status) => {
    const first = await request(`${gw.url}${path}`, { headers });
    expect(first.status).toBe(status);
    const next = await request(`${gw.url}${path}`, { timeoutMs: 8_000 });
    expect(next.status).toBe(200);
    expect(next.body).toBe(`fresh ${path}`);
  });
});
