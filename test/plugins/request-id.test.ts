import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { randomId } from '../../core/plugins/builtin/request-id/index.js';
import { request } from '../support/http.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { gatewayFor } from './helpers.js';

let gw: RunningGateway;
let up: RecordingUpstream;

beforeAll(async () => {
  up = await startUpstream('up', (_req, res) => res.end('ok'));
  gw = await gatewayFor({
    upstreams: { up: { targets: [up.url] } },
    plugins: [{ name: 'request-id', options: {} }],
    routes: [
      { path: '/echo', methods: ['GET'], handler: 'echo' },
      { path: '/up/*', methods: ['GET'], upstream: 'up' },
      { path: '/custom', methods: ['GET'], handler: 'echo', plugins: [{ name: 'request-id', options: { header: 'X-Correlation-Id' } }] },
    ],
  });
});
afterAll(async () => {
  await gw.close();
  await up.close();
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request-id', () => {
  it('generates version 4 UUIDs, all distinct, across many refills of its random pool', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const id = randomId();
      expect(id).toMatch(UUID);
      seen.add(id);
    }
    expect(seen.size).toBe(20_000);
  });

  it('generates an id, echoes it and passes it on', async () => {
    const r = await request(`${gw.url}/echo`);
    const id = r.headers['x-request-id'] as string;
    expect(id).toMatch(UUID);
    expect(JSON.parse(r.body).headers['x-request-id']).toBe(id);
  });

  it('keeps a client id', async () => {
    const r = await request(`${gw.url}/echo`, { headers: { 'x-request-id': 'abc-123' } });
    expect(r.headers['x-request-id']).toBe('abc-123');
  });

  it('replaces an unacceptable client id', async () => {
    const r = await request(`${gw.url}/echo`, { headers: { 'x-request-id': 'x'.repeat(300) } });
    expect(r.headers['x-request-id']).toMatch(UUID);
  });

  it('sends the id to the upstream', async () => {
    const r = await request(`${gw.url}/up/a`);
    expect(r.status).toBe(200);
    expect(up.received.at(-1)!.headers['x-request-id']).toBe(r.headers['x-request-id']);
  });

  it('tags unmatched requests too (global entry)', async () => {
    const r = await request(`${gw.url}/nope`);
    expect(r.status).toBe(404);
    expect(r.headers['x-request-id']).toMatch(UUID);
  });

  it('uses the configured header', async () => {
    const r = await request(`${gw.url}/custom`, { headers: { 'x-correlation-id': 'corr-1' } });
    expect(r.headers['x-correlation-id']).toBe('corr-1');
    expect(JSON.parse(r.body).headers['x-correlation-id']).toBe('corr-1');
  });
});
