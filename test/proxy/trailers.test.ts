import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import type { UpstreamManager } from '../../core/proxy/index.js';
import { CLIENT_VARIANTS, rawExchange } from './helpers.js';

/**
 * Trailer fields through the proxy (core/proxy/trailers.ts), both ways, on both server engines and every
 * upstream client: the peers are node:http (llhttp) on both sides, so what arrives is what a real client or
 * upstream reads.
 */

const ENGINES = ['node-http', 'own'];

function upstreamStats(gw: RunningGateway): Record<string, unknown> {
  return (gw.gateway.server.currentRuntime.upstreams as UpstreamManager).stats();
}

/** What the upstream sends after its chunked body: allowed fields, and one of each kind that must never pass. */
const RESPONSE_TRAILERS: Array<[string, string]> = [
  ['X-Checksum', 'sha256=abc'],
  ['Server-Timing', 'db;dur=53'],
  ['Server-Timing', 'app;dur=47'],
  ['Transfer-Encoding', 'chunked'],
  ['Set-Cookie', 'session=evil'],
  ['Location', '/elsewhere'],
  ['X-Hop', 'listed in Connection'],
  ['Via', '1.1 forged'],
];

/** Allowed, forbidden, and a name the route vouches for itself (requestHeaders.add) */
const REQUEST_TRAILERS: Array<[string, string]> = [
  ['X-Digest', 'crc32=1234'],
  ['Host', 'evil.example'],
  ['Authorization', 'Bearer stolen'],
  ['X-Forwarded-For', '10.6.6.6'],
  ['X-Route-Tag', 'forged'],
];

interface Seen {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  rawTrailers: string[];
}

async function startTrailerUpstream(): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      seen.push({ url: req.url!, headers: req.headers, body: Buffer.concat(parts).toString(), rawTrailers: req.rawTrailers });
      if (req.url === '/plain') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('no trailers');
        return;
      }
      // chunked, announced trailers; Connection names X-Hop, which makes it hop-by-hop for this message
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'keep-alive, X-Hop', trailer: 'X-Checksum' });
      if (req.url !== '/empty') res.write('hello ');
      if (req.url !== '/empty') res.write('world');
      res.addTrailers(RESPONSE_TRAILERS);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface Got {
  status: number;
  body: string;
  rawTrailers: string[];
}

/** node:http's client (llhttp reads the trailers); with `trailers`, a chunked request body ending with them. */
function send(port: number, path: string, trailers: Array<[string, string]> | null, method = 'POST'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false, headers: trailers === null ? {} : { 'transfer-encoding': 'chunked' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts).toString(), rawTrailers: res.rawTrailers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (trailers !== null) {
      req.write('payload');
      req.addTrailers(trailers);
    }
    req.end();
  });
}

function pairs(raw: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return out;
}

const FORWARDED_RESPONSE = [
  ['x-checksum', 'sha256=abc'],
  ['server-timing', 'db;dur=53'],
  ['server-timing', 'app;dur=47'],
];

describe.each(ENGINES)('trailers through the proxy (engine %s)', (engine) => {
  describe.each(CLIENT_VARIANTS)('upstream client %s', (client) => {
    let up: Awaited<ReturnType<typeof startTrailerUpstream>>;
    let gw: RunningGateway;
    const stats = (): Record<string, number> => ({ ...(upstreamStats(gw).api as { trailers: Record<string, number> }).trailers });
    beforeAll(async () => {
      up = await startTrailerUpstream();
      gw = await startGateway({
        server: { host: '127.0.0.1' },
        admin: { enabled: false },
        logging: { level: 'silent', accessLog: false },
        variants: { upstream: client, server: engine },
        upstreams: { api: { targets: [{ url: up.url }] } },
        routes: [{ path: '/*', upstream: 'api', requestHeaders: { add: { 'x-route-tag': 'gateway' } } }],
      });
    });
    afterAll(async () => {
      await gw?.close();
      await up?.close();
    });

    it('forwards the upstream response trailers to an HTTP/1.1 client, without the forbidden and hop-by-hop ones', async () => {
      const before = stats();
      const r = await send(gw.port, '/down', null, 'GET');
      expect(r.status).toBe(200);
      expect(r.body).toBe('hello world');
      expect(pairs(r.rawTrailers)).toEqual(FORWARDED_RESPONSE);
      const after = stats();
      expect(after.responseForwarded! - before.responseForwarded!).toBe(3);
      expect(after.responseDropped! - before.responseDropped!).toBe(5);
    });

    it('forwards trailers after an empty chunked body', async () => {
      const r = await send(gw.port, '/empty', null, 'GET');
      expect(r.body).toBe('');
      expect(pairs(r.rawTrailers)).toEqual(FORWARDED_RESPONSE);
    });

    it('forwards the client request trailers to the upstream when the client can carry them', async () => {
      const before = stats();
      const r = await send(gw.port, '/up', REQUEST_TRAILERS);
      expect(r.status).toBe(200);
      const s = up.seen.find((x) => x.url === '/up')!;
      expect(s.body).toBe('payload');
      // the gateway's own header values are untouched by the forged trailers
      expect(s.headers['x-route-tag']).toBe('gateway');
      expect(s.headers['x-forwarded-for']).toBe('127.0.0.1');
      const after = stats();
      if (client === 'undici') {
        // undici's HTTP/1.1 writer has no trailer section: every field is dropped and counted
        expect(s.rawTrailers).toEqual([]);
        expect(after.requestDropped! - before.requestDropped!).toBe(5);
      } else {
        expect(pairs(s.rawTrailers)).toEqual([['x-digest', 'crc32=1234']]);
        expect(after.requestForwarded! - before.requestForwarded!).toBe(1);
        expect(after.requestDropped! - before.requestDropped!).toBe(4);
      }
    });

    it('sends an HTTP/1.0 client no trailer section (its body ends with the close) and counts them dropped', async () => {
      const before = stats();
      const raw = await rawExchange(gw.port, 'GET /down HTTP/1.0\r\nHost: x\r\n\r\n');
      expect(raw).toMatch(/^HTTP\/1\.1 200 /);
      const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
      expect(body).toBe('hello world');
      expect(raw).not.toMatch(/x-checksum/i);
      const after = stats();
      expect(after.responseDropped! - before.responseDropped!).toBe(8);
      expect(after.responseForwarded).toBe(before.responseForwarded);
    });

    it('a response without a trailer section gets none', async () => {
      const r = await send(gw.port, '/plain', null, 'GET');
      expect(r.body).toBe('no trailers');
      expect(r.rawTrailers).toEqual([]);
    });
  });
});
