import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { gatewayFor } from '../plugins/helpers.js';
import { request } from '../support/http.js';

/**
 * Found probing as an outside tester: `credentials: true` with the default `origins: ["*"]` echoed every Origin
 * with `Access-Control-Allow-Credentials: true`, so any website could read answers sent with a user's cookies.
 */
describe('cors', () => {
  it('credentials with origins "*" is refused at startup, naming the plugin', async () => {
    const start = gatewayFor({
      plugins: [{ name: 'cors', options: { credentials: true } }],
      routes: [{ path: '/', methods: ['GET'], response: { body: 'x' } }],
    });
    await expect(start).rejects.toThrow(/\/plugins\/0: plugin "cors" init failed: cors: credentials with origins "\*"/);
  });

  describe('with listed origins', () => {
    let gw: RunningGateway;
    beforeAll(async () => {
      gw = await gatewayFor({
        plugins: [{ name: 'cors', options: { credentials: true, origins: ['https://app.example', '/https://[a-z]+\\.partner\\.example/'] } }],
        routes: [{ path: '/', methods: ['GET'], response: { body: 'x' } }],
      });
    });
    afterAll(() => gw?.close());

    it.each([
      'https://app.example.evil.example',
      'https://evil.example/https://app.example',
      'null',
      'https://app.example:443@evil.example',
      'https://x.partner.example.evil.example',
      'http://app.example',
    ])('Origin %s gets no CORS grant', async (origin) => {
      const r = await request(`${gw.url}/`, { headers: { origin } });
      expect(r.headers['access-control-allow-origin']).toBeUndefined();
      expect(r.headers['access-control-allow-credentials']).toBeUndefined();
    });

    it('a listed origin is granted, in any case of its host', async () => {
      const r = await request(`${gw.url}/`, { headers: { origin: 'https://APP.example' } });
      expect(r.headers['access-control-allow-origin']).toBe('https://APP.example');
      expect(r.headers.vary).toMatch(/origin/i);
    });
  });
});
