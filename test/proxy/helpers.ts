import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import type { H2UpstreamClient } from '../../core/proxy/h2-client.js';
import type { UpstreamManager } from '../../core/proxy/index.js';
import { upstreamClientVariants } from '../../variants/upstream/index.js';
import { request as supportRequest, type RequestOptions, type SimpleResponse } from '../support/http.js';
import { until } from '../support/wait.js';

// The recording upstream, sleep and closedPortUrl live in test/support/; re-exported for the proxy tests.
export { closedPortUrl, startUpstream, type RecordingUpstream as TestUpstream } from '../support/upstream.js';
export { sleep } from '../support/wait.js';

export const CLIENT_VARIANTS = Object.keys(upstreamClientVariants);

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

export interface GatewayUnderTest {
  gw: RunningGateway;
  url: string;
  port: number;
  manager(): UpstreamManager;
  stats(upstream: string): { targets: Array<Record<string, unknown>>; retries: number; [k: string]: unknown };
  close(): Promise<void>;
}

/** The real gateway (core/control/gateway.ts startGateway), in-process, with the given upstreams and routes. */
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

/** One request on a fresh connection (agent: false): the proxy tests count connections and close gateways often. */
export function request(url: string, opts: RequestOptions = {}): Promise<SimpleResponse> {
  return supportRequest(url, { agent: false, ...opts });
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

/**
 * Polls `cond` until true, throwing when `ms` passes first (kept for callers that expect a boolean; new code uses
 * until() from test/support/wait.ts, which takes a message).
 */
export async function waitFor(cond: () => boolean, ms = 5000): Promise<boolean> {
  await until(cond, { timeoutMs: ms, message: `condition ${cond.toString().slice(0, 200)} never held` });
  return true;
}

/** The HTTP/2 client of an h2/h2c upstream's first target, to read its sessions. */
export function h2UpstreamClient(gw: RunningGateway, upstream: string): H2UpstreamClient {
  const m = gw.gateway.server.currentRuntime.upstreams as UpstreamManager;
  const group = (m as unknown as { groups: Map<string, { targets: Array<{ client: H2UpstreamClient }> }> }).groups.get(upstream)!;
  return group.targets[0]!.client;
}
