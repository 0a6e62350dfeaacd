import { createHash } from 'node:crypto';
import type { RequestContext } from '../../../data/context.js';

/**
 * How the cache keys a request. The primary key is the target URI (RFC 9111 §2): scheme, host and request target
 * as three separate JSON strings, so no Host and no path — whatever a client sends — can read as another
 * combination of the two (a Host of `gw/api` with target `/ping` is not `gw` with `/api/ping`). Invalidation
 * works on it (every variant of a URI goes at once).
 *
 * Who may receive an entry is its partition, a second key part every store treats as one more Vary field
 * (PARTITION_FIELD): '' for an anonymous request without cookies, else a digest of the credential the request
 * was authenticated with and of the cookies the route keys on. A partition is never empty and never shared by
 * two credentials.
 */

/** The request "header" a partition is kept under: a name no client can send (a space is not a token character). */
export const PARTITION_FIELD = ' partition';

export function targetKey(ctx: RequestContext): string {
  const host = ctx.header('host');
  return JSON.stringify([ctx.secure ? 'https' : 'http', host === undefined ? '' : host.toLowerCase(), ctx.url]);
}

/**
 * What tells this request's credential from any other's, or null when nothing does (then nothing may be cached
 * for it): a non-empty subject (with the scheme that established it: a Basic user and a JWT subject of the same
 * name are different principals), else the Authorization value itself (a JWT without `sub` is its own
 * partition), else the API key's name.
 */
export function credentialOf(ctx: RequestContext): string | null {
  const id = ctx.identity;
  if (id !== null) {
    const sub = id.sub;
    if (typeof sub === 'string' && sub !== '') return JSON.stringify(['sub', typeof id.method === 'string' ? id.method : '', sub]);
  }
  const authz = ctx.header('authorization');
  if (authz !== undefined && authz.trim() !== '') return JSON.stringify(['authorization', authz]);
  if (id !== null && typeof id.apiKey === 'string' && id.apiKey !== '') return JSON.stringify(['apiKey', id.apiKey]);
  return null;
}

/** The values of the named cookies in a Cookie header (absent ones as null), in the order named. */
export function namedCookies(header: string, names: readonly string[]): Array<string | null> {
  const found = new Map<string, string>();
  for (const pair of header.split(/;\s*/)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    // the first occurrence wins, as in most servers' parsers
    if (names.includes(name) && !found.has(name)) found.set(name, pair.slice(eq + 1).trim());
  }
  return names.map((n) => found.get(n) ?? null);
}

/** '' or a digest: the partition for a credential (or null) and the keyed cookie values (or null). */
export function partitionOf(credential: string | null, cookies: Array<string | null> | null): string {
  if (credential === null && cookies === null) return '';
  // a digest: credentials must not sit in a store (Redis) or in memory dumps
  return (
    'p' +
    createHash('sha256')
      .update(JSON.stringify([credential, cookies]))
      .digest('base64url')
  );
}
