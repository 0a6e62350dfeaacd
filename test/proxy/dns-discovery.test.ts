import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DashboardFeed } from '../../core/admin/dashboard-feed.js';
import { validateConfig } from '../../core/config/validator.js';
import { configWarnings } from '../../core/config/warnings.js';
import { inProcessAdminSource, startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { MAX_ADDRESSES, MIN_TTL_REFRESH_MS } from '../../core/proxy/discovery.js';
import type { UpstreamManager } from '../../core/proxy/index.js';
import { TestDnsServer, type DnsRecord } from '../support/dns-server.js';
import { request } from '../support/http.js';
import { eventually, until } from '../support/wait.js';
import { CLIENT_VARIANTS } from './helpers.js';

/**
 * DNS discovery with a real DNS server on 127.0.0.1 (test/support/dns-server.ts, answers changed by the test)
 * and real upstreams on other loopback addresses (127.0.0.2, 127.0.0.3, ...: all of 127/8 is this machine).
 */

interface AddressUpstream {
  host: string;
  port: number;
  served: number;
  hold: Promise<void> | null;
  /** requests that waited on `hold` */
  waiting: number;
  close(): Promise<void>;
}

/**
 * An HTTP server on host:port (port 0: any) answering with its own address and the Host header it got; while
 * `hold` is set, answers wait until it is cleared (requests in flight on demand).
 */
async function startOn(host: string, port = 0): Promise<AddressUpstream> {
  const u: AddressUpstream = { host, port: 0, served: 0, hold: null, waiting: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    u.served++;
    req.resume();
    const answer = (): void => {
      const body = JSON.stringify({ at: host, host: req.headers.host });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (u.hold === null) return answer();
    u.waiting++;
    void u.hold.then(answer);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  u.port = (server.address() as AddressInfo).port;
  u.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return u;
}

/** Upstreams on each host, all on one port (an A/AAAA answer carries no port). */
async function startOnSamePort(hosts: string[]): Promise<AddressUpstream[]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = await startOn(hosts[0]!);
    const rest: AddressUpstream[] = [];
    try {
      for (const h of hosts.slice(1)) rest.push(await startOn(h, first.port));
      return [first, ...rest];
    } catch {
      await Promise.all([first, ...rest].map((u) => u.close()));
    }
  }
  throw new Error('no port free on every address');
}

interface TargetStats {
  url: string;
  source: string;
  healthy: boolean;
  draining: boolean;
  priority: number;
  weight: number;
  requests: number;
}
interface DiscoveryStats {
  target: string;
  addresses: number;
  lookups: number;
  failures: number;
  lastError: string | null;
}

function upstreamStats(gw: RunningGateway, name = 'api'): { targets: TargetStats[]; discovery: DiscoveryStats[] } {
  const m = gw.gateway.server.currentRuntime.upstreams as UpstreamManager;
  return m.stats()[name] as { targets: TargetStats[]; discovery: DiscoveryStats[] };
}

const live = (gw: RunningGateway): string[] =>
  upstreamStats(gw)
    .targets.filter((t) => !t.draining)
    .map((t) => t.url)
    .sort();

function capture(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    }),
  );
  return { logger, lines };
}

const a = (address: string, ttl = 30): DnsRecord => ({ type: 'A', address, ttl });

describe('DNS discovery of upstream targets', () => {
  let dns: TestDnsServer;
  let two: AddressUpstream;
  let three: AddressUpstream;

  beforeAll(async () => {
    dns = new TestDnsServer();
    await dns.start();
    const pair = await startOnSamePort(['127.0.0.2', '127.0.0.3']);
    two = pair[0]!;
    three = pair[1]!;
  });
  afterAll(async () => {
    await Promise.all([dns?.stop(), two?.close(), three?.close()]);
  });

  for (const variant of CLIENT_VARIANTS) {
    it(`${variant}: every address is a target; addresses come and go under load without a failed request`, async () => {
      const name = `svc-${variant}.test`;
      dns.set(name, [a('127.0.0.2')]);
      const gw = await startGateway({
        server: { host: '127.0.0.1' },
        admin: { enabled: false },
        logging: { level: 'silent' },
        variants: { upstream: variant },
        upstreams: { api: { targets: [`http://${name}:${two.port}`], dns: { servers: [dns.address], refreshMs: 100 } } },
        routes: [{ path: '/', upstream: 'api' }],
      });
      try {
        const port = two.port;
        // the first answer is in before the gateway serves
        expect(live(gw)).toEqual([`http://127.0.0.2:${port}`]);
        const first = JSON.parse((await request(`${gw.url}/`, { agent: false })).body) as { at: string; host: string };
        expect(first).toEqual({ at: '127.0.0.2', host: `${name}:${port}` });

        // bounded load in the background while the answer changes: 2 → 2+3 → 3 → 2
        const statuses = new Map<number, number>();
        const errors: string[] = [];
        const seen = new Set<string>();
        let stop = false;
        let sent = 0;
        const loop = async (): Promise<void> => {
          while (!stop && sent < 5000) {
            sent++;
            try {
              const r = await request(`${gw.url}/`, { timeoutMs: 5000 });
              statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
              if (r.status === 200) seen.add((JSON.parse(r.body) as { at: string }).at);
            } catch (err) {
              errors.push((err as Error).message);
            }
          }
        };
        const traffic = Promise.all([loop(), loop(), loop(), loop()]);
        const phase = async (addresses: string[]): Promise<void> => {
          dns.set(
            name,
            addresses.map((x) => a(x)),
          );
          const want = addresses.map((x) => `http://${x}:${port}`).sort();
          await until(() => JSON.stringify(live(gw)) === JSON.stringify(want), {
            message: () => `targets ${JSON.stringify(live(gw))}, want ${JSON.stringify(want)}`,
          });
          const servedBefore = sent;
          await until(() => sent - servedBefore >= 40, { message: 'requests flow in this phase' });
        };
        await phase(['127.0.0.2', '127.0.0.3']);
        await phase(['127.0.0.3']);
        await phase(['127.0.0.2']);
        stop = true;
        await traffic;
        expect(errors).toEqual([]);
        expect([...statuses.keys()]).toEqual([200]);
        expect([...seen].sort()).toEqual(['127.0.0.2', '127.0.0.3']);
        // 127.0.0.3 left: it drained and its pool closed
        await until(() => upstreamStats(gw).targets.length === 1, { message: () => JSON.stringify(upstreamStats(gw).targets) });
        const t = upstreamStats(gw).targets[0]!;
        expect(t).toMatchObject({ url: `http://127.0.0.2:${port}`, source: `http://${name}:${port}`, healthy: true, draining: false });
      } finally {
        await gw.close();
      }
    });
  }

  it('an address that leaves the answer drains: its request in flight finishes, new requests go elsewhere, then its pool closes', async () => {
    const [stay, leave] = await startOnSamePort(['127.0.0.7', '127.0.0.8']);
    const port = stay!.port;
    dns.set('drain.test', [a('127.0.0.7'), a('127.0.0.8')]);
    const gw = await startGateway({
      server: { host: '127.0.0.1' },
      admin: { enabled: false },
      logging: { level: 'silent' },
      upstreams: { api: { targets: [`http://drain.test:${port}`], dns: { servers: [dns.address], refreshMs: 100 } } },
      routes: [{ path: '/', upstream: 'api' }],
    });
    try {
      let release!: () => void;
      leave!.hold = new Promise<void>((r) => (release = r));
      // round-robin: one of the first two requests reaches 127.0.0.8 and waits there
      const inFlight = [request(`${gw.url}/`, { agent: false }), request(`${gw.url}/`, { agent: false })];
      await until(() => leave!.waiting === 1, { message: 'a request waits on 127.0.0.8' });
      dns.set('drain.test', [a('127.0.0.7')]);
      await until(() => upstreamStats(gw).targets.some((t) => t.draining), { message: () => JSON.stringify(upstreamStats(gw).targets) });
      const draining = upstreamStats(gw).targets.find((t) => t.draining)!;
      expect(draining.url).toBe(`http://127.0.0.8:${port}`);
      // the dashboard lists each address with the name it came from, and the leaving one as draining
      const feed = new DashboardFeed(
        inProcessAdminSource(
          gw.gateway,
          async () => ({ ok: true, version: 1, errors: [] }),
          () => true,
        ),
      );
      const rows = (await feed.sample()).targets.map((t) => ({ url: t.url, source: t.source, draining: t.draining }));
      feed.close();
      expect(rows.sort((x, y) => x.url.localeCompare(y.url))).toEqual([
        { url: `http://127.0.0.7:${port}`, source: `http://drain.test:${port}`, draining: 0 },
        { url: `http://127.0.0.8:${port}`, source: `http://drain.test:${port}`, draining: 1 },
      ]);
      const servedBefore = leave!.served;
      for (let i = 0; i < 6; i++) expect(JSON.parse((await request(`${gw.url}/`, { agent: false })).body).at).toBe('127.0.0.7');
      expect(leave!.served).toBe(servedBefore);

      // back in the answer while its request is still in flight: the same target returns to rotation (its pool,
      // counters and state), not a second one for the same address
      dns.set('drain.test', [a('127.0.0.7'), a('127.0.0.8')]);
      await until(() => live(gw).length === 2, { message: () => JSON.stringify(upstreamStats(gw).targets) });
      const back = upstreamStats(gw).targets;
      expect(back).toHaveLength(2);
      expect(back.find((t) => t.url === `http://127.0.0.8:${port}`)).toMatchObject({ draining: false, requests: 1 });
      dns.set('drain.test', [a('127.0.0.7')]);
      await until(() => upstreamStats(gw).targets.some((t) => t.draining), { message: () => JSON.stringify(upstreamStats(gw).targets) });

      release();
      const answers = await Promise.all(inFlight);
      expect(answers.map((r) => r.status)).toEqual([200, 200]);
      expect(answers.map((r) => (JSON.parse(r.body) as { at: string }).at).sort()).toEqual(['127.0.0.7', '127.0.0.8']);
      await until(() => upstreamStats(gw).targets.length === 1, { message: () => JSON.stringify(upstreamStats(gw).targets) });
    } finally {
      await gw.close();
      await Promise.all([stay!.close(), leave!.close()]);
    }
  });

  it('AAAA records: an IPv6 address is a target of its own next to the IPv4 one, with the name as Host', async () => {
    const v6 = await startOn('::1', two.port).catch(() => startOn('::1'));
    const port = v6.port;
    const v4 = port === two.port ? two : await startOn('127.0.0.2', port);
    dns.set('dual.test', [a('127.0.0.2'), { type: 'AAAA', address: '::1' }]);
    const gw = await startGateway({
      server: { host: '127.0.0.1' },
      admin: { enabled: false },
      logging: { level: 'silent' },
      upstreams: { api: { targets: [`http://dual.test:${port}`], dns: { servers: [dns.address] } } },
      routes: [{ path: '/', upstream: 'api' }],
    });
    try {
      expect(live(gw)).toEqual([`http://127.0.0.2:${port}`, `http://[::1]:${port}`]);
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const r = JSON.parse((await request(`${gw.url}/`, { agent: false })).body) as { at: string; host: string };
        expect(r.host).toBe(`dual.test:${port}`);
        seen.add(r.at);
      }
      expect([...seen].sort()).toEqual(['127.0.0.2', '::1']);
    } finally {
      await gw.close();
      await v6.close();
      if (v4 !== two) await v4.close();
    }
  });

  it('SRV: the lowest priority takes the requests, split by weight; the next priority when it is down', async () => {
    const [p10a, p10b, p20] = await Promise.all([startOn('127.0.0.4'), startOn('127.0.0.5'), startOn('127.0.0.6')]);
    dns.set('_api._tcp.srv.test', [
      { type: 'SRV', priority: 10, weight: 30, port: p10a!.port, target: 'a.srv.test' },
      { type: 'SRV', priority: 10, weight: 10, port: p10b!.port, target: 'b.srv.test' },
      { type: 'SRV', priority: 20, weight: 10, port: p20!.port, target: 'c.srv.test' },
    ]);
    dns.set('a.srv.test', [a('127.0.0.4')]);
    dns.set('b.srv.test', [a('127.0.0.5')]);
    dns.set('c.srv.test', [a('127.0.0.6')]);
    const gw = await startGateway({
      server: { host: '127.0.0.1' },
      admin: { enabled: true, host: '127.0.0.1' },
      logging: { level: 'silent' },
      upstreams: {
        api: {
          targets: ['dns+srv://_api._tcp.srv.test'],
          dns: { servers: [dns.address], refreshMs: 200 },
          retries: { count: 2 },
          healthCheck: { passive: { failures: 1, windowMs: 60_000 } },
        },
      },
      routes: [{ path: '/', upstream: 'api' }],
    });
    try {
      const byTarget = upstreamStats(gw).targets.map((t) => [t.url, t.priority, t.weight]);
      expect(byTarget.sort()).toEqual([
        [`http://127.0.0.4:${p10a!.port}`, 10, 30],
        [`http://127.0.0.5:${p10b!.port}`, 10, 10],
        [`http://127.0.0.6:${p20!.port}`, 20, 10],
      ]);
      const hosts = new Set<string>();
      for (let i = 0; i < 80; i++) {
        const r = await request(`${gw.url}/`, { agent: false });
        expect(r.status).toBe(200);
        hosts.add((JSON.parse(r.body) as { host: string }).host);
      }
      // smooth weighted round-robin over 80 requests at weights 30:10 is exact; priority 20 gets none
      expect([p10a!.served, p10b!.served, p20!.served]).toEqual([60, 20, 0]);
      // Host is each SRV record's target with its port
      expect([...hosts].sort()).toEqual([`a.srv.test:${p10a!.port}`, `b.srv.test:${p10b!.port}`]);

      // priority 10 goes away: its requests fail over to priority 20 within each request's retries
      await Promise.all([p10a!.close(), p10b!.close()]);
      for (let i = 0; i < 20; i++) {
        const r = await request(`${gw.url}/`, { agent: false });
        expect(r.status).toBe(200);
        expect((JSON.parse(r.body) as { at: string }).at).toBe('127.0.0.6');
      }
      // /metrics lists each address as a target with its health
      const metrics = (await request(`${gw.adminUrl}/metrics`)).body;
      expect(metrics).toContain(`gateway_upstream_target_healthy{upstream="api",target="http://127.0.0.6:${p20!.port}"} 1`);
      expect(metrics).toContain(`gateway_upstream_target_healthy{upstream="api",target="http://127.0.0.4:${p10a!.port}"} 0`);
      expect(metrics).toContain('gateway_upstream_dns_addresses{upstream="api",target="dns+srv://_api._tcp.srv.test"} 3');
    } finally {
      await gw.close();
      await p20!.close();
    }
  });

  it('a DNS server that stops answering: the last good targets keep serving, across a reload too; the failure shows in /stats and /metrics', async () => {
    const silentDns = new TestDnsServer();
    await silentDns.start();
    silentDns.set('keep.test', [a('127.0.0.2'), a('127.0.0.3')]);
    const raw = {
      server: { host: '127.0.0.1' },
      admin: { enabled: true, host: '127.0.0.1' },
      logging: { level: 'silent' },
      upstreams: { api: { targets: [`http://keep.test:${two.port}`], dns: { servers: [silentDns.address], refreshMs: 150 } } },
      routes: [{ path: '/', upstream: 'api' }],
    };
    const gw = await startGateway(raw);
    try {
      expect(live(gw)).toHaveLength(2);
      silentDns.silent = true;
      const failed = await eventually(
        () => {
          const d = upstreamStats(gw).discovery[0]!;
          return d.lastError !== null ? d : undefined;
        },
        { message: () => JSON.stringify(upstreamStats(gw).discovery) },
      );
      expect(failed.lastError).toMatch(/ETIMEOUT|timeout/i);
      expect(failed.addresses).toBe(2);
      expect(live(gw)).toHaveLength(2);
      for (let i = 0; i < 10; i++) expect((await request(`${gw.url}/`, { agent: false })).status).toBe(200);
      const stats = JSON.parse((await request(`${gw.adminUrl}/stats`)).body) as { workers: Array<{ upstreams: { api: { discovery: DiscoveryStats[] } } }> };
      expect(stats.workers[0]!.upstreams.api.discovery[0]!.lastError).toMatch(/ETIMEOUT|timeout/i);
      const metrics = (await request(`${gw.adminUrl}/metrics`)).body;
      expect(metrics).toContain(`gateway_upstream_dns_failing{upstream="api",target="http://keep.test:${two.port}"} 1`);
      expect(metrics).toMatch(new RegExp(`gateway_upstream_dns_failures_total\\{upstream="api",target="http://keep.test:${two.port}"\\} [1-9]`));

      // a new config generation starts from the last good answer, not from nothing
      expect((await gw.reload(raw)).errors).toEqual([]);
      expect(live(gw)).toHaveLength(2);
      for (let i = 0; i < 10; i++) expect((await request(`${gw.url}/`, { agent: false })).status).toBe(200);
    } finally {
      await gw.close();
      await silentDns.stop();
    }
  });

  it(`an answer with 10,000 records is cut to ${MAX_ADDRESSES} targets with a warning`, async () => {
    // 127.x.y.z: were any of them ever asked, it would be this machine (no request is sent here)
    const many = Array.from({ length: 10_000 }, (_, i) => a(`127.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`));
    dns.set('many.test', many);
    const { logger, lines } = capture();
    const gw = await startGateway(
      {
        server: { host: '127.0.0.1' },
        admin: { enabled: false },
        upstreams: { api: { targets: ['http://many.test:8080'], dns: { servers: [dns.address] } } },
        routes: [{ path: '/', upstream: 'api' }],
      },
      { logger },
    );
    try {
      expect(upstreamStats(gw).targets).toHaveLength(MAX_ADDRESSES);
      const warning = lines.find((l) => typeof l.msg === 'string' && l.msg.includes(`using the first ${MAX_ADDRESSES}`));
      // one DNS message holds at most 65,535 bytes: the server sends as many of the 10,000 as fit (over 2,000)
      expect(warning, JSON.stringify(lines)).toMatchObject({ level: 40, using: MAX_ADDRESSES });
      expect(warning!.records as number).toBeGreaterThan(2000);
    } finally {
      await gw.close();
    }
  });

  it('a CNAME loop is a clear error; the last good targets stay', async () => {
    dns.set('loop.test', [a('127.0.0.2')]);
    const gw = await startGateway({
      server: { host: '127.0.0.1' },
      admin: { enabled: false },
      logging: { level: 'silent' },
      upstreams: { api: { targets: [`http://loop.test:${two.port}`], dns: { servers: [dns.address], refreshMs: 100 } } },
      routes: [{ path: '/', upstream: 'api' }],
    });
    try {
      expect(live(gw)).toEqual([`http://127.0.0.2:${two.port}`]);
      dns.set('loop.test', [{ type: 'CNAME', target: 'loop2.test' }]);
      dns.set('loop2.test', [{ type: 'CNAME', target: 'loop.test' }]);
      const d = await eventually(
        () => {
          const s = upstreamStats(gw).discovery[0]!;
          return s.lastError !== null ? s : undefined;
        },
        { message: () => JSON.stringify(upstreamStats(gw).discovery) },
      );
      expect(d.lastError).toBe('CNAME loop: loop.test → loop2.test → loop.test');
      expect(live(gw)).toEqual([`http://127.0.0.2:${two.port}`]);
      expect((await request(`${gw.url}/`, { agent: false })).status).toBe(200);
    } finally {
      await gw.close();
    }
  });

  it(`a TTL of 0 with respectTtl re-resolves no more often than every ${MIN_TTL_REFRESH_MS} ms`, async () => {
    dns.set('ttl0.test', [a('127.0.0.2', 0)]);
    const gw = await startGateway({
      server: { host: '127.0.0.1' },
      admin: { enabled: false },
      logging: { level: 'silent' },
      upstreams: { api: { targets: [`http://ttl0.test:${two.port}`], dns: { servers: [dns.address], respectTtl: true, refreshMs: 60_000 } } },
      routes: [{ path: '/', upstream: 'api' }],
    });
    try {
      // refreshMs is a minute: a third lookup soon after proves the TTL drives the refresh
      await until(() => (dns.askedAt.get('A ttl0.test') ?? []).length >= 3, { message: () => JSON.stringify(dns.askedAt.get('A ttl0.test')) });
      const times = dns.askedAt.get('A ttl0.test')!;
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(MIN_TTL_REFRESH_MS - 50);
      expect((await request(`${gw.url}/`, { agent: false })).status).toBe(200);
    } finally {
      await gw.close();
    }
  });

  it('config: a bad DNS server address is an error with its JSON path; dns or tls that cannot apply is a warning', () => {
    const bad = validateConfig({
      upstreams: { api: { targets: ['http://svc.test:80'], dns: { servers: ['not an address'] } } },
      routes: [{ path: '/', upstream: 'api' }],
    });
    expect(bad.ok ? [] : bad.errors).toEqual([
      '/upstreams/api/dns/servers/0: must be an IP address with an optional port (1.2.3.4:53, [::1]:53), got "not an address"',
    ]);
    const srvBadName = validateConfig({ upstreams: { api: { targets: ['dns+srv://api.test'] } }, routes: [{ path: '/', upstream: 'api' }] });
    expect(srvBadName.ok).toBe(false);
    const useless = validateConfig({
      upstreams: { api: { targets: ['http://127.0.0.2:80'], dns: {}, tls: { verify: false } } },
      routes: [{ path: '/', upstream: 'api' }],
    });
    expect(useless.ok).toBe(true);
    expect(configWarnings(useless.ok ? useless.value : (null as never))).toEqual([
      '/upstreams/api/tls: no effect: every target is http:// (tls applies to https:// and dns+srv:// targets)',
      '/upstreams/api/dns: no effect: every target is an IP address',
    ]);
  });
});
