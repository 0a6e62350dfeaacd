import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { variantNames } from '../../core/variants.js';
import { gatewayFor } from '../plugins/helpers.js';
import { request } from '../support/http.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';

/**
 * Headers the gateway vouches for (auth's identity headers, the request id) are added after the client's
 * hop-by-hop fields are removed: `Connection: x-auth-subject` names a field the client sent, and cannot strip
 * the one the gateway adds (RFC 9110 §7.6.1). A client's own copy of such a field never reaches the upstream.
 */
describe.each(variantNames('server'))('headers the gateway adds, %s engine', (engine) => {
  let up: RecordingUpstream;
  let gw: RunningGateway;

  beforeAll(async () => {
    up = await startUpstream('up');
    gw = await gatewayFor({
      variants: { server: engine },
      upstreams: { up: { targets: [up.url] } },
      plugins: [
        { name: 'request-id', options: { log: false } },
        { name: 'auth', options: { apiKey: { keys: [{ name: 'alice', sha256: sha('k-alice') }] } } },
      ],
      routes: [{ path: '/*', methods: ['GET'], upstream: 'up' }],
    });
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
  });

  it('Connection cannot strip the identity headers or the request id', async () => {
    const r = await request(`${gw.url}/x`, {
      headers: { 'x-api-key': 'k-alice', connection: 'keep-alive, x-auth-subject, x-auth-method, x-auth-scopes, x-request-id' },
      agent: false,
    });
    expect(r.status).toBe(200);
    const h = up.received.at(-1)!.headers;
    expect(h['x-auth-subject']).toBe('alice');
    expect(h['x-auth-method']).toBe('apiKey');
    expect(h['x-request-id']).toBe(r.headers['x-request-id']);
  });

  it('a client’s own identity header is replaced, in any case and however often it is sent', async () => {
    const r = await request(`${gw.url}/y`, { headers: { 'x-api-key': 'k-alice', 'X-Auth-Subject': ['admin', 'root'] } });
    expect(r.status).toBe(200);
    expect(up.received.at(-1)!.headers['x-auth-subject']).toBe('alice');
  });
});

function sha(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
