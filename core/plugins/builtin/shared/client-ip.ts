import type { ServerRequest } from '../../../contracts/server.js';
import type { RequestContext } from '../../../data/context.js';
import { normalizeIp, TrustedProxies } from '../../../proxy/trust.js';

/**
 * Where a plugin keyed on the client takes its address from:
 * - "trustedProxies" (default): `ctx.clientIp`, the gateway's one notion of the client: the socket peer, or the
 *   X-Forwarded-For client when the peer is one of `server.trustedProxies` (the same resolution the proxy uses);
 * - "peer": the socket peer, whatever any forwarding header says.
 */
export type ClientIpSource = 'trustedProxies' | 'peer';

export const clientIpSchema = { enum: ['trustedProxies', 'peer'] } as const;

/**
 * Deprecated: the plugin's own list of trusted proxies, from before `server.trustedProxies` applied to plugins.
 * Still honoured (false → the peer; true → the right-most X-Forwarded-For of any peer; a list → walk
 * X-Forwarded-For past those proxies) so existing configs keep their meaning; init logs a warning.
 */
export type TrustForwarded = boolean | string[];

export const trustForwardedSchema = {
  oneOf: [{ type: 'boolean' }, { type: 'array', items: { type: 'string', minLength: 1 } }],
} as const;

export interface ClientIpOptions {
  clientIp?: ClientIpSource;
  trustForwarded?: TrustForwarded;
}

/**
 * How one plugin instance finds the client address. Built once at init: the request path calls plain methods,
 * no closure or object per request.
 */
export interface ClientAddress {
  /** the client address of this request */
  of(ctx: RequestContext): string;
  /**
   * whether the address is the same for every request on this request's connection (it comes from the peer
   * alone), so a per-connection memo of anything derived from it is safe; false for a trusted proxy's
   * connection, which carries many clients
   */
  fixedPerConnection(ctx: RequestContext): boolean;
}

const fromContext: ClientAddress = {
  of: (ctx) => ctx.clientIp,
  fixedPerConnection: (ctx) => !ctx.peerIsTrustedProxy,
};

const fromPeer: ClientAddress = {
  of: (ctx) => ctx.peerIp,
  fixedPerConnection: () => true,
};

/** `plugin` names the plugin in errors and the deprecation warning. */
export function clientAddress(plugin: string, options: ClientIpOptions, warn: (msg: string) => void): ClientAddress {
  const legacy = options.trustForwarded;
  if (legacy === undefined) return options.clientIp === 'peer' ? fromPeer : fromContext;
  if (options.clientIp !== undefined) {
    throw new Error(`${plugin}: "trustForwarded" is deprecated and cannot be combined with "clientIp"; drop it (server.trustedProxies now applies to plugins)`);
  }
  warn(`${plugin}: "trustForwarded" is deprecated: list the proxies in server.trustedProxies (plugins use it by default) or set "clientIp": "peer"`);
  if (legacy === false || (Array.isArray(legacy) && legacy.length === 0)) return fromPeer;
  const resolve = legacyResolver(legacy);
  return { of: (ctx) => resolve(ctx.req!), fixedPerConnection: () => false };
}

function legacyResolver(trust: true | string[]): (req: ServerRequest) => string {
  if (trust === true) {
    return (req) => {
      const peer = normalizeIp(req.socket.remoteAddress ?? '');
      const xff = req.headers['x-forwarded-for'];
      if (xff === undefined) return peer;
      const joined = typeof xff === 'string' ? xff : xff.join(',');
      const last = joined.slice(joined.lastIndexOf(',') + 1).trim();
      return last === '' ? peer : normalizeIp(last);
    };
  }
  const proxies = new TrustedProxies(trust);
  return (req) => {
    const peer = normalizeIp(req.socket.remoteAddress ?? '');
    const xff = req.headers['x-forwarded-for'];
    return proxies.clientIp(peer, xff === undefined ? undefined : typeof xff === 'string' ? xff : xff.join(','));
  };
}
