import { BlockList, isIP } from 'node:net';

/** `::ffff:10.0.0.1` (how a dual-stack socket reports an IPv4 peer) → `10.0.0.1`. */
export function normalizeIp(ip: string): string {
  if (ip.length > 7 && ip.charCodeAt(0) === 58 /* : */ && ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4) return ip.slice(7);
  return ip;
}

/** The configured trusted proxies (IPs and CIDRs, IPv4 and IPv6); whose X-Forwarded-* / Forwarded we believe. */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(entries: string[]) {
    for (const raw of entries) {
      const entry = raw.trim();
      const slash = entry.indexOf('/');
      const addr = normalizeIp(slash === -1 ? entry : entry.slice(0, slash));
      const family = isIP(addr);
      if (family === 0) throw new Error(`trustedProxies: not an IP or CIDR: ${raw}`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (slash === -1) {
        this.list.addAddress(addr, type);
      } else {
        const prefix = Number(entry.slice(slash + 1));
        if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) throw new Error(`trustedProxies: bad prefix length: ${raw}`);
        this.list.addSubnet(addr, prefix, type);
      }
    }
    this.empty = entries.length === 0;
  }

  /** `ip` must already be normalised (normalizeIp). */
  trusts(ip: string): boolean {
    if (this.empty) return false;
    const family = isIP(ip);
    if (family === 0) return false;
    return this.list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * The client address: the socket peer, or — when the peer is trusted — the right-most X-Forwarded-For entry
   * that is not itself a trusted proxy (entries left of it could have been written by anyone).
   */
  clientIp(peer: string, xff: string | undefined): string {
    if (xff === undefined || !this.trusts(peer)) return peer;
    const parts = xff.split(',');
    let candidate = peer;
    for (let i = parts.length - 1; i >= 0; i--) {
      const ip = normalizeIp(parts[i]!.trim());
      if (isIP(ip) === 0) return candidate;
      candidate = ip;
      if (!this.trusts(ip)) return ip;
    }
    return candidate;
  }
}
