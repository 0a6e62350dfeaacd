import type { GatewayPlugin, PluginInstance } from '../../types.js';
import type { RequestContext } from '../../../context.js';
import { CidrSet } from '../shared/cidr.js';
import { clientIpResolver, trustForwardedSchema, type TrustForwarded } from '../shared/client-ip.js';
import { sendError } from '../shared/headers.js';

export interface IpFilterOptions {
  /** IPs/CIDRs allowed; empty = everyone not denied */
  allow: string[];
  /** IPs/CIDRs denied; checked first */
  deny: string[];
  trustForwarded: TrustForwarded;
}

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
    properties: { allow: list, deny: list, trustForwarded: trustForwardedSchema },
  },
  init(options, api): PluginInstance {
    const allow = new CidrSet(options.allow, 'ip-filter allow');
    const deny = new CidrSet(options.deny, 'ip-filter deny');
    const clientIp = clientIpResolver(options.trustForwarded);
    const denied = api.counter('ip_filter_denied_total', 'requests refused by ip-filter');
    const refused = (ip: string): boolean => (deny.size > 0 && deny.has(ip)) || (allow.size > 0 && !allow.has(ip));
    // Without forwarded headers the verdict is a property of the connection: decide once per keep-alive socket
    // (BlockList parses the address on every check).
    const perSocket = options.trustForwarded === false || (Array.isArray(options.trustForwarded) && options.trustForwarded.length === 0);
    const verdicts = new WeakMap<object, boolean>();
    return {
      preHandler(ctx: RequestContext): void {
        const req = ctx.req!;
        let no: boolean | undefined;
        if (perSocket) {
          no = verdicts.get(req.socket);
          if (no === undefined) {
            no = refused(clientIp(req));
            verdicts.set(req.socket, no);
          }
        } else no = refused(clientIp(req));
        if (no) {
          denied.inc();
          sendError(ctx, 403, 'Forbidden');
        }
      },
    };
  },
};

export default ipFilterPlugin;
