import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DashboardFeed, type DashboardSample } from './dashboard-feed.js';
import type { AdminSource } from './source.js';

/**
 * The page's files. The build copies core/dashboard/static/ next to the compiled code (dist/core/dashboard/static/),
 * so a production install, which ships dist/core only, serves them too.
 */
const STATIC_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'dashboard', 'static');

/** Served names → file and type: a fixed list, so no request path ever reaches the file system. */
const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/dashboard': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/**
 * Chart.js from node_modules, resolved like an import so it is found wherever npm put it (a hoisted production
 * install too). Its package exports no subpath for the UMD bundle: resolve the package entry, then its sibling.
 */
function chartJsPath(): string {
  return join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');
}

/**
 * Every response of the dashboard says the page may load nothing but its own origin: a stray CDN link or an
 * injected script is refused by the browser, not merely avoided by us.
 */
/** Where the page's first state goes (see page()). */
// the data block's placeholder, whatever whitespace a formatter puts around its `null`
const INITIAL_STATE_SLOT = /(<script id="initial-state" type="application\/json">)\s*null\s*(<\/script>)/;

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'";

/**
 * Unsent bytes a page's event stream may have queued before it is cut: beyond what the kernel's socket buffers
 * already hold, about a minute of samples at a dozen routes (one is ~6 KB there), a few seconds at hundreds.
 */
export const MAX_STREAM_BACKLOG_BYTES = 1024 * 1024;

/** GET /dashboard (the page), its files, /dashboard/chart.js and /dashboard/events (Server-Sent Events). */
export class Dashboard {
  readonly feed: DashboardFeed;
  private readonly cache = new Map<string, Buffer>();
  private readonly streams = new Set<ServerResponse>();

  constructor(source: AdminSource, intervalMs?: number) {
    this.feed = new DashboardFeed(source, intervalMs);
  }

  /** Whether `path` is the dashboard's (the admin listener sends those here, any method). */
  static owns(path: string): boolean {
    return path === '/dashboard' || path.startsWith('/dashboard/');
  }

  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'Method Not Allowed', { allow: 'GET, HEAD' });
    if (path === '/dashboard/') {
      res.writeHead(308, { location: '../dashboard' });
      res.end();
      return;
    }
    if (path === '/dashboard/events') return this.events(req, res);
    if (path === '/dashboard/state') return this.state(res);
    if (path === '/dashboard/chart.js') return this.file(req, res, chartJsPath(), 'text/javascript; charset=utf-8');
    const f = FILES[path];
    if (f === undefined) return plain(res, 404, 'Not Found');
    if (path === '/dashboard' && req.method !== 'HEAD') return this.page(res, join(STATIC_DIR, f.file), f.type);
    return this.file(req, res, join(STATIC_DIR, f.file), f.type);
  }

  /** Ends every open event stream and stops sampling (the admin listener is closing). */
  close(): void {
    this.feed.close();
    for (const res of this.streams) res.end();
    this.streams.clear();
  }

  private async file(req: IncomingMessage, res: ServerResponse, file: string, type: string): Promise<void> {
    let body = this.cache.get(file);
    if (body === undefined) {
      body = await readFile(file);
      this.cache.set(file, body);
    }
    res.writeHead(200, {
      'content-type': type,
      'content-length': body.length,
      'cache-control': 'no-cache',
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  /**
   * The page with its first state inside (the data block `initial-state`): what a screenshot taken at load, a
   * slow link or a browser without EventSource shows before (or instead of) the stream. `<` is escaped so no
   * value from the config (a route name) can end the block.
   */
  private async page(res: ServerResponse, file: string, type: string): Promise<void> {
    let template = this.cache.get(file);
    if (template === undefined) {
      template = await readFile(file);
      this.cache.set(file, template);
    }
    const sample = await this.feed.current();
    const state = JSON.stringify({ history: this.feed.series(), sample }).replace(/</g, '\\u003c');
    const body = Buffer.from(template.toString('utf8').replace(INITIAL_STATE_SLOT, (_, open: string, close: string) => `${open}${state}${close}`));
    res.writeHead(200, {
      'content-type': type,
      'content-length': body.length,
      'cache-control': 'no-store',
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
    });
    res.end(body);
  }

  /**
   * The page's first state in one answer (the charts' history and a current sample), drawn before the stream
   * speaks: a screenshot, a slow link or a browser without EventSource still shows numbers.
   */
  private async state(res: ServerResponse): Promise<void> {
    const sample = await this.feed.current();
    const body = JSON.stringify({ history: this.feed.series(), sample });
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  }

  /**
   * The live feed: first `history` (the charts' points so far), then one `sample` event per second for as long
   * as the page stays open. EventSource reconnects by itself after a restart of the gateway.
   */
  private events(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-content-type-options': 'nosniff',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    res.write(`retry: 2000\nevent: history\ndata: ${JSON.stringify(this.feed.series())}\n\n`);
    const last = this.feed.last;
    if (last !== null) res.write(event(last));
    this.streams.add(res);
    const unsubscribe = this.feed.subscribe((s) => {
      // A page that stopped reading (a suspended laptop, a stalled proxy, a client that never reads) would have
      // every later sample queued in this process's memory, without end. Cut it instead: a live EventSource
      // reconnects by itself and starts again from `history`.
      if (res.writableLength > MAX_STREAM_BACKLOG_BYTES) res.destroy();
      else res.write(event(s));
    });
    res.once('close', () => {
      this.streams.delete(res);
      unsubscribe();
    });
  }
}

function event(s: DashboardSample): string {
  return `event: sample\ndata: ${JSON.stringify(s)}\n\n`;
}

function plain(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
