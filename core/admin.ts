import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AlertsView } from './alerts/engine.js';
import type { AggregatedMetrics } from './metrics.js';

/** What the admin API reads; implemented by the orchestrator (cluster) and by an in-process gateway. */
export interface AdminSource {
  ready(): boolean;
  stats(): Promise<{ configVersion: number; lastReloadError: string[] | null; metrics: AggregatedMetrics; workers: unknown[] } & Record<string, unknown>>;
  metricsText(): Promise<string>;
  config(): unknown;
  reload(): Promise<{ ok: boolean; version: number; errors: string[] }>;
  /** every alert rule's state (core/alerts/engine.ts) */
  alerts(): AlertsView;
}

/**
 * The admin listener, on its own port (default 127.0.0.1:9901) so it is never exposed with the data plane:
 * GET /health, /ready, /metrics (Prometheus), /stats (JSON), /config (redacted), /alerts (rule states),
 * POST /config/reload.
 */
export class AdminServer {
  private readonly http: Server;

  constructor(private readonly source: AdminSource) {
    this.http = createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => send(res, 500, { error: err.message }));
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
    return new Promise((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const route = `${req.method} ${path}`;
    switch (route) {
      case 'GET /health':
        return send(res, 200, { status: 'ok' });
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
        return send(res, 200, await this.source.stats());
      case 'GET /config':
        return send(res, 200, this.source.config());
      case 'GET /alerts':
        return send(res, 200, this.source.alerts());
      case 'POST /config/reload': {
        req.resume();
        const r = await this.source.reload();
        return send(res, r.ok ? 200 : 400, r);
      }
      default: {
        const known = ['/health', '/ready', '/metrics', '/stats', '/config', '/config/reload', '/alerts'];
        if (known.includes(path!)) return send(res, 405, { error: 'Method Not Allowed' });
        return send(res, 404, { error: 'Not Found' });
      }
    }
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
