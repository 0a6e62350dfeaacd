import type { IncomingMessage } from 'node:http';
import { normalizeIp, TrustedProxies } from '../../../proxy/trust.js';

/**
 * `trustForwarded` as plugins accept it: false (default) → the socket peer is the client; true → the peer is a
 * proxy we trust, so the right-most X-Forwarded-For entry is the client; a list of IPs/CIDRs → walk
 * X-Forwarded-For from the right past every trusted proxy (spoofed entries left of the first untrusted hop are
 * never believed).
 */
export type TrustForwarded = boolean | string[];

export const trustForwardedSchema = {
  oneOf: [{ type: 'boolean' }, { type: 'array', items: { type: 'string', minLength: 1 } }],
  default: false,
} as const;

export type ClientIpResolver = (req: IncomingMessage) => string;

export function clientIpResolver(trust: TrustForwarded): ClientIpResolver {
  if (trust === false || (Array.isArray(trust) && trust.length === 0)) {
    return (req) => normalizeIp(req.socket.remoteAddress ?? '');
  }
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
