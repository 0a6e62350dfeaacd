/**
 * npm run bench:proxy -- [--duration S] [--connections N] [--warmup S] [--body BYTES] [--out FILE.json]
 *
 * Proxy throughput, all in one run so the figures share the machine's mood:
 *   direct          autocannon → upstream (the ceiling)
 *   hand-written    autocannon → ~20-line http.request + keep-alive Agent proxy → upstream (the floor to beat)
 *   gateway/<v>     autocannon → `node dist/core/cli.js --config …` with upstream client variant <v> → upstream
 * Pinned when taskset exists: proxies on CPU 0; the load generator (this process) and the upstream on CPU 1.
 * Every run is bounded by --duration; servers are child processes killed by pid at the end.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { upstreamClientVariants } from '../variants/upstream/index.js';
import { numberOption, parseCommandLine, reportFailure } from './lib/command-line.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(here, '../core/cli.js');

const UPSTREAM_SRC = `
const http = require('node:http');
const body = Buffer.alloc(Number(process.env.BODY_BYTES), 'x');
const s = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
s.keepAliveTimeout = 30000;
s.listen(Number(process.env.PORT), '127.0.0.1', () => process.send && process.send('ready'));
`;

// The minimal proxy a gateway must justify itself against: no header rules, no balancing, no safety.
const HANDWRITTEN_SRC = `
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
const [host, port] = [process.env.UP_HOST, Number(process.env.UP_PORT)];
const s = http.createServer((req, res) => {
  const up = http.request({ host, port, method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
    res.writeHead(ur.statusCode, ur.headers);
    ur.pipe(res);
  });
  up.on('error', () => { if (!res.headersSent) { res.statusCode = 502; } res.end(); });
  req.pipe(up);
});
s.keepAliveTimeout = 30000;
s.listen(Number(process.env.PORT), '127.0.0.1', () => process.send && process.send('ready'));
`;

interface Row {
  name: string;
  reqPerSec: number;
  /** CPU time of the server process under test per request (Linux /proc), -1 when unavailable */
  cpuUsPerReq: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  /** relative to direct */
  ofDirect: number;
}

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return os.cpus().length >= 2;
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

function launch(cpu: number | null, args: string[], env: Record<string, string>): ChildProcess {
  const cmd = cpu === null ? process.execPath : 'taskset';
  const argv = cpu === null ? args : ['-c', String(cpu), process.execPath, ...args];
  const child = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  child.on('error', (e) => process.stderr.write(`child failed: ${e.message}\n`));
  return child;
}

/** Poll until `url` answers 200 (bounded). */
async function waitReady(url: string, ms = 15000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get(url, { agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.setTimeout(1000, () => req.destroy());
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready within ${ms} ms`);
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function load(url: string, duration: number, connections: number): Promise<autocannon.Result> {
  return autocannon({ url, connections, duration, pipelining: 1 });
}

/** utime+stime of a process in seconds (Linux), or -1. CPU per request is steadier than req/s on a shared box. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return -1;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return -1;
  }
}

async function measure(
  name: string,
  url: string,
  server: ChildProcess,
  o: { duration: number; warmup: number; connections: number },
): Promise<Omit<Row, 'ofDirect'>> {
  await waitReady(url);
  if (o.warmup > 0) await load(url, o.warmup, o.connections);
  const c0 = cpuSeconds(server.pid);
  const r = await load(url, o.duration, o.connections);
  const c1 = cpuSeconds(server.pid);
  const cpuUsPerReq = c0 < 0 || c1 < 0 || r.requests.total === 0 ? -1 : Math.round(((c1 - c0) * 1e6) / r.requests.total);
  const row = {
    name,
    reqPerSec: Math.round(r.requests.average),
    cpuUsPerReq,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
  process.stderr.write(
    `  ${name}: ${row.reqPerSec} req/s, ${cpuUsPerReq} µs CPU/req, p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, errors ${row.errors}, non-2xx ${row.non2xx}\n`,
  );
  return row;
}

const HELP = `npm run bench:proxy -- [options]
Proxy req/s and gateway CPU µs per request through the gateway (every upstream client) beside the upstream hit
directly and a hand-written http.request proxy.

options:
  --duration S      measured seconds per run (default 10, at most 120)
  --warmup S        warm-up seconds per run (default 2, at most 30)
  --connections N   load-generator connections (default 50)
  --body BYTES      upstream response body size (default 64)
  --out FILE.json   also write the rows as JSON
  -h, --help        this text
`;

async function main(): Promise<void> {
  const { values } = parseCommandLine(HELP, () =>
    parseArgs({
      options: {
        duration: { type: 'string', default: '10' },
        warmup: { type: 'string', default: '2' },
        connections: { type: 'string', default: '50' },
        body: { type: 'string', default: '64' },
        out: { type: 'string' },
      },
    }),
  );
  for (const name of ['duration', 'warmup', 'connections', 'body'] as const) numberOption(name, values[name]);
  const o = { duration: Math.min(120, Number(values.duration)), warmup: Math.min(30, Number(values.warmup)), connections: Number(values.connections) };
  const pinned = hasTaskset();
  if (pinned) execFileSync('taskset', ['-a', '-pc', '1', String(process.pid)], { stdio: 'ignore' });
  const proxyCpu = pinned ? 0 : null;
  const sideCpu = pinned ? 1 : null;
  process.stderr.write(
    `bench-proxy: ${o.duration}s per case after ${o.warmup}s warm-up, ${o.connections} connections, ${values.body}-byte body, ${pinned ? 'pinned (proxy CPU 0; loader+upstream CPU 1)' : 'not pinned'}\n`,
  );

  const children: ChildProcess[] = [];
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-proxy-'));
  const rows: Array<Omit<Row, 'ofDirect'>> = [];
  try {
    const upPort = await freePort();
    const upstream = launch(sideCpu, ['-e', UPSTREAM_SRC], { PORT: String(upPort), BODY_BYTES: String(values.body) });
    children.push(upstream);
    const upUrl = `http://127.0.0.1:${upPort}`;
    rows.push(await measure('direct', `${upUrl}/bench`, upstream, o));

    const hwPort = await freePort();
    const hw = launch(proxyCpu, ['-e', HANDWRITTEN_SRC], { PORT: String(hwPort), UP_HOST: '127.0.0.1', UP_PORT: String(upPort) });
    children.push(hw);
    rows.push(await measure('hand-written proxy', `http://127.0.0.1:${hwPort}/bench`, hw, o));
    await stop(hw);

    for (const variant of Object.keys(upstreamClientVariants)) {
      const port = await freePort();
      const file = path.join(tmp, `gateway-${variant}.json`);
      writeFileSync(
        file,
        JSON.stringify({
          server: { host: '127.0.0.1', port, workers: 0 },
          admin: { enabled: false },
          logging: { level: 'warn', accessLog: false },
          variants: { upstream: variant },
          upstreams: { svc: { targets: [upUrl], keepAlive: { maxSockets: 128, maxIdleSockets: 128, idleMs: 20000 } } },
          routes: [{ path: '/*', upstream: 'svc' }],
        }),
      );
      const gw = launch(proxyCpu, [CLI, '--config', file], {});
      children.push(gw);
      rows.push(await measure(`gateway (${variant})`, `http://127.0.0.1:${port}/bench`, gw, o));
      await stop(gw);
    }
  } finally {
    for (const c of children) await stop(c);
    rmSync(tmp, { recursive: true, force: true });
  }

  const direct = rows[0]!.reqPerSec || 1;
  const table: Row[] = rows.map((r) => ({ ...r, ofDirect: Math.round((r.reqPerSec / direct) * 1000) / 10 }));
  const md = [
    `| case | req/s | % of direct | server CPU µs/req | p50 ms | p99 ms | errors | non-2xx |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|`,
    ...table.map(
      (r) =>
        `| ${r.name} | ${r.reqPerSec} | ${r.ofDirect}% | ${r.cpuUsPerReq < 0 ? 'n/a' : r.cpuUsPerReq} | ${r.p50Ms} | ${r.p99Ms} | ${r.errors} | ${r.non2xx} |`,
    ),
  ].join('\n');
  process.stdout.write(`${md}\n`);
  if (values.out !== undefined) {
    writeFileSync(
      values.out,
      JSON.stringify(
        { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, pinned, options: { ...o, body: Number(values.body) }, rows: table },
        null,
        2,
      ),
    );
  }
}

main().catch(reportFailure);
