import http from 'node:http';
import type { ServerConfig } from '../config/types.js';
import type { ListenerKind, ServerRequest } from '../contracts/server.js';
import type { GatewayMetrics } from '../observe/metrics.js';

/**
 * What every server engine shares about listeners: the per-protocol request counters and the optional HTTP→HTTPS redirect listener (node:http whatever the engine: it answers 308s only).
 */

/** Requests counted per protocol (the h1/h2 counters of /stats and Prometheus). */
export function countProtocol(m: GatewayMetrics, req: ServerRequest): void {
  if (req.httpVersionMajor === 2) m.h2Requests++;
  else m.h1Requests++;
}

/** The optional HTTP→HTTPS redirect listener (`server.redirectHttp`). */
export class RedirectListener {
  /** 308 answers so far */
  redirects = 0;
  private server: http.Server | null = null;

  constructor(private readonly kind: ListenerKind) {}

  /** Starts it when configured; resolves to its port (null when none). */
  async listen(config: ServerConfig, tlsPort: number): Promise<number | null> {
    const r = config.redirectHttp;
    if (r === undefined || this.kind === 'http' || this.kind === 'h2c') return null;
    const publicPort = r.httpsPort ?? tlsPort;
    const suffix = publicPort === 443 ? '' : `:${publicPort}`;
    const srv = http.createServer({ keepAliveTimeout: config.keepAliveTimeoutMs, maxHeaderSize: config.maxHeaderSize }, (req, res) => {
      const host = hostOnly(req.headers.host);
      if (host === null) {
        res.writeHead(400, { 'content-type': 'text/plain', 'content-length': '13', connection: 'close' });
        res.end('missing Host\n');
        return;
      }
      this.redirects++;
      res.writeHead(308, { location: `https://${host}${suffix}${req.url ?? '/'}`, 'content-length': '0' });
      res.end();
    });
    this.server = srv;
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(r.port, r.host ?? config.host, () => {
        srv.off('error', reject);
        const a = srv.address();
        resolve(typeof a === 'object' && a !== null ? a.port : r.port);
      });
    });
  }

  /** Drain step: stop accepting, close idle keep-alive connections. */
  closeIdle(): void {
    const r = this.server;
    if (r === null) return;
    if (r.listening) r.close();
    r.closeIdleConnections();
  }

  closeAll(): void {
    this.server?.closeAllConnections();
  }
}

/** The Host header without its port, or null when absent or not a plausible host (it goes into Location). */
function hostOnly(h: string | undefined): string | null {
  if (h === undefined || h === '') return null;
  if (h.charCodeAt(0) === 91 /* [ */) {
    const end = h.indexOf(']');
    return end > 0 && /^\[[0-9A-Fa-f:.]+\]$/.test(h.slice(0, end + 1)) ? h.slice(0, end + 1) : null;
  }
  const colon = h.indexOf(':');
  const name = colon === -1 ? h : h.slice(0, colon);
  return /^[A-Za-z0-9.-]+$/.test(name) ? name : null;
}
