/**
 * Gateway CPU per request for each plugin set of the `plugins` scenario, measured as CPU time rather than
 * throughput, so it stays meaningful on a shared or busy machine where req/s would be noise.
 *
 *   node dist/scripts/bench/plugin-cpu.js [--sets none,request-id,production] [--requests 30000]
 *       [--connections 8] [--runs 5] [--build name=DIR ...]
 *
 * Method: one gateway process per (build, set, run) started from `<build>/dist/core/cli.js` (single process,
 * workers 0, the scenario's route, plugin options and request headers from scenarios/plugins.json). After a
 * warm-up of the same size (so the code is optimised), a fixed number of keep-alive requests is sent by a
 * raw-socket client (N connections, one request in flight each, no pipelining), and the gateway's CPU time over
 * exactly those requests is read from /proc/<pid>/task/<tid>/schedstat (nanoseconds, every thread: the main
 * thread, GC helpers, libuv pool). Result: CPU µs per request; median and min over the runs. Builds and sets are
 * interleaved run by run, so a slow phase of the machine hits all of them alike. Every answer must be a 200.
 *
 * --node-arg passes a flag to the gateway's node (e.g. --node-arg=--cpu-prof --node-arg=--cpu-prof-dir=/tmp/prof):
 * the gateway is stopped with SIGTERM (a clean exit, so a profile gets written).
 *
 * --build name=DIR compares checkouts (e.g. a `git worktree` of the previous commit, built): DIR is a repository
 * root with dist/ built. Default: this checkout as "current".
 *
 * --access-log name=JSON (repeatable) runs every build once per `logging.accessLog` value, named build+name, e.g.
 * --access-log off=false --access-log 'json={"file":"a.log"}' (a relative file lands in the run's temp dir). The
 * ratio column then compares the second such pair to the first. Default: the access log off.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface ScenarioFile {
  routes: unknown[];
  traffic: Array<{ method: string; path: string; headers?: Record<string, string> }>;
  pluginSets: Record<string, unknown[]>;
}

const here = fileURLToPath(new URL('.', import.meta.url));
// dist/scripts/bench → repository root
const repoRoot = resolve(here, '..', '..', '..');

const { values } = parseArgs({
  options: {
    sets: { type: 'string' },
    requests: { type: 'string' },
    connections: { type: 'string' },
    runs: { type: 'string' },
    build: { type: 'string', multiple: true },
    scenario: { type: 'string' },
    'node-arg': { type: 'string', multiple: true },
    'access-log': { type: 'string', multiple: true },
  },
});

const scenario = JSON.parse(readFileSync(values.scenario ?? join(repoRoot, 'scenarios/plugins.json'), 'utf8')) as ScenarioFile;
const defaultSets = ['none', 'request-id', 'rate-limit', 'auth-jwt', 'compression-small', 'production'];
const sets = values.sets !== undefined ? values.sets.split(',') : defaultSets;
const REQUESTS = Number(values.requests ?? 30_000);
const CONNECTIONS = Number(values.connections ?? 8);
const RUNS = Number(values.runs ?? 5);
const NODE_ARGS = values['node-arg'] ?? [];
/** `name=value` of a repeatable option */
function named(option: string, v: string): [string, string] {
  const eq = v.indexOf('=');
  if (eq === -1) throw new Error(`--${option} wants name=VALUE, got ${v}`);
  return [v.slice(0, eq), v.slice(eq + 1)];
}
const accessLogs = (values['access-log'] ?? []).map((v) => {
  const [name, json] = named('access-log', v);
  return { name, value: JSON.parse(json) as unknown };
});
const builds = (values.build ?? [`current=${repoRoot}`]).flatMap((b) => {
  const [name, dir] = named('build', b);
  if (accessLogs.length === 0) return [{ name, dir: resolve(dir), accessLog: false as unknown }];
  return accessLogs.map((l) => ({ name: `${name}+${l.name}`, dir: resolve(dir), accessLog: l.value }));
});

/** compression with its default threshold (what the production set runs): these ~600-byte bodies stay as they are */
const EXTRA_SETS: Record<string, unknown[]> = { 'compression-small': [{ name: 'compression', options: {} }] };

function pluginsOf(set: string): unknown[] {
  const p = scenario.pluginSets[set] ?? EXTRA_SETS[set];
  if (p === undefined) throw new Error(`unknown plugin set "${set}" (known: ${[...Object.keys(scenario.pluginSets), ...Object.keys(EXTRA_SETS)].join(', ')})`);
  return p;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

/** CPU time of every thread of the process, in ns (schedstat's first field; /proc/<pid>/stat only has ticks). */
function cpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited between readdir and read
    }
  }
  return total;
}

/** utime and stime in clock ticks (fields 14 and 15 of /proc/<pid>/stat; the name field may contain spaces) */
function userSysTicks(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(f[11]), Number(f[12])];
}

function requestBuffers(port: number): Buffer[] {
  return scenario.traffic.map((t) => {
    let head = `${t.method} ${t.path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n`;
    for (const [k, v] of Object.entries(t.headers ?? {})) head += `${k}: ${v}\r\n`;
    return Buffer.from(`${head}\r\n`);
  });
}

/**
 * Sends `total` requests over `conns` keep-alive connections, one in flight per connection. Responses are framed
 * by content-length (the gateway's answers here always carry one); any status but 200 fails the run.
 */
function drive(port: number, total: number, conns: number): Promise<void> {
  const reqs = requestBuffers(port);
  let sent = 0;
  let done = 0;
  return new Promise((resolveAll, reject) => {
    const start = (): void => {
      const sock: Socket = connect(port, '127.0.0.1');
      sock.setNoDelay(true);
      let buf: Buffer = Buffer.alloc(0);
      let next = 0;
      const send = (): void => {
        if (sent >= total) {
          sock.end();
          return;
        }
        sent++;
        sock.write(reqs[next++ % reqs.length]!);
      };
      sock.on('data', (chunk: Buffer) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end === -1) return;
          const head = buf.toString('latin1', 0, end);
          const m = /\r\ncontent-length: *(\d+)/i.exec(head);
          if (m === null) {
            reject(new Error(`response without content-length: ${head}`));
            return;
          }
          const len = end + 4 + Number(m[1]);
          if (buf.length < len) return;
          if (!head.startsWith('HTTP/1.1 200')) {
            reject(new Error(`unexpected answer: ${head.split('\r\n')[0]}`));
            return;
          }
          buf = buf.subarray(len);
          done++;
          if (done === total) resolveAll();
          else send();
        }
      });
      sock.on('error', reject);
      sock.once('connect', send);
    };
    for (let i = 0; i < conns; i++) start();
  });
}

async function waitListening(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('gateway did not start listening');
}

interface Sample {
  /** CPU µs per request, all threads */
  us: number;
  /** share of it spent in the kernel (from tick counts: coarse) */
  sysShare: number;
}

async function measure(buildDir: string, set: string, work: string, accessLog: unknown): Promise<Sample> {
  const port = await freePort();
  const config = {
    server: { host: '127.0.0.1', port, workers: 0 },
    admin: { enabled: false },
    logging: { level: 'warn', accessLog },
    routes: scenario.routes,
    plugins: pluginsOf(set),
  };
  const file = join(work, `gateway-${port}.json`);
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, [...NODE_ARGS, join(buildDir, 'dist/core/cli.js'), '--config', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitListening(port, child);
    await drive(port, REQUESTS, CONNECTIONS);
    const before = cpuNs(child.pid!);
    const [u0, s0] = userSysTicks(child.pid!);
    await drive(port, REQUESTS, CONNECTIONS);
    const after = cpuNs(child.pid!);
    const [u1, s1] = userSysTicks(child.pid!);
    const ticks = u1 - u0 + (s1 - s0);
    return { us: (after - before) / 1000 / REQUESTS, sysShare: ticks === 0 ? 0 : (s1 - s0) / ticks };
  } finally {
    const exited = new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const work = mkdtempSync(join(tmpdir(), 'plugin-cpu-'));
const samples = new Map<string, Sample[]>();
try {
  for (let run = 0; run < RUNS; run++) {
    for (const set of sets) {
      for (const b of builds) {
        const sample = await measure(b.dir, set, work, b.accessLog);
        const key = `${b.name}\t${set}`;
        samples.set(key, [...(samples.get(key) ?? []), sample]);
        process.stderr.write(`run ${run + 1}/${RUNS} ${b.name} ${set}: ${sample.us.toFixed(2)} µs/req, ${(sample.sysShare * 100).toFixed(0)}% sys\n`);
      }
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const usOf = (name: string, set: string): number[] => samples.get(`${name}\t${set}`)!.map((s) => s.us);
const lines = [
  `| set | ${builds.map((b) => `${b.name} median µs/req (min, sys share)`).join(' | ')} | ${builds.length > 1 ? `${builds[1]!.name} ÷ ${builds[0]!.name} |` : ''}`,
];
lines.push(`| --- | ${builds.map(() => '---').join(' | ')} |${builds.length > 1 ? ' --- |' : ''}`);
for (const set of sets) {
  const cells = builds.map((b) => {
    const xs = usOf(b.name, set);
    const sys = median(samples.get(`${b.name}\t${set}`)!.map((s) => s.sysShare));
    return `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}, ${(sys * 100).toFixed(0)}%)`;
  });
  let ratio = '';
  if (builds.length > 1) {
    ratio = ` ${(median(usOf(builds[1]!.name, set)) / median(usOf(builds[0]!.name, set))).toFixed(3)} |`;
  }
  lines.push(`| ${set} | ${cells.join(' | ')} |${ratio}`);
}
process.stdout.write(`${REQUESTS} requests per run, ${CONNECTIONS} connections, ${RUNS} runs, gateway CPU (all threads) per request\n${lines.join('\n')}\n`);
