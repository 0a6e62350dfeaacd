import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ERROR_CATALOGUE, GatewayError, type ErrorCode } from '../base/errors.js';
import { rawHead } from '../base/raw-http.js';
import type { RouteConfig } from '../config/types.js';
import type { RequestState } from '../data/request-state.js';
import { buildRequestHeaders, buildResponseHeaders, forwardingInfo } from './headers.js';
import { upstreamTarget, type ProxyPath } from './path.js';
import type { TrustedProxies } from './trust.js';
import type { UpstreamGroup } from './upstream.js';

/** How long a rejected upgrade's socket may linger for the client to read the answer before it is destroyed. */
const REJECT_LINGER_MS = 1000;

/** Answer an upgrade request that cannot be tunnelled with the code's status (no body), then drop the connection. */
export function rejectUpgrade(socket: Duplex, code: ErrorCode, headers?: Record<string, string>, status: number = ERROR_CATALOGUE[code].status): void {
  if (socket.destroyed) return;
  socket.end(rawHead(status, http.STATUS_CODES[status] ?? 'Error', { connection: 'close', 'content-length': '0', ...headers }));
  setTimeout(() => socket.destroy(), REJECT_LINGER_MS).unref();
}

/**
 * Tunnel a WebSocket upgrade: the handshake goes through the usual header rules (hop-by-hop stripped except
 * Connection/Upgrade, forwarding headers added), then, after the upstream's 101, raw bytes both ways. Each
 * tunnel has its own upstream connection (an upgraded socket never returns to a pool).
 */
export function tunnel(
  group: UpstreamGroup,
  trust: TrustedProxies,
  ctx: RequestState,
  socket: Duplex,
  head: Buffer,
  route: RouteConfig,
  path: ProxyPath,
): void {
  const req = ctx.req!;
  socket.on('error', () => socket.destroy());
  const upgradeHeader = req.headers.upgrade;
  if (upgradeHeader === undefined || upgradeHeader.toLowerCase() !== 'websocket') {
    rejectUpgrade(socket, 'GW_ERR_UPGRADE_REFUSED');
    return;
  }
  let forwardPath: string;
  try {
    forwardPath = upstreamTarget(ctx.url, ctx.params, path);
  } catch (err) {
    rejectUpgrade(socket, err instanceof GatewayError ? err.code : 'GW_ERR_PROXY_PATH');
    return;
  }
  const now = Date.now();
  const fwd = forwardingInfo(req, trust);
  const target = group.pick(now, group.hashKey(ctx, fwd.peer), 0);
  if (target === null) {
    const e = group.unavailable(now);
    rejectUpgrade(socket, e.code, e.headers);
    return;
  }
  const headers = buildRequestHeaders(req, fwd, route.requestHeaders, true, ctx.upstreamHeaders);
  headers.host = route.preserveHost && req.headers.host !== undefined ? req.headers.host : target.host;
  const o = target.origin;
  const probe = target.dispatch();
  let settled = false;
  const settle = (ok: boolean): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    target.complete(ok, probe, Date.now());
  };

  const upReq = (o.protocol === 'https:' ? https : http).request({
    hostname: o.hostname.startsWith('[') ? o.hostname.slice(1, -1) : o.hostname,
    port: o.port === '' ? undefined : Number(o.port),
    method: req.method,
    path: target.basePath + forwardPath,
    headers,
    setHost: false,
    agent: false,
    // the upstream's CA, client certificate and SNI, as for proxied requests
    ...target.tls,
  });
  const timeoutMs = route.timeoutMs ?? group.cfg.timeouts.headersMs;
  const timer = setTimeout(() => {
    settle(false);
    upReq.destroy();
    rejectUpgrade(socket, 'GW_ERR_UPSTREAM_TIMEOUT');
  }, timeoutMs);
  timer.unref();

  upReq.on('error', (err: NodeJS.ErrnoException) => {
    if (settled) return;
    settle(false);
    rejectUpgrade(socket, err.code === 'ETIMEDOUT' ? 'GW_ERR_UPSTREAM_CONNECT_TIMEOUT' : 'GW_ERR_UPSTREAM_CONNECT');
  });
  // client left during the handshake
  socket.once('close', () => {
    if (!settled) {
      settled = true;
      clearTimeout(timer);
      target.release(probe);
    }
    upReq.destroy();
  });

  upReq.on('upgrade', (res: IncomingMessage, upSocket: Socket, upHead: Buffer) => {
    settle(true);
    upSocket.on('error', () => socket.destroy());
    socket.on('error', () => upSocket.destroy());
    if (socket.destroyed) {
      upSocket.destroy();
      return;
    }
    const outHeaders = buildResponseHeaders(res.headers, route.responseHeaders, true);
    socket.write(rawHead(101, res.statusMessage || 'Switching Protocols', outHeaders));
    if (upHead.length > 0) socket.write(upHead);
    if (head.length > 0) upSocket.write(head);
    upSocket.setNoDelay(true);
    upSocket.setTimeout(0);
    // either side closing ends the tunnel; close (not just end) so no half-open socket lingers
    upSocket.on('close', () => socket.destroy());
    socket.on('close', () => upSocket.destroy());
    upSocket.pipe(socket);
    socket.pipe(upSocket);
  });

  // the upstream declined the upgrade: relay its answer as a normal response, then close
  upReq.on('response', (res: IncomingMessage) => {
    settle(res.statusCode !== undefined && res.statusCode < 500);
    const outHeaders = buildResponseHeaders(res.headers, route.responseHeaders, false);
    outHeaders.connection = 'close';
    socket.write(rawHead(res.statusCode ?? 502, res.statusMessage ?? '', outHeaders));
    res.on('error', () => socket.destroy());
    res.pipe(socket);
  });
  upReq.end();
}
