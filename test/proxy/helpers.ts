import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { upstreamClientVariants } from '../../variants/upstream/index.js';
import { startGateway, type RunningGateway } from '../../core/gateway.js';
import type { UpstreamManager } from '../../core/proxy/index.js';

export const CLIENT_VARIANTS = Object.keys(upstreamClientVariants);

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
}

export interface TestUpstream {
  server: http.Server;
  url: string;
  port: number;
  name: string;
  received: RecordedRequest[];
  close(): Promise<void>;
}

/** A real upstream on 127.0.0.1 that records what it received. */
export async function startUpstream(
  name: string,
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void = (req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(name);
  },
  configure?: (s: http.Server) => void,
): Promise<TestUpstream> {
  const received: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    received.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders });
    handler(req, res);
  });
  configure?.(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    port,
    name,
    received,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A TCP server that misbehaves at the socket level. */
export async function startRawServer(onConnection: (s: net.Socket) => void): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConnection(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A port with nothing listening on it (bound, then released). */
export async function closedPortUrl(): Promise<string> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

export interface GatewayUnderTest {
  gw: RunningGateway;
  url: string;
  port: number;
  manager(): UpstreamManager;
  stats(upstream: string): { targets: Array<Record<string, unknown>>; retries: number; [k: string]: unknown };
  close(): Promise<void>;
}

/** The real gateway (core/gateway.ts startGateway), in-process, with the given upstreams and routes. */
export async function startProxy(
  variant: string,
  upstreams: Record<string, unknown>,
  routes: unknown[],
  server: Record<string, unknown> = {},
): Promise<GatewayUnderTest> {
  const gw = await startGateway({
    server: { host: '127.0.0.1', ...server },
    admin: { enabled: false },
    logging: { level: 'silent', accessLog: false },
    variants: { upstream: variant },
    upstreams,
    routes,
  });
  const manager = (): UpstreamManager => gw.gateway.server.currentRuntime.upstreams as UpstreamManager;
  return {
    gw,
    url: gw.url,
    port: gw.port,
    manager,
    stats: (name) => manager().stats()[name] as ReturnType<GatewayUnderTest['stats']>,
    close: () => gw.close(),
  };
}

export interface SimpleResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection (agent: false), the whole body collected. */
export function request(
  url: string,
  opts: { method?: string; path?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer; agent?: http.Agent | false } = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request(
      {
        hostname: u.hostname,
        port: u.port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: opts.headers,
        agent: opts.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Send raw bytes and collect everything until the server closes (or `ms` passes). */
export function rawExchange(port: number, data: string, ms = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => s.destroy(), ms);
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    s.write(data);
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` every 20 ms until true or `ms` passes (bounded: no infinite waits in tests). */
export async function waitFor(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(20);
  }
  return cond();
}
