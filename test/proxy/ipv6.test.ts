import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_VARIANTS, startProxy, startUpstream, type GatewayUnderTest, type TestUpstream } from './helpers.js';

function get(port: number, headers: http.OutgoingHttpHeaders): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '::1', port, path: '/x', headers, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      })
      .on('error', reject);
  });
}

describe.each(CLIENT_VARIANTS)('IPv6 client peers (%s client)', (variant) => {
  let up: TestUpstream;
  let untrusted: GatewayUnderTest;
  let trusted: GatewayUnderTest;
  beforeAll(async () => {
    up = await startUpstream('v6');
    const routes = [{ path: '/*', upstream: 'svc' }];
    untrusted = await startProxy(variant, { svc: { targets: [up.url] } }, routes, { host: '::1' });
    trusted = await startProxy(variant, { svc: { targets: [up.url] } }, routes, { host: '::1', trustedProxies: ['::1/128'] });
  });
  afterAll(async () => {
    await untrusted?.close();
    await trusted?.close();
    await up?.close();
  });
  const last = () => up.received[up.received.length - 1]!.headers;

  it('formats an IPv6 peer in X-Forwarded-For and Forwarded, and ignores a spoofed chain', async () => {
    expect(await get(untrusted.port, { host: 'h.example', 'x-forwarded-for': '1.2.3.4' })).toBe(200);
    expect(last()['x-forwarded-for']).toBe('::1');
    expect(last().forwarded).toBe('for="[::1]";host=h.example;proto=http');
  });

  it('trusts an IPv6 CIDR', async () => {
    expect(await get(trusted.port, { host: 'h.example', 'x-forwarded-for': '2001:db8::5' })).toBe(200);
    expect(last()['x-forwarded-for']).toBe('2001:db8::5, ::1');
  });
});
