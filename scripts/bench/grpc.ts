/**
 * HTTP/2 upstreams and gRPC through the gateway, measured with h2load (nghttp2-client): throughput and the
 * proxy's CPU per request (µs, from /proc utime+stime of its process tree over the measured window).
 *
 *   npm run bench:grpc -- [--duration 5] [--connections 8] [--streams 16] [--only grpc|upstream-h2]
 *
 * - `grpc`: unary gRPC calls (a 5-byte-framed message, `application/grpc`, `te: trailers`) from h2load over h2c
 *   to a gRPC stub service (node:http2, a fixed answer with grpc-status trailers: cheap, so the proxy dominates),
 *   hit directly, through the gateway (`protocol: "h2c"` upstream, h2c listener, one process), and through
 *   Debian's nginx (one worker, `listen … http2`, `grpc_pass` with upstream keepalive) when it is installed.
 * - `upstream-h2`: the same HTTP/1.1 traffic (GET, h2load --h1) through the gateway to an HTTP/1.1 stub and to
 *   an h2c stub serving the same answer: what the upstream protocol costs the gateway.
 *
 * Streaming calls are not loaded here (h2load sends one request per stream); test/proxy/grpc.test.ts covers them.
 * Prints a table; writes nothing. Bounded: every h2load run has its duration, every process is stopped after.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { exitWithUsageError, numberOption, parseCommandLine, UsageError } from '../lib/command-line.js';
import { GATEWAY_CLI, ROOT } from '../scenario/paths.js';
import { prepareNginx } from '../scenario/peers/nginx.js';
import { readCpuTicks } from '../scenario/proc-sampler.js';
import { freePort, processTree, stopProcess, tail, waitReady } from '../scenario/processes.js';

const HELP = `npm run bench:grpc -- [options]
gRPC unary calls through the gateway vs the stub service directly vs nginx grpc_pass, and HTTP/1.1 traffic through
the gateway to an HTTP/1.1 vs an h2c upstream: req/s and the proxy's CPU µs per request (h2load). Prints a table.

options:
  --duration S      measured seconds per run (default 5)
  --connections N   h2load connections (default 8)
  --streams N       concurrent streams per connection for gRPC (default 16)
  --only NAME       grpc or upstream-h2 (default both)
  -h, --help        this text
`;
const { values } = parseCommandLine(HELP, () =>
  parseArgs({
    options: {
      duration: { type: 'string' },
      connections: { type: 'string' },
      streams: { type: 'string' },
      only: { type: 'string' },
    },
  }),
);
let DURATION_S: number, CONNECTIONS: number, STREAMS: number;
try {
  DURATION_S = numberOption('duration', values.duration ?? '5', { exclusiveMin: true })!;
  CONNECTIONS = numberOption('connections', values.connections ?? '8', { min: 1, integer: true })!;
  STREAMS = numberOption('streams', values.streams ?? '16', { min: 1, integer: true })!;
  if (values.only !== undefined && values.only !== 'grpc' && values.only !== 'upstream-h2') throw new UsageError('--only: grpc or upstream-h2');
} catch (err) {
  exitWithUsageError(err);
}
const WARMUP_S = 1;

/** The stub services, one node process each: a gRPC unary answer over h2c, or the same bytes over HTTP/1.1 or h2c. */
const STUB = `
const http = require('node:http');
const http2 = require('node:http2');
const [kind, port] = [process.argv[2], Number(process.argv[3])];
const reply = Buffer.concat([Buffer.from([0, 0, 0, 0, 12]), Buffer.from([10, 10]), Buffer.from('echo:hello')]);
const body = Buffer.from(JSON.stringify({ ok: true, service: 'stub', pad: 'x'.repeat(200) }));
if (kind === 'grpc') {
  const s = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  s.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.resume();
    stream.on('end', () => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'OK' }));
      stream.end(reply);
    });
  });
  s.listen(port, '127.0.0.1');
} else if (kind === 'h2c') {
  const s = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  s.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.respond({ ':status': 200, 'content-type': 'application/json', 'content-length': body.length });
    stream.end(body);
  });
  s.listen(port, '127.0.0.1');
} else {
  http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  }).listen(port, '127.0.0.1');
}
`;

/** A unary request body: the gRPC frame of a message with field 1 = "hello". */
const REQUEST_MESSAGE = Buffer.concat([Buffer.from([0, 0, 0, 0, 7]), Buffer.from([10, 5]), Buffer.from('hello')]);

interface Measured {
  name: string;
  rps: number;
  requests: number;
  failed: number;
  /** CPU µs per request of the process measured (the proxy; the stub for "direct") */
  cpuUsPerReq: number;
  cpuOf: string;
}

const work = mkdtempSync(join(tmpdir(), 'bench-grpc-'));
const stubFile = join(work, 'stub.cjs');
writeFileSync(stubFile, STUB);
const children: ChildProcess[] = [];

async function startStub(kind: 'grpc' | 'h2c' | 'h1'): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [stubFile, kind, String(port)], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  await waitReady(child, { port }, 10_000, () => `stub ${kind}`);
  return { port, child };
}

async function startGateway(upstream: { port: number; protocol: 'h2c' | 'http1' }, listener: 'h2c' | 'http'): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const adminPort = await freePort();
  const file = join(work, `gateway-${port}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      server: { host: '127.0.0.1', port, workers: 0, ...(listener === 'h2c' ? { http2: 'h2c', http2Limits: { maxConcurrentStreams: 1000 } } : {}) },
      admin: { enabled: true, host: '127.0.0.1', port: adminPort },
      logging: { level: 'warn', accessLog: false },
      upstreams: { svc: { targets: [`http://127.0.0.1:${upstream.port}`], protocol: upstream.protocol } },
      routes: [{ path: '/*', upstream: 'svc' }],
    }),
  );
  const out = tail();
  const child = spawn(process.execPath, [GATEWAY_CLI, '--config', file], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => out.push(d));
  child.stderr?.on('data', (d: Buffer) => out.push(d));
  children.push(child);
  await waitReady(child, { port, adminPort }, 20_000, () => out.text());
  return { port, child };
}

async function startNginxGrpc(upstreamPort: number): Promise<{ port: number; child: ChildProcess } | null> {
  if (spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status !== 0) return null;
  const port = await freePort();
  const dir = join(work, 'nginx');
  const args = prepareNginx({ port, upstreamPort, prefixes: [], dir });
  // the proxy config of the peers scenario, turned into HTTP/2 in front and grpc_pass behind
  const conf = join(dir, 'nginx.conf');
  const text = readFileSync(conf, 'utf8')
    .replace(`listen 127.0.0.1:${port};`, `listen 127.0.0.1:${port} http2;\n    http2_max_concurrent_streams 1000;`)
    .replace(/proxy_pass http:\/\/stub;\s*proxy_http_version 1\.1;\s*proxy_set_header Connection "";/, 'grpc_pass grpc://stub;');
  writeFileSync(conf, text);
  const out = tail();
  const child = spawn('nginx', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (d: Buffer) => out.push(d));
  children.push(child);
  await waitReady(child, { port }, 10_000, () => `nginx: ${out.text()}`);
  return { port, child };
}

function cpuTicks(pid: number): number {
  let sum = 0;
  for (const p of processTree(pid)) sum += readCpuTicks(p) ?? 0;
  return sum;
}

function h2load(args: string[]): Promise<{ rps: number; requests: number; failed: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', () => {
      const fin = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
      const req = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed/.exec(out);
      if (fin === null || req === null) return reject(new Error(`unexpected h2load output:\n${out}`));
      resolve({ rps: Number(fin[1]), requests: Number(req[2]), failed: Number(req[3]) });
    });
  });
}

/** One measured run: h2load against `port`, CPU of `measuredPid`'s tree over the measured window only. */
async function measure(name: string, port: number, measuredPid: number, cpuOf: string, kind: 'grpc' | 'h1'): Promise<Measured> {
  const args = ['-t', '1', '-c', String(CONNECTIONS), '-D', String(DURATION_S), '--warm-up-time', String(WARMUP_S)];
  if (kind === 'grpc') {
    const data = join(work, 'request.bin');
    writeFileSync(data, REQUEST_MESSAGE);
    args.push('-m', String(STREAMS), '-d', data, '-H', 'content-type: application/grpc', '-H', 'te: trailers', `http://127.0.0.1:${port}/gwtest.Echo/Unary`);
  } else {
    args.push('--h1', `http://127.0.0.1:${port}/api/item`);
  }
  const hz = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  let startTicks = 0;
  const warm = setTimeout(() => (startTicks = cpuTicks(measuredPid)), WARMUP_S * 1000);
  const r = await h2load(args);
  clearTimeout(warm);
  const usedUs = ((cpuTicks(measuredPid) - startTicks) / hz) * 1e6;
  return { name, rps: r.rps, requests: r.requests, failed: r.failed, cpuUsPerReq: r.requests > 0 ? usedUs / r.requests : 0, cpuOf };
}

function table(title: string, rows: Measured[]): void {
  process.stdout.write(`\n${title}\n| variant | req/s | failed | CPU µs/req | CPU of |\n| --- | ---: | ---: | ---: | --- |\n`);
  for (const r of rows) process.stdout.write(`| ${r.name} | ${Math.round(r.rps)} | ${r.failed} | ${r.cpuUsPerReq.toFixed(1)} | ${r.cpuOf} |\n`);
}

async function main(): Promise<void> {
  if (spawnSync('h2load', ['--version'], { stdio: 'ignore' }).status !== 0) throw new Error('h2load not found (apt-get install nghttp2-client)');
  if (values.only === undefined || values.only === 'grpc') {
    const stub = await startStub('grpc');
    const gw = await startGateway({ port: stub.port, protocol: 'h2c' }, 'h2c');
    const nginx = await startNginxGrpc(stub.port);
    const rows: Measured[] = [];
    rows.push(await measure('direct (stub)', stub.port, stub.child.pid!, 'stub', 'grpc'));
    rows.push(await measure('gateway (h2c → h2c)', gw.port, gw.child.pid!, 'gateway', 'grpc'));
    if (nginx !== null) rows.push(await measure('nginx grpc_pass', nginx.port, nginx.child.pid!, 'nginx (master + 1 worker)', 'grpc'));
    table(`gRPC unary, h2load -c ${CONNECTIONS} -m ${STREAMS}, ${DURATION_S} s`, rows);
    const g = rows[1]!;
    const n = rows[2];
    if (n !== undefined) {
      const eff = n.cpuUsPerReq / g.cpuUsPerReq;
      process.stdout.write(`gateway CPU efficiency vs nginx grpc_pass: ${eff.toFixed(2)}× (target ≥ 0.6×)\n`);
    }
    for (const c of [gw.child, stub.child, ...(nginx === null ? [] : [nginx.child])]) await stopProcess(c, 3000);
  }
  if (values.only === undefined || values.only === 'upstream-h2') {
    const h1 = await startStub('h1');
    const h2 = await startStub('h2c');
    const gw1 = await startGateway({ port: h1.port, protocol: 'http1' }, 'http');
    const gw2 = await startGateway({ port: h2.port, protocol: 'h2c' }, 'http');
    const rows = [
      await measure('gateway → HTTP/1.1 upstream', gw1.port, gw1.child.pid!, 'gateway', 'h1'),
      await measure('gateway → h2c upstream', gw2.port, gw2.child.pid!, 'gateway', 'h1'),
    ];
    table(`upstream-h2: HTTP/1.1 GET, h2load --h1 -c ${CONNECTIONS}, ${DURATION_S} s`, rows);
    for (const c of [gw1.child, gw2.child, h1.child, h2.child]) await stopProcess(c, 3000);
  }
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const c of children) await stopProcess(c, 2000);
    rmSync(work, { recursive: true, force: true });
  });
