import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AdminAuthConfig } from '../config/types.js';
import { AdminAuth } from './auth.js';
import { Dashboard } from './dashboard.js';
import type { AdminSource } from './source.js';

export interface AdminServerOptions {
  /** credentials every route but the probes requires (core/admin/auth.ts); absent: none */
  auth?: AdminAuthConfig;
  /** dashboard sampling interval (tests) */
  dashboardIntervalMs?: number;
}

/**
 * The admin listener, on its own port (default 127.0.0.1:9901) so it is never exposed with the data plane:
 * GET /health, /ready, /metrics (Prometheus), /stats (JSON), /config (redacted), /alerts (rule states),
 * /mirror/differences (the differing answer pairs mirror.compare kept, per route),
 * POST /config/reload, and the dashboard under /dashboard. With `admin.auth`, every route but /health and /ready
 * asks for credentials.
 */
export class AdminServer {
  private readonly http: Server;
  private readonly auth: AdminAuth | null;
  private readonly dashboard: Dashboard;

  constructor(
    private readonly source: AdminSource,
    options: AdminServerOptions = {},
  ) {
    this.auth = AdminAuth.from(options.auth);
    this.dashboard = new Dashboard(source, options.dashboardIntervalMs);
    this.http = createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        // the admin listener lives in the primary: a second throw here would be an unhandled rejection there
        if (res.headersSent) res.destroy();
        else send(res, 500, { error: err.message });
      });
    });
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        const a = this.http.address();
        resolve(typeof a === 'object' && a !== null ? a.port : port);
      });
    });
  }

  close(): Promise<void> {
    this.dashboard.close();
    return new Promise((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (this.auth !== null && !this.auth.allows(req, path!)) {
      req.resume();
      res.setHeader('www-authenticate', this.auth.challenge);
      return send(res, 401, { error: 'Unauthorized' });
    }
    if (Dashboard.owns(path!)) return this.dashboard.handle(req, res, path!);
    const route = `${req.method} ${path}`;
    switch (route) {
      case 'GET /health': {
        const live = this.source.live?.() ?? true;
        return send(res, live ? 200 : 503, { status: live ? 'ok' : 'unresponsive' });
      }
      case 'GET /ready': {
        const ready = this.source.ready();
        return send(res, ready ? 200 : 503, { ready });
      }
      case 'GET /metrics': {
        const text = await this.source.metricsText();
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(text);
        return;
      }
      case 'GET /stats':
        return send(res, 200, await this.source.stats(), cleanNumber);
      case 'GET /config':
        return send(res, 200, this.source.config());
      case 'GET /mirror/differences':
        return send(res, 200, mirrorDifferences((await this.source.stats()).workers), cleanNumber);
      case 'GET /alerts':
        // no rule configured: every field still there, so a client needs no special case
        return send(res, 200, (await this.source.alerts?.()) ?? NO_ALERTS);
      case 'POST /config/reload': {
        req.resume();
        const r = await this.source.reload();
        return send(res, r.ok ? 200 : 400, r);
      }
      default: {
        const known = ['/health', '/ready', '/metrics', '/stats', '/config', '/config/reload', '/alerts', '/mirror/differences'];
        if (known.includes(path!)) return send(res, 405, { error: 'Method Not Allowed' });
        return send(res, 404, { error: 'Not Found' });
      }
    }
  }
}

/**
 * /stats numbers as a person reads them: latencies to the microsecond (`6.472`, not the `6.471993000000111` a
 * bucket midpoint times a scale gives), small ratios to 4 significant digits. Integers pass as they are.
 */
function cleanNumber(_key: string, value: unknown): unknown {
  if (typeof value !== 'number' || Number.isInteger(value) || !Number.isFinite(value)) return value;
  return Math.abs(value) >= 1 ? Math.round(value * 1000) / 1000 : Number(value.toPrecision(4));
}

/**
 * The pairs each worker kept (core/proxy/mirror.ts, already redacted), per route, oldest first: a worker keeps its
 * first `keepDifferences`, so the list holds at most that many per worker.
 */
function mirrorDifferences(workers: unknown[]): { routes: Record<string, unknown[]> } {
  const routes: Record<string, unknown[]> = {};
  for (const w of workers) {
    const traffic = (w as { traffic?: Record<string, { mirror?: { compare?: { differences?: unknown[] } | null } | null }> }).traffic ?? {};
    for (const [route, t] of Object.entries(traffic)) {
      const kept = t.mirror?.compare?.differences;
      if (kept === undefined) continue;
      (routes[route] ??= []).push(...kept);
    }
  }
  for (const list of Object.values(routes)) list.sort((a, b) => String((a as { at: string }).at).localeCompare(String((b as { at: string }).at)));
  return { routes };
}

const NO_ALERTS = Object.freeze({ evaluatedAt: null, rules: [] });

function send(res: ServerResponse, status: number, body: unknown, replacer?: (key: string, value: unknown) => unknown): void {
  const text = replacer === undefined ? JSON.stringify(body, null, 2) : JSON.stringify(body, replacer, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
