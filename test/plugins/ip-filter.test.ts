import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { request } from '../support/http.js';
import { gatewayFor } from './helpers.js';

let gw: RunningGateway;

beforeAll(async () => {
  gw = await gatewayFor({
    plugins: [{ name: 'ip-filter', options: { deny: ['127.0.0.0/8'] } }],
    routes: [
      { path: '/global', methods: ['GET'], response: { body: 'g' } },
      // a route entry replaces the global one: loopback allowed here
      { path: '/open', methods: ['GET'], response: { body: 'o' }, plugins: [{ name: 'ip-filter', options: { allow: ['127.0.0.1', '::1/128'] } }] },
      { path: '/v6-only', methods: ['GET'], response: { body: 'v6' }, plugins: [{ name: 'ip-filter', options: { allow: ['2001:db8::/32'] } }] },
      // the client address from a trusted proxy's X-Forwarded-For
      {
        path: '/fwd',
        methods: ['GET'],
        response: { body: 'f' },
        plugins: [{ name: 'ip-filter', options: { deny: ['203.0.113.0/24'], trustForwarded: ['127.0.0.1'] } }],
      },
    ],
  });
});
afterAll(() => gw.close());

describe('ip-filter', () => {
  it('denies a CIDR with 403', async () => {
    const r = await request(`${gw.url}/global`);
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body)).toEqual({ error: 'Forbidden', statusCode: 403 });
  });

  it('a route entry replaces the global one', async () => {
    expect((await request(`${gw.url}/open`)).status).toBe(200);
  });

  it('allow lists refuse everyone else (IPv6 range, IPv4 client)', async () => {
    expect((await request(`${gw.url}/v6-only`)).status).toBe(403);
  });

  it('uses X-Forwarded-For only from trusted proxies', async () => {
    expect((await request(`${gw.url}/fwd`)).status).toBe(200);
    expect((await request(`${gw.url}/fwd`, { headers: { 'x-forwarded-for': '203.0.113.9' } })).status).toBe(403);
    expect((await request(`${gw.url}/fwd`, { headers: { 'x-forwarded-for': '198.51.100.1' } })).status).toBe(200);
  });

  it('rejects a malformed CIDR at config time', async () => {
    await expect(gatewayFor({ plugins: [{ name: 'ip-filter', options: { deny: ['10.0.0.0/33'] } }], routes: [] })).rejects.toThrow(/bad prefix length/);
  });
});
