import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../core/config/types.js';
import { ProxyError } from '../../core/proxy/errors.js';
import { buildResponseHeaders } from '../../core/proxy/headers.js';
import { compileProxyPath, upstreamTarget } from '../../core/proxy/path.js';
import { TrustedProxies, normalizeIp } from '../../core/proxy/trust.js';

const route = (r: Partial<RouteConfig>): RouteConfig => ({ path: '/', methods: ['*'], plugins: [], upstream: 'u', ...r });

function status(fn: () => unknown): number {
  try {
    fn();
    return 0;
  } catch (e) {
    return e instanceof ProxyError ? e.statusCode : -1;
  }
}

describe('upstreamTarget', () => {
  const api = compileProxyPath(route({ path: '/api/*', stripPrefix: true }));
  const keep = compileProxyPath(route({ path: '/api/*' }));

  it('takes only the path of absolute-form targets', () => {
    expect(upstreamTarget('http://evil.example/api/x?q=1', { '*': 'x' }, api)).toBe('/x?q=1');
    expect(upstreamTarget('http://evil.example:81/api/x', { '*': 'x' }, keep)).toBe('/api/x');
    expect(status(() => upstreamTarget('http://evil.example', {}, keep))).toBe(400);
    expect(status(() => upstreamTarget('*', {}, keep))).toBe(400);
  });

  it('merges empty segments so // cannot become an authority', () => {
    expect(upstreamTarget('/api//evil.example/x', {}, api)).toBe('/evil.example/x');
    expect(upstreamTarget('/api//evil.example/x', {}, keep)).toBe('/api/evil.example/x');
  });

  it('resolves dots and rejects escapes, however encoded', () => {
    expect(upstreamTarget('/api/a/../b?x=../..', {}, keep)).toBe('/api/b?x=../..');
    expect(upstreamTarget('/api/a/%2E/b/', {}, keep)).toBe('/api/a/b/');
    for (const p of ['/api/..', '/api/../x', '/api/%2e%2e/x', '/api/%2E./x', '/api/a/..%2F..%2Fx', '/api/..%5Cx', '/api/..\\x', '/api/a/../../x']) {
      expect(
        status(() => upstreamTarget(p, {}, keep)),
        p,
      ).toBe(400);
      expect(
        status(() => upstreamTarget(p, {}, api)),
        p,
      ).toBe(400);
    }
  });

  it('strips a string prefix and rewrites with encoded params', () => {
    const s = compileProxyPath(route({ path: '/svc/*', stripPrefix: '/svc' }));
    expect(upstreamTarget('/svc/a/b?c', {}, s)).toBe('/a/b?c');
    const rw = compileProxyPath(route({ path: '/u/:id/*', rewrite: '/v2/users/:id/files/*' }));
    expect(upstreamTarget('/u/7/x?y=1', { id: '7', '*': 'a b/c' }, rw)).toBe('/v2/users/7/files/a%20b/c?y=1');
    expect(upstreamTarget('/u/x', { id: 'a/b', '*': '' }, rw)).toBe('/v2/users/a%2Fb/files/');
    // ':id' = '..' climbs out of /v2/users/ after resolution
    expect(status(() => upstreamTarget('/u/x', { id: '..', '*': '' }, rw))).toBe(400);
    expect(status(() => upstreamTarget('/u/x', { id: '1', '*': '../../../etc' }, rw))).toBe(400);
    expect(status(() => upstreamTarget('/u/x', { id: '..', '*': '../x' }, rw))).toBe(400);
  });
});

describe('TrustedProxies', () => {
  const t = new TrustedProxies(['10.0.0.0/8', '192.168.1.5', '2001:db8::/32', '::1']);

  it('matches IPv4/IPv6 addresses and CIDRs, ::ffff:-mapped IPv4 included', () => {
    expect(t.trusts('10.200.1.1')).toBe(true);
    expect(t.trusts(normalizeIp('::ffff:10.0.0.1'))).toBe(true);
    expect(t.trusts('11.0.0.1')).toBe(false);
    expect(t.trusts('192.168.1.5')).toBe(true);
    expect(t.trusts('192.168.1.6')).toBe(false);
    expect(t.trusts('2001:db8:1::7')).toBe(true);
    expect(t.trusts('2001:db9::7')).toBe(false);
    expect(t.trusts('::1')).toBe(true);
    expect(t.trusts('not-an-ip')).toBe(false);
    expect(new TrustedProxies(['::ffff:127.0.0.1']).trusts('127.0.0.1')).toBe(true);
    expect(() => new TrustedProxies(['10.0.0.0/33'])).toThrow();
    expect(() => new TrustedProxies(['example.com'])).toThrow();
  });

  it('finds the client as the right-most untrusted X-Forwarded-For hop, only behind a trusted peer', () => {
    expect(t.clientIp('10.0.0.1', '1.1.1.1, 2.2.2.2, 10.9.9.9')).toBe('2.2.2.2');
    expect(t.clientIp('10.0.0.1', '10.1.1.1, 10.2.2.2')).toBe('10.1.1.1');
    expect(t.clientIp('8.8.8.8', '1.1.1.1')).toBe('8.8.8.8');
    expect(t.clientIp('10.0.0.1', undefined)).toBe('10.0.0.1');
  });
});

describe('buildResponseHeaders with a repeated (frozen) upstream head', () => {
  it('gives a fresh, equal object each time: changing one answer never reaches the next', () => {
    const src = Object.freeze({ 'content-type': 'application/json', connection: 'keep-alive', 'keep-alive': 'timeout=5', 'x-a': '1' });
    const edits = { add: { 'x-edge': 'yes' }, remove: ['x-a'] };
    const first = buildResponseHeaders(src, edits, false);
    first['x-plugin'] = 'mutated';
    const second = buildResponseHeaders(src, edits, false);
    expect(second).not.toBe(first);
    expect({ ...second }).toEqual({ 'content-type': 'application/json', via: '1.1 ts-gateway', 'x-edge': 'yes' });
    // other edits on the same head are not served from the remembered result
    expect({ ...buildResponseHeaders(src, undefined, false) }).toEqual({ 'content-type': 'application/json', via: '1.1 ts-gateway', 'x-a': '1' });
  });
});
