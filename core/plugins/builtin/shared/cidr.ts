import { BlockList, isIP } from 'node:net';
import { normalizeIp } from '../../../proxy/trust.js';

/** A set of IPs and CIDR ranges, IPv4 and IPv6 (node:net BlockList does the prefix matching). */
export class CidrSet {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(entries: readonly string[], what: string) {
    for (const raw of entries) {
      const entry = raw.trim();
      const slash = entry.indexOf('/');
      const addr = normalizeIp(slash === -1 ? entry : entry.slice(0, slash));
      const family = isIP(addr);
      if (family === 0) throw new Error(`${what}: not an IP or CIDR: ${raw}`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (slash === -1) {
        this.list.addAddress(addr, type);
        continue;
      }
      const prefixText = entry.slice(slash + 1);
      const prefix = Number(prefixText);
      if (prefixText === '' || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
        throw new Error(`${what}: bad prefix length: ${raw}`);
      }
      this.list.addSubnet(addr, prefix, type);
    }
    this.size = entries.length;
  }

  /** `ip` must be normalised (normalizeIp): an IPv4-mapped IPv6 peer is checked as IPv4. */
  has(ip: string): boolean {
    const family = isIP(ip);
    if (family === 0) return false;
    return this.list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  }
}
