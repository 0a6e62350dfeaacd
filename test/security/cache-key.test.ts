import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { ServerRequest } from '../../core/contracts/server.js';
import { RequestContext } from '../../core/data/context.js';
import { credentialOf, namedCookies, partitionOf, targetKey } from '../../core/plugins/builtin/cache/key.js';

/** A context as the pipeline fills it, for the key functions alone (the end-to-end cases are in the other files). */
function ctxOf(url: string, headers: IncomingHttpHeaders, identity: Record<string, unknown> | null = null, encrypted = false): RequestContext {
  const ctx = new RequestContext();
  ctx.req = { headers, socket: { encrypted } } as unknown as ServerRequest;
  ctx.url = url;
  ctx.identity = identity;
  return ctx;
}

describe('cache keys', () => {
  it('scheme, host and target cannot be confused, whatever the host and path hold', () => {
    const keys = [
      targetKey(ctxOf('/ping', { host: 'gw/api' })),
      targetKey(ctxOf('/api/ping', { host: 'gw' })),
      targetKey(ctxOf('/ping', { host: 'gw","/api' })),
      targetKey(ctxOf('/api/ping', { host: 'gw' }, null, true)),
      targetKey(ctxOf('/api/ping', {})),
    ];
    expect(new Set(keys).size).toBe(keys.length);
    // the host is case-insensitive (RFC 3986 §3.2.2), the target is not
    expect(targetKey(ctxOf('/a', { host: 'GW' }))).toBe(targetKey(ctxOf('/a', { host: 'gw' })));
    expect(targetKey(ctxOf('/A', { host: 'gw' }))).not.toBe(targetKey(ctxOf('/a', { host: 'gw' })));
  });

  it('an identity is keyed by something never empty nor shared', () => {
    // JWTs without sub: the token itself tells them apart
    const alice = credentialOf(ctxOf('/', { authorization: 'Bearer A' }, { method: 'jwt', sub: '' }));
    const bob = credentialOf(ctxOf('/', { authorization: 'Bearer B' }, { method: 'jwt', sub: '' }));
    expect(alice).not.toBe(bob);
    // the same name through two schemes is two principals
    expect(credentialOf(ctxOf('/', {}, { method: 'basic', sub: 'alice' }))).not.toBe(credentialOf(ctxOf('/', {}, { method: 'jwt', sub: 'alice' })));
    // an identity with nothing to tell it apart is not cacheable at all
    expect(credentialOf(ctxOf('/', {}, { method: 'custom', sub: '' }))).toBeNull();
    expect(partitionOf(null, null)).toBe('');
    expect(partitionOf(alice, null)).not.toBe('');
    expect(partitionOf(alice, null)).not.toBe(partitionOf(bob, null));
  });

  it('named cookies are read by exact name, the first occurrence wins', () => {
    expect(namedCookies('xsession=1; session=2; session=3', ['session'])).toEqual(['2']);
    expect(namedCookies('a=1', ['session', 'a'])).toEqual([null, '1']);
  });
});
