import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { variantNames } from '../../core/variants.js';
import { request } from '../support/http.js';
import { writePlugins } from '../support/plugins.js';

/** A handler that answers with what the engine-neutral accessors of the context read. */
const dir = writePlugins({
  inspect: `
export default {
  name: 'inspect', version: '1.0.0',
  init(options, api) {
    api.registerHandler('inspect', async (ctx) => {
      const body = ctx.requestBody;
      let received = null;
      if (body !== null) {
        const chunks = [];
        for await (const c of body) chunks.push(c);
        received = Buffer.concat(chunks).toString();
      }
      ctx.statusCode = 200;
      ctx.responseHeaders = { 'content-type': 'application/json' };
      ctx.body = JSON.stringify({
        key: ctx.header('x-key') ?? null,
        cookie: ctx.header('cookie') ?? null,
        missing: ctx.header('x-missing') ?? null,
        names: Object.keys(ctx.requestHeaders).sort(),
        version: ctx.httpVersion,
        secure: ctx.secure,
        hasBody: body !== null,
        received,
      });
    });
    return {};
  },
};`,
});

describe.each(variantNames('server'))('engine-neutral request accessors on the %s engine', (engine) => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway({
      server: { port: 0, host: '127.0.0.1', workers: 0 },
      variants: { server: engine },
      logging: { level: 'silent', accessLog: false },
      pluginDirs: [dir],
      plugins: [{ name: 'inspect' }],
      routes: [{ path: '/inspect', methods: ['GET', 'POST'], handler: 'inspect' }],
    });
  });
  afterAll(() => gw.close());

  it('reads headers, version and TLS state the same way', async () => {
    const r = await request(`${gw.url}/inspect`, { headers: { 'X-Key': 'k1', cookie: ['a=1', 'b=2'] } });
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as Record<string, unknown>;
    expect(seen).toMatchObject({ key: 'k1', cookie: 'a=1; b=2', missing: null, version: '1.1', secure: false, hasBody: false, received: null });
    expect(seen.names).toEqual(expect.arrayContaining(['host', 'x-key', 'cookie']));
  });

  it('hands over the request body as a stream only when one is announced', async () => {
    const r = await request(`${gw.url}/inspect`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'payload' });
    expect(JSON.parse(r.body)).toMatchObject({ hasBody: true, received: 'payload' });
  });
});
