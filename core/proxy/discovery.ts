import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { UpstreamConfig, UpstreamDnsConfig } from '../config/types.js';

/**
 * DNS discovery of one configured target: a host-name target of an upstream with `dns`, or a `dns+srv://` target.
 * The gateway resolves the name itself (node:dns Resolver, the configured `servers` or the system's) and
 * re-resolves it every `refreshMs`, or when the shortest record TTL runs out with `respectTtl`. Each address
 * becomes a target of its own (core/proxy/upstream.ts); this module only keeps the current list of addresses
 * and says when it changed. A failed lookup keeps the last good list (and says so in stats and metrics), as
 * does a reload: the last good answer of a name outlives the config generation that asked for it.
 */

/** One address to send requests to. */
export interface DiscoveredAddress {
  address: string;
  port: number;
  /** the host name the address was found for: Host header, SNI and the name its certificate must carry */
  hostname: string;
  /** SRV priority (lower is preferred) and weight; 0 and 1 for an A/AAAA answer */
  priority: number;
  weight: number;
}

/** Most addresses one configured target turns into: a bigger answer is cut (sorted first, so the cut is stable). */
export const MAX_ADDRESSES = 256;
/** A TTL of 0 (or 1 s) would re-resolve in a loop: respectTtl never refreshes sooner than this. */
export const MIN_TTL_REFRESH_MS = 1000;
/** CNAMEs followed when looking for a loop before the chain counts as broken. */
const MAX_CNAME_CHAIN = 8;
/** SRV weights map onto balancer weights, whose most is 1000 (upstream-schema.ts). */
const MAX_WEIGHT = 1000;

/** A configured target that needs DNS, parsed from its URL. */
export interface DiscoveryTarget {
  /** as configured */
  url: string;
  kind: 'host' | 'srv';
  /** the name asked for: the host name, or the SRV owner name (_service._tcp.example.com) */
  name: string;
  /** host targets: the URL's port (or the scheme's default); SRV targets take each record's port */
  port: number;
  protocol: 'http:' | 'https:';
  /** the URL's path without a trailing slash ('' for none) */
  basePath: string;
}

/**
 * The discovery a target needs, or null for a target connected to as written: a dns+srv:// URL always needs
 * it; a host name needs it when the upstream has a `dns` block (without one the OS resolves on each connect).
 * dns+srv:// targets speak https when the upstream has a `tls` block.
 */
export function discoveryTarget(url: string, upstream: UpstreamConfig): DiscoveryTarget | null {
  const u = new URL(url);
  const basePath = u.pathname === '/' || u.pathname === '' ? '' : u.pathname.replace(/\/+$/, '');
  if (u.protocol === 'dns+srv:') {
    return { url, kind: 'srv', name: u.hostname.toLowerCase(), port: 0, protocol: upstream.tls !== undefined ? 'https:' : 'http:', basePath };
  }
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  if (upstream.dns === undefined || isIP(host) !== 0) return null;
  const protocol = u.protocol === 'https:' ? 'https:' : 'http:';
  return { url, kind: 'host', name: host.toLowerCase(), port: u.port === '' ? (protocol === 'https:' ? 443 : 80) : Number(u.port), protocol, basePath };
}

/** Semantic checks of `dns`: its servers must be addresses node:dns accepts. */
export function dnsConfigErrors(upstreams: Record<string, UpstreamConfig>): string[] {
  const errors: string[] = [];
  for (const [name, u] of Object.entries(upstreams)) {
    const at = `/upstreams/${name.replace(/~/g, '~0').replace(/\//g, '~1')}/dns/servers`;
    u.dns?.servers?.forEach((server, i) => {
      try {
        new Resolver().setServers([server]);
      } catch {
        errors.push(`${at}/${i}: must be an IP address with an optional port (1.2.3.4:53, [::1]:53), got ${JSON.stringify(server)}`);
      }
    });
  }
  return errors;
}

/** Last good answer per name and resolver, kept across config generations (a reload starts from it). */
const lastGood = new Map<string, DiscoveredAddress[]>();

interface Answer {
  addresses: DiscoveredAddress[];
  /** shortest TTL among the records, seconds; null when the answer had none (SRV records' own TTLs are not exposed) */
  ttlS: number | null;
}

export class DnsDiscovery {
  /** the current addresses: the last good answer */
  addresses: DiscoveredAddress[];
  lookups = 0;
  failures = 0;
  /** the last lookup's error, null once one succeeds */
  lastError: string | null = null;
  lastSuccessAt = 0;
  nextLookupAt = 0;
  private readonly resolver: Resolver;
  private readonly cacheKey: string;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private first: Promise<void> | null = null;

  constructor(
    readonly target: DiscoveryTarget,
    private readonly cfg: UpstreamDnsConfig,
    private readonly logger: Logger,
    /** called after `addresses` changed */
    private readonly onChange: () => void,
  ) {
    // a lookup must end well before the next one is due; two tries ride out one lost datagram
    this.resolver = new Resolver({ timeout: Math.min(2000, Math.max(250, cfg.refreshMs)), tries: 2 });
    if (cfg.servers !== undefined) this.resolver.setServers(cfg.servers);
    this.cacheKey = `${target.kind} ${target.name}:${target.port} @${(cfg.servers ?? []).join(',')}`;
    this.addresses = lastGood.get(this.cacheKey) ?? [];
  }

  /**
   * Starts resolving. The promise settles when the first lookup did (whatever its outcome), or at once when an
   * earlier generation left a good answer: a reload must not wait for a DNS server that stopped answering.
   */
  start(): Promise<void> {
    if (this.first === null) {
      const lookup = this.lookup();
      this.first = this.addresses.length > 0 ? Promise.resolve() : lookup;
    }
    return this.first;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.resolver.cancel();
  }

  private async lookup(): Promise<void> {
    this.lookups++;
    let delay = this.cfg.refreshMs;
    try {
      const answer = this.target.kind === 'srv' ? await this.resolveSrv() : await this.resolveHost(this.target.name, this.target.port, 0, 1);
      if (this.stopped) return;
      if (answer.addresses.length === 0) throw new Error(`no records for ${this.target.name}`);
      this.accept(answer.addresses);
      if (this.cfg.respectTtl && answer.ttlS !== null) delay = Math.max(MIN_TTL_REFRESH_MS, answer.ttlS * 1000);
    } catch (err) {
      if (this.stopped) return;
      this.failures++;
      const message = (err as Error).message;
      const keep = this.addresses.length;
      // once per failing spell at warn: a refresh every 100 ms must not flood the log
      if (this.lastError === null)
        this.logger.warn({ target: this.target.url, err: message, keeping: keep }, 'DNS lookup failed; keeping the last good addresses');
      else this.logger.debug({ target: this.target.url, err: message }, 'DNS lookup failed again');
      this.lastError = message;
    }
    this.schedule(delay);
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.nextLookupAt = Date.now() + delay;
    this.timer = setTimeout(() => void this.lookup(), delay);
    this.timer.unref();
  }

  private accept(found: DiscoveredAddress[]): void {
    // stable order (priority, then address): the same answer in another order is no change, and a cut keeps the same addresses
    found.sort((a, b) => a.priority - b.priority || (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port));
    const seen = new Set<string>();
    let list = found.filter((a) => {
      const k = `${a.address}:${a.port}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    if (list.length > MAX_ADDRESSES) {
      this.logger.warn(
        { target: this.target.url, records: list.length, using: MAX_ADDRESSES },
        `DNS answer has ${list.length} addresses; using the first ${MAX_ADDRESSES}`,
      );
      list = list.slice(0, MAX_ADDRESSES);
    }
    if (this.lastError !== null) this.logger.info({ target: this.target.url, addresses: list.length }, 'DNS lookup succeeds again');
    this.lastError = null;
    this.lastSuccessAt = Date.now();
    lastGood.set(this.cacheKey, list);
    if (sameAddresses(list, this.addresses)) return;
    this.logger.info({ target: this.target.url, addresses: list.map((a) => `${a.address}:${a.port}`) }, 'DNS answer changed');
    this.addresses = list;
    this.onChange();
  }

  /** A and AAAA records of a name (either may be absent); an empty answer is explained (CNAME loop) or an error. */
  private async resolveHost(name: string, port: number, priority: number, weight: number): Promise<Answer> {
    const [v4, v6] = await Promise.allSettled([this.resolver.resolve4(name, { ttl: true }), this.resolver.resolve6(name, { ttl: true })]);
    const records = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (records.length === 0) {
      if (v4.status === 'rejected' && !noData(v4.reason)) throw lookupError(name, v4.reason);
      if (v6.status === 'rejected' && !noData(v6.reason)) throw lookupError(name, v6.reason);
      await this.explainEmpty(name);
      throw new Error(`no A/AAAA records for ${name}`);
    }
    let ttlS = Infinity;
    const addresses: DiscoveredAddress[] = [];
    for (const r of records) {
      if (r.ttl < ttlS) ttlS = r.ttl;
      addresses.push({ address: r.address, port, hostname: name, priority, weight });
    }
    return { addresses, ttlS };
  }

  /**
   * A name whose answer holds CNAMEs but no address: follow the CNAMEs one question at a time and name the loop
   * (or the over-long chain) in the error, since node:dns just answers an empty list.
   */
  private async explainEmpty(name: string): Promise<void> {
    const chain = [name];
    let current = name;
    for (let i = 0; i < MAX_CNAME_CHAIN; i++) {
      let next: string[];
      try {
        next = await this.resolver.resolveCname(current);
      } catch {
        return;
      }
      if (next.length === 0) return;
      current = next[0]!.toLowerCase().replace(/\.$/, '');
      if (chain.includes(current)) throw new Error(`CNAME loop: ${[...chain, current].join(' → ')}`);
      chain.push(current);
    }
    throw new Error(`CNAME chain longer than ${MAX_CNAME_CHAIN}: ${chain.join(' → ')} → …`);
  }

  /** SRV records, then each record's host; a host that does not resolve drops its records, not the answer. */
  private async resolveSrv(): Promise<Answer> {
    const records = await this.resolver.resolveSrv(this.target.name).catch((err: unknown) => {
      throw lookupError(this.target.name, err);
    });
    if (records.length === 0) throw new Error(`no SRV records for ${this.target.name}`);
    // lowest priority first, heavier first: a cut to MAX_ADDRESSES keeps the records that would be used
    records.sort((a, b) => a.priority - b.priority || b.weight - a.weight);
    const used = records.slice(0, MAX_ADDRESSES);
    if (records.length > MAX_ADDRESSES) {
      this.logger.warn(
        { target: this.target.url, records: records.length, using: MAX_ADDRESSES },
        `SRV answer has ${records.length} records; using the first ${MAX_ADDRESSES}`,
      );
    }
    const results = await Promise.allSettled(
      used.map((r) => {
        const host = r.name.toLowerCase().replace(/\.$/, '');
        const weight = Math.min(MAX_WEIGHT, Math.max(1, r.weight));
        return isIP(host) !== 0
          ? Promise.resolve<Answer>({ addresses: [{ address: host, port: r.port, hostname: host, priority: r.priority, weight }], ttlS: null })
          : this.resolveHost(host, r.port, r.priority, weight);
      }),
    );
    const addresses: DiscoveredAddress[] = [];
    let ttlS: number | null = null;
    let firstError: unknown = null;
    for (const res of results) {
      if (res.status === 'rejected') {
        firstError ??= res.reason;
        continue;
      }
      addresses.push(...res.value.addresses);
      if (res.value.ttlS !== null && (ttlS === null || res.value.ttlS < ttlS)) ttlS = res.value.ttlS;
    }
    if (addresses.length === 0 && firstError !== null) throw firstError as Error;
    // the SRV records' own TTL is not exposed by node:dns: refreshMs bounds how long they are trusted
    const refreshS = this.cfg.refreshMs / 1000;
    return { addresses, ttlS: ttlS === null || ttlS > refreshS ? refreshS : ttlS };
  }

  stats(): Record<string, unknown> {
    return {
      target: this.target.url,
      name: this.target.name,
      addresses: this.addresses.length,
      lookups: this.lookups,
      failures: this.failures,
      lastError: this.lastError,
      lastSuccessAt: this.lastSuccessAt === 0 ? null : new Date(this.lastSuccessAt).toISOString(),
      nextLookupInMs: this.nextLookupAt === 0 ? null : Math.max(0, this.nextLookupAt - Date.now()),
    };
  }
}

function noData(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENODATA' || code === 'ENOTFOUND';
}

function lookupError(name: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  return new Error(`${name}: ${code ?? (err as Error).message}`);
}

function sameAddresses(a: DiscoveredAddress[], b: DiscoveredAddress[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.address !== y.address || x.port !== y.port || x.priority !== y.priority || x.weight !== y.weight || x.hostname !== y.hostname) return false;
  }
  return true;
}
