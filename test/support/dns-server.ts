import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import * as dnsPacket from 'dns-packet';

/**
 * A DNS server on 127.0.0.1 for tests (UDP and TCP on one ephemeral port), answering from `zone`, which a test
 * changes at any time. An answer too big for a UDP datagram is sent truncated (TC) with no records, as real
 * servers do, so the resolver repeats the question over TCP. `silent` makes it drop every question (a DNS server
 * that stopped answering).
 */
export type DnsRecord =
  | { type: 'A' | 'AAAA'; address: string; ttl?: number }
  | { type: 'SRV'; priority: number; weight: number; port: number; target: string; ttl?: number }
  | { type: 'CNAME'; target: string; ttl?: number };

/** Largest UDP answer sent whole; bigger answers are truncated (RFC 1035's 512, EDNS aside). */
const UDP_LIMIT = 512;

export class TestDnsServer {
  /** name (no trailing dot, lower case) → records */
  readonly zone = new Map<string, DnsRecord[]>();
  silent = false;
  /** questions received, by "TYPE name" */
  readonly asked = new Map<string, number>();
  /** when each question arrived (ms epoch), by "TYPE name" */
  readonly askedAt = new Map<string, number[]>();
  private udp: UdpSocket | null = null;
  private tcp: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  set(name: string, records: DnsRecord[]): void {
    this.zone.set(name.toLowerCase(), records);
  }

  /** Binds UDP to an ephemeral port, then TCP to the same port (retrying when TCP's is taken). */
  async start(): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const udp = createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(0, '127.0.0.1', () => resolve());
      });
      const port = udp.address().port;
      const tcp = createServer((s) => this.serveTcp(s));
      const ok = await new Promise<boolean>((resolve) => {
        tcp.once('error', () => resolve(false));
        tcp.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (!ok) {
        udp.close();
        continue;
      }
      udp.on('message', (msg, rinfo) => {
        const reply = this.reply(msg, true);
        if (reply !== null) udp.send(reply, rinfo.port, rinfo.address);
      });
      this.udp = udp;
      this.tcp = tcp;
      this.port = port;
      return;
    }
    throw new Error('no port free for both UDP and TCP');
  }

  async stop(): Promise<void> {
    this.udp?.close();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r()));
  }

  private serveTcp(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => s.destroy());
    let buf = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const reply = this.reply(msg, false);
        if (reply === null) continue;
        const head = Buffer.alloc(2);
        head.writeUInt16BE(reply.length);
        s.write(Buffer.concat([head, reply]));
      }
    });
  }

  private reply(msg: Buffer, udp: boolean): Buffer | null {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return null;
    }
    const q = query.questions?.[0];
    if (q === undefined) return null;
    const key = `${q.type} ${q.name.toLowerCase()}`;
    this.asked.set(key, (this.asked.get(key) ?? 0) + 1);
    const times = this.askedAt.get(key) ?? [];
    times.push(Date.now());
    this.askedAt.set(key, times);
    if (this.silent) return null;
    const answers = this.lookup(q.name.toLowerCase(), q.type);
    const response: dnsPacket.Packet = {
      type: 'response',
      id: query.id,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | dnsPacket.AUTHORITATIVE_ANSWER,
      questions: [q],
      answers,
    };
    // 65,535 bytes is the most a DNS message can carry (TCP's length prefix): send what fits
    let out = dnsPacket.encode(response);
    while (out.length > 65_535 && response.answers!.length > 0) {
      response.answers = response.answers!.slice(0, Math.floor(response.answers!.length * 0.9));
      out = dnsPacket.encode(response);
    }
    if (udp && out.length > UDP_LIMIT) {
      return dnsPacket.encode({ ...response, flags: (response.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, answers: [] });
    }
    return out;
  }

  /** The records for a question, following CNAMEs the way an authoritative server puts them in one answer. */
  private lookup(name: string, type: string): dnsPacket.Answer[] {
    const out: dnsPacket.Answer[] = [];
    const seen = new Set<string>();
    let current = name;
    while (!seen.has(current)) {
      seen.add(current);
      const records = this.zone.get(current) ?? [];
      const cname = records.find((r) => r.type === 'CNAME');
      if (cname !== undefined) {
        out.push({ type: 'CNAME', name: current, ttl: cname.ttl ?? 30, class: 'IN', data: cname.target });
        if (type === 'CNAME') break;
        current = cname.target.toLowerCase();
        continue;
      }
      for (const r of records) {
        if (r.type !== type) continue;
        if (r.type === 'SRV') {
          out.push({
            type: 'SRV',
            name: current,
            ttl: r.ttl ?? 30,
            class: 'IN',
            data: { priority: r.priority, weight: r.weight, port: r.port, target: r.target },
          });
        } else if (r.type === 'A' || r.type === 'AAAA') {
          out.push({ type: r.type, name: current, ttl: r.ttl ?? 30, class: 'IN', data: r.address });
        }
      }
      break;
    }
    return out;
  }
}
