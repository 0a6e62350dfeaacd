import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AdminAuthConfig } from '../config/types.js';

/**
 * Routes a kubelet (or any load balancer) probes without credentials: an httpGet probe can only send literal
 * headers written into the pod spec, where a token would be readable by anyone who can read the spec. They
 * answer `{"status":"ok"}` / `{"ready":…}` and reveal nothing else, so they stay open.
 */
export const UNAUTHENTICATED_PATHS: ReadonlySet<string> = new Set(['/health', '/ready']);

const REALM = 'ts-gateway admin';

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * Checks the Authorization header of an admin request. Secrets are kept as SHA-256 digests and compared with
 * timingSafeEqual: both sides are 32 bytes whatever was sent, so neither the length nor the first differing byte
 * of a guess shows in the answer time. Basic compares the whole `user:password` pair against every user without
 * stopping at a match, so the time does not tell which user names exist either.
 */
export class AdminAuth {
  /** the WWW-Authenticate value of a 401 (RFC 9110 §11.6.1) */
  readonly challenge: string;
  private readonly scheme: 'bearer' | 'basic';
  private readonly digests: Buffer[];

  constructor(config: AdminAuthConfig) {
    if (config.type === 'bearer') {
      this.scheme = 'bearer';
      this.digests = [digest(config.token)];
      this.challenge = `Bearer realm="${REALM}"`;
    } else {
      this.scheme = 'basic';
      this.digests = config.users.map((u) => digest(`${u.username}:${u.password}`));
      this.challenge = `Basic realm="${REALM}", charset="UTF-8"`;
    }
  }

  static from(config: AdminAuthConfig | undefined): AdminAuth | null {
    return config === undefined ? null : new AdminAuth(config);
  }

  /** Whether this request may use `path`: the probes always, everything else with valid credentials. */
  allows(req: IncomingMessage, path: string): boolean {
    return UNAUTHENTICATED_PATHS.has(path) || this.verify(req.headers.authorization);
  }

  verify(header: string | undefined): boolean {
    const presented = this.presented(header);
    if (presented === null) return false;
    const given = digest(presented);
    let ok = false;
    for (const d of this.digests) ok = timingSafeEqual(given, d) || ok;
    return ok;
  }

  /** The secret part of an Authorization header of this scheme (`user:password` for Basic), or null. */
  private presented(header: string | undefined): string | null {
    if (header === undefined) return null;
    const space = header.indexOf(' ');
    if (space === -1) return null;
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    if (header.slice(0, space).toLowerCase() !== this.scheme) return null;
    const value = header.slice(space + 1).trim();
    if (this.scheme === 'bearer') return value;
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    return decoded.includes(':') ? decoded : null;
  }
}

/** What the schema cannot say: which fields each auth type needs. JSON paths as the validator reports them. */
export function adminAuthConfigErrors(auth: AdminAuthConfig | undefined): string[] {
  if (auth === undefined) return [];
  const raw = auth as unknown as Record<string, unknown>;
  const errors: string[] = [];
  if (auth.type === 'bearer') {
    if (raw.token === undefined) errors.push('/admin/auth: must have required property "token" (type "bearer")');
    if (raw.users !== undefined) errors.push('/admin/auth/users: only for type "basic" (type is "bearer")');
  } else {
    if (raw.users === undefined) errors.push('/admin/auth: must have required property "users" (type "basic")');
    if (raw.token !== undefined) errors.push('/admin/auth/token: only for type "bearer" (type is "basic")');
    const seen = new Set<string>();
    (auth.users ?? []).forEach((u, i) => {
      if (seen.has(u.username)) errors.push(`/admin/auth/users/${i}/username: "${u.username}" is listed twice`);
      seen.add(u.username);
    });
  }
  return errors;
}
