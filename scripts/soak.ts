import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { exitWithUsageError, numberOption, parseCommandLine } from './lib/command-line.js';

/**
 * Soak: the production CLI (cluster workers) in front of an upstream that injects faults, under mixed
 * keep-alive traffic plus deliberate client disconnects, bounded by a request count and a duration.
 * Verdict "nothing lost" only when every request sent got an answer (a response, or for injected mid-body
 * upstream aborts the truncation signalled to the client) and the gateway's connection/in-flight gauges
 * return to zero afterwards.
 *
 * Usage: npm run soak -- [--requests N] [--duration S] [--connections C] [--workers W] [--disconnect-every K]
 *                        [--server ENGINE]
 */
export interface SoakOptions {
  requests: number;
  durationS: number;
  connections: number;
  workers: number;
  /** every K-th request is instead a raw connection that the client drops mid-request or mid-response (0 = none) */
  disconnectEvery: number;
  /** the server engine (variants.server); absent: the default */
  server?: string;
  log?: (line: string) => void;
}

export interface SoakReport {
  sent: number;
  answered: number;
  lost: number;
  byStatus: Record<string, number>;
  /** failures by class: 5xx answers from injected faults are answers, these are not */
  errors: Record<string, number>;
  /** upstream mid-body aborts correctly surfaced to the client as a truncated response */
  truncatedAsExpected: number;
  clientDisconnects: number;
  durationS: number;
  rps: number;
  rssBytes: { start: number; middle: number; end: number };
  after: { activeConnections: number; inFlight: number; upstreamActive: number };
  verdict: 'nothing lost' | 'LOST REQUESTS';
}

type Kind = 'ok' | 'slow' | 'err' | 'abort' | 'big' | 'echo' | 'missing';
// weights per 20 requests
const MIX: Kind[] = [
  'ok',
  'ok',
  'ok',
  'ok',
  'ok',
  'ok',
  'ok',
  'ok',
  'slow',
  'slow',
  'err',
  'err',
  'abort',
  'big',
  'big',
  'echo',
  'echo',
  'echo',
  'missing',
  'ok',
];
const BIG = Buffer.alloc(64 * 1024, 'b');

/** The fault-injecting upstream: behaviour chosen by path. */
async function startUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const kind = (req.url ?? '').split('/')[2]?.split('?')[0] ?? 'ok';
    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => body.push(c));
    req.on('end', () => {
      switch (kind) {
        case 'slow':
          setTimeout(() => res.end('slow'), 20 + Math.floor(Math.random() * 80));
          return;
        case 'err':
          res.writeHead(Math.random() < 0.5 ? 500 : 503, { 'content-type': 'text/plain' });
          res.end('injected failure');
          return;
        case 'abort':
          res.writeHead(200, { 'content-length': String(BIG.length) });
          res.write(BIG.subarray(0, 1024));
          setTimeout(() => res.socket?.destroy(), 5);
          return;
        case 'big':
          res.writeHead(200, { 'content-length': String(BIG.length) });
          res.end(BIG);
          return;
        case 'echo':
          res.end(Buffer.concat(body));
          return;
        default:
          res.end('ok');
      }
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface Gateway {
  proc: ChildProcess;
  port: number;
  adminPort: number;
  output: () => string;
  stop(): Promise<number | null>;
}

async function startGatewayCli(config: unknown, workers: number): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-soak-'));
  const file = join(dir, 'gateway.json');
  writeFileSync(file, JSON.stringify(config));
  // compiled: dist/scripts/soak.js next to dist/core/cli.js; imported from source (tests): use the build
  const cli = import.meta.url.includes('/dist/scripts/') ? new URL('../core/cli.js', import.meta.url) : new URL('../dist/core/cli.js', import.meta.url);
  const proc = spawn(process.execPath, [cli.pathname, '--config', file, '--port', '0', '--admin-port', '0', '--workers', String(workers)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-200_000)));
  proc.stderr!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-200_000)));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  let port = 0;
  let adminPort = 0;
  // A bound on a hung start, not a speed check: a start with two workers has taken over 20 s on a loaded 2-core
  // machine (the test suite's short soak, beside the other test files), so allow what test/support/cli.ts does.
  const startTimeoutMs = 60_000;
  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline && (port === 0 || adminPort === 0)) {
    for (const m of out.matchAll(/"port":(\d+)[^\n]*"msg":"gateway listening"/g)) port = Number(m[1]);
    for (const m of out.matchAll(/"adminPort":(\d+)/g)) adminPort = Number(m[1]);
    if (proc.exitCode !== null) throw new Error(`gateway exited ${proc.exitCode}:\n${out}`);
    await sleep(25);
  }
  if (port === 0 || adminPort === 0) {
    proc.kill('SIGKILL');
    throw new Error(`gateway did not start within ${startTimeoutMs} ms:\n${out}`);
  }
  return {
    proc,
    port,
    adminPort,
    output: () => out,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Stats {
  metrics: { activeConnections: number; inFlight: number; memory: { rss: number } };
  workers: Array<{ upstreams?: Record<string, { targets: Array<{ active: number }> }> }>;
}

function getStats(adminPort: number): Promise<Stats> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: adminPort, path: '/stats', agent: false }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => {
        try {
          resolve(JSON.parse(b) as Stats);
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('stats timeout')));
  });
}

const upstreamActive = (s: Stats): number =>
  s.workers.reduce((a, w) => a + Object.values(w.upstreams ?? {}).reduce((b, u) => b + u.targets.reduce((c, t) => c + t.active, 0), 0), 0);

type Outcome = { status: number; complete: boolean } | { error: string };

function send(agent: http.Agent, port: number, kind: Kind, i: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const isPost = kind === 'echo';
    const payload = isPost ? Buffer.from(`payload-${i}-${'p'.repeat(i % 2000)}`) : null;
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        agent,
        method: isPost ? 'POST' : 'GET',
        path: kind === 'missing' ? `/nowhere/${i}` : `/api/${kind}?i=${i}`,
        headers: payload ? { 'content-length': String(payload.length) } : undefined,
      },
      (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => {
          const cl = res.headers['content-length'];
          resolve({ status: res.statusCode!, complete: res.complete && (cl === undefined || Number(cl) === n) });
        });
        res.on('aborted', () => resolve({ status: res.statusCode!, complete: false }));
        res.on('error', () => resolve({ status: res.statusCode!, complete: false }));
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.setTimeout(10_000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'CLIENT_TIMEOUT' })));
    req.end(payload ?? undefined);
  });
}

/** A raw connection dropped by the client: mid-request (partial body) or mid-response (after the first bytes). */
function disconnect(port: number, i: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const done = (): void => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => s.destroy(), 5000);
    s.on('error', () => undefined);
    s.on('close', done);
    s.on('connect', () => {
      if (i % 2 === 0) {
        s.write('POST /api/echo HTTP/1.1\r\nHost: soak\r\nContent-Length: 5000\r\n\r\n' + 'x'.repeat(500));
        setImmediate(() => s.destroy());
      } else {
        s.write('GET /api/big HTTP/1.1\r\nHost: soak\r\n\r\n');
        s.once('data', () => s.destroy());
      }
    });
  });
}

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const upstream = await startUpstream();
  const gw = await startGatewayCli(
    {
      server: { shutdownTimeoutMs: 5000 },
      // info: the listening lines carry the ephemeral ports; no access log
      logging: { level: 'info', accessLog: false },
      upstreams: {
        app: {
          targets: [upstream.url],
          retries: { count: 0 },
          circuitBreaker: { enabled: false },
          healthCheck: { passive: { enabled: false } },
          timeouts: { headersMs: 5000, idleMs: 5000 },
        },
      },
      routes: [{ path: '/api/*', upstream: 'app' }],
      ...(opts.server === undefined ? {} : { variants: { server: opts.server } }),
    },
    opts.workers,
  );
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.connections });
  const report: SoakReport = {
    sent: 0,
    answered: 0,
    lost: 0,
    byStatus: {},
    errors: {},
    truncatedAsExpected: 0,
    clientDisconnects: 0,
    durationS: 0,
    rps: 0,
    rssBytes: { start: 0, middle: 0, end: 0 },
    after: { activeConnections: -1, inFlight: -1, upstreamActive: -1 },
    verdict: 'LOST REQUESTS',
  };
  const bump = (rec: Record<string, number>, k: string): void => {
    rec[k] = (rec[k] ?? 0) + 1;
  };
  try {
    report.rssBytes.start = (await getStats(gw.adminPort)).metrics.memory.rss;
    const t0 = Date.now();
    const deadline = t0 + opts.durationS * 1000;
    let next = 0;
    let middleTaken = false;
    let lastLog = t0;
    const loop = async (): Promise<void> => {
      while (next < opts.requests && Date.now() < deadline) {
        const i = next++;
        if (opts.disconnectEvery > 0 && i % opts.disconnectEvery === opts.disconnectEvery - 1) {
          report.clientDisconnects++;
          await disconnect(gw.port, i);
          continue;
        }
        const kind = MIX[i % MIX.length]!;
        report.sent++;
        const r = await send(agent, gw.port, kind, i);
        if ('error' in r) {
          report.lost++;
          bump(report.errors, `transport:${r.error}`);
        } else if (!r.complete) {
          if (kind === 'abort') {
            report.answered++;
            report.truncatedAsExpected++;
            bump(report.byStatus, `${r.status} (truncated, injected)`);
          } else {
            report.lost++;
            bump(report.errors, `truncated:${kind}`);
          }
        } else {
          report.answered++;
          bump(report.byStatus, String(r.status));
          if (kind !== 'err' && kind !== 'missing' && r.status >= 500) bump(report.errors, `unexpected-${r.status}:${kind}`);
        }
        if (!middleTaken && next >= opts.requests / 2) {
          middleTaken = true;
          void getStats(gw.adminPort)
            .then((s) => (report.rssBytes.middle = s.metrics.memory.rss))
            .catch(() => undefined);
        }
        const now = Date.now();
        if (now - lastLog > 5000) {
          lastLog = now;
          log(`  ${report.sent} sent, ${report.answered} answered, ${report.lost} lost, ${Math.round(report.sent / ((now - t0) / 1000))} req/s`);
        }
      }
    };
    await Promise.all(Array.from({ length: opts.connections }, loop));
    report.durationS = (Date.now() - t0) / 1000;
    report.rps = Math.round(report.sent / report.durationS);
    agent.destroy();
    // Settle: every client socket is closed now; the gateway's gauges must drain to zero.
    const settleDeadline = Date.now() + 10_000;
    let s = await getStats(gw.adminPort);
    while (Date.now() < settleDeadline && (s.metrics.activeConnections > 0 || s.metrics.inFlight > 0 || upstreamActive(s) > 0)) {
      await sleep(100);
      s = await getStats(gw.adminPort);
    }
    report.rssBytes.end = s.metrics.memory.rss;
    if (report.rssBytes.middle === 0) report.rssBytes.middle = report.rssBytes.end;
    report.after = { activeConnections: s.metrics.activeConnections, inFlight: s.metrics.inFlight, upstreamActive: upstreamActive(s) };
    const unexpected = Object.keys(report.errors).length > 0;
    const drained = report.after.activeConnections === 0 && report.after.inFlight === 0 && report.after.upstreamActive === 0;
    report.verdict = report.lost === 0 && report.answered === report.sent && !unexpected && drained ? 'nothing lost' : 'LOST REQUESTS';
  } finally {
    agent.destroy();
    const code = await gw.stop();
    if (code !== 0) bump(report.errors, `gateway-exit:${code}`);
    await upstream.close();
  }
  if (Object.keys(report.errors).some((k) => k.startsWith('gateway-exit'))) report.verdict = 'LOST REQUESTS';
  return report;
}

function mb(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function formatReport(r: SoakReport): string {
  return [
    `requests sent      ${r.sent} in ${r.durationS.toFixed(1)} s (${r.rps} req/s)`,
    `answered           ${r.answered} (${r.truncatedAsExpected} of them injected mid-body upstream aborts, surfaced as truncated responses)`,
    `lost               ${r.lost}`,
    `by status          ${Object.entries(r.byStatus)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ')}`,
    `errors by class    ${
      Object.keys(r.errors).length === 0
        ? 'none'
        : Object.entries(r.errors)
            .map(([k, v]) => `${k}: ${v}`)
            .join(', ')
    }`,
    `client disconnects ${r.clientDisconnects} (mid-request and mid-response, not counted as sent)`,
    `worker RSS (sum)   start ${mb(r.rssBytes.start)}, middle ${mb(r.rssBytes.middle)}, end ${mb(r.rssBytes.end)}`,
    `after the run      ${r.after.activeConnections} open connections, ${r.after.inFlight} in flight, ${r.after.upstreamActive} upstream requests active`,
    `verdict            ${r.verdict}`,
  ].join('\n');
}

const HELP = `npm run soak -- [options]
Mixed traffic through a gateway with workers, with injected faults (upstream errors, resets, client
disconnects); verdict "nothing lost" (exit 0) only when every request got an answer.

options:
  --requests N          stop after this many requests (default 2000000)
  --duration S          or after this many seconds (default 600)
  --connections C       client connections (default 64)
  --workers W           gateway worker processes (default 2)
  --disconnect-every K  one client in K leaves mid-request or mid-response (default 100)
  --server ENGINE       HTTP/1.1 server engine (default: the gateway's default)
  -h, --help            this text
`;

async function main(): Promise<void> {
  const { values } = parseCommandLine(HELP, () =>
    parseArgs({
      options: {
        requests: { type: 'string', default: '2000000' },
        duration: { type: 'string', default: '600' },
        connections: { type: 'string', default: '64' },
        workers: { type: 'string', default: '2' },
        'disconnect-every': { type: 'string', default: '100' },
        server: { type: 'string' },
      },
    }),
  );
  const count = (name: 'requests' | 'connections' | 'workers' | 'disconnect-every', min: number): number =>
    numberOption(name, values[name], { min, integer: true })!;
  let opts: SoakOptions;
  try {
    opts = {
      requests: count('requests', 1),
      durationS: numberOption('duration', values.duration, { exclusiveMin: true })!,
      connections: count('connections', 1),
      workers: count('workers', 0),
      disconnectEvery: count('disconnect-every', 0),
      ...(values.server === undefined ? {} : { server: values.server }),
    };
  } catch (err) {
    exitWithUsageError(err);
  }
  process.stdout.write(
    `soak: up to ${opts.requests} requests or ${opts.durationS} s, ${opts.connections} connections, ${opts.workers} workers, server engine ${opts.server ?? 'default'}\n`,
  );
  const report = await runSoak(opts);
  process.stdout.write(`${formatReport(report)}\n`);
  process.exit(report.verdict === 'nothing lost' ? 0 : 1);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
