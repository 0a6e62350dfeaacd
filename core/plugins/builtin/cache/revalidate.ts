import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { RequestContext } from '../../../data/context.js';

/** Request fields a revalidation does not repeat: per-connection ones, and the client's own conditions. */
const NOT_REPEATED = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'expect',
  'upgrade',
  'if-none-match',
  'if-modified-since',
  'cache-control',
  'pragma',
]);

/** Where and how to send the request again; read while the request is live (its context is pooled afterwards). */
export interface Replay {
  host: string;
  port: number;
  tls: boolean;
  servername: string | undefined;
  path: string;
  headers: OutgoingHttpHeaders;
}

/**
 * The request, to be sent again through the gateway's own listener. A background revalidation goes through the
 * front door (routing, auth, the upstream pool, the cache's own store path) with `Cache-Control: max-age=0`, which
 * makes the cache skip its lookup and store the fresh answer: no second proxy code path. null when the request
 * did not come over a socket with a local address (then no background revalidation: the stale entry expires).
 */
export function replayOf(ctx: RequestContext): Replay | null {
  const req = ctx.req!;
  const sock = req.socket as (TLSSocket & { encrypted?: boolean }) | null;
  if (sock === null || sock.localAddress === undefined || sock.localPort === undefined) return null;
  const headers: OutgoingHttpHeaders = {};
  const src: IncomingHttpHeaders = req.headers;
  for (const k in src) if (!NOT_REPEATED.has(k) && !k.startsWith(':')) headers[k] = src[k];
  headers['cache-control'] = 'max-age=0';
  const host = sock.localAddress.startsWith('::ffff:') ? sock.localAddress.slice(7) : sock.localAddress;
  const hostHeader = typeof src.host === 'string' ? src.host : (src[':authority'] as string | undefined);
  if (headers.host === undefined && hostHeader !== undefined) headers.host = hostHeader;
  return {
    host,
    port: sock.localPort,
    tls: sock.encrypted === true,
    servername: hostHeader?.replace(/:\d+$/, ''),
    path: ctx.url,
    headers,
  };
}

/** Sends the replay and drains the answer; resolves when it ends, fails or times out (never rejects). */
export function sendReplay(r: Replay, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const opts = { host: r.host, port: r.port, method: 'GET', path: r.path, headers: r.headers, agent: false as const };
    const req = r.tls
      ? // our own listener: its certificate names the public host, not the loopback address we dial
        https.request({ ...opts, rejectUnauthorized: false, ...(r.servername === undefined ? {} : { servername: r.servername }) })
      : http.request(opts);
    req.on('response', (res) => {
      res.resume();
      res.on('end', resolve);
      res.on('error', () => resolve());
    });
    req.on('error', () => resolve());
    req.setTimeout(timeoutMs, () => req.destroy());
    req.end();
  });
}
