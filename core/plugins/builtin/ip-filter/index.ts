import type { RequestContext } from '../../../data/context.js';
import type { GatewayPlugin, PluginInstance } from '../../types.js';
import { CidrSet } from '../shared/cidr.js';
import { clientAddress, clientIpSchema, trustForwardedSchema, type ClientIpSource, type TrustForwarded } from '../shared/client-ip.js';
import { sendError } from '../shared/headers.js';

export interface IpFilterOptions {
  /** IPs/CIDRs allowed; empty = everyone not denied */
  allow: string[];
  /** IPs/CIDRs denied; checked first */
  deny: string[];
  /** where the client address comes from (default: server.trustedProxies' resolution, ctx.clientIp) */
  clientIp?: ClientIpSource;
  /** deprecated: see shared/client-ip.ts */
  trustForwarded?: TrustForwarded;
}

const ALLOW = 0;
const DENY = 1;
const PER_REQUEST = 2;

const list = { type: 'array', items: { type: 'string', minLength: 1 }, default: [] } as const;

/**
 * Allow/deny lists by client address. Enforced in preHandler (not preRoute) so that a route's own ip-filter
 * entry really replaces the global one on that route.
 */
export const ipFilterPlugin: GatewayPlugin<IpFilterOptions> = {
  name: 'ip-filter',
  version: '1.0.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { allow: list, deny: list, clientIp: clientIpSchema, trustForwarded: trustForwardedSchema },
  },
  init(options, api): PluginInstance {
    const allow = new CidrSet(options.allow, 'ip-filter allow');
    const deny = new CidrSet(options.deny, 'ip-filter deny');
    const client = clientAddress('ip-filter', options, (msg) => api.logger.warn(msg));
    const denied = api.counter('ip_filter_denied_total', 'requests refused by ip-filter');
    const refused = (ip: string): boolean => (deny.size > 0 && deny.has(ip)) || (allow.size > 0 && !allow.has(ip));
    // When the address comes from the peer alone the verdict is a property of the connection: decided once per
    // keep-alive socket (BlockList parses the address on every check). A trusted proxy's connection carries
    // many clients: PER_REQUEST marks it, and each of its requests is judged by its own forwarded address.
    const verdicts = new WeakMap<object, number>();
    return {
      preHandler(ctx: RequestContext): void {
        const socket = ctx.req!.socket;
        let v = verdicts.get(socket);
        if (v === undefined) {
          v = client.fixedPerConnection(ctx) ? (refused(client.of(ctx)) ? DENY : ALLOW) : PER_REQUEST;
          verdicts.set(socket, v);
        }
        const no = v === PER_REQUEST ? refused(client.of(ctx)) : v === DENY;
        if (no) {
          denied.inc();
          sendError(ctx, 403, 'Forbidden');
        }
      },
    };
  },
};

export default ipFilterPlugin;
