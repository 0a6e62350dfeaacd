/**
 * Where a proxied request's CPU goes: the per-request CPU budget of the gateway, split into the parts of a proxied
 * request (kernel read/write, request parse, route, upstream write, response parse, client write, metrics, the
 * rest), for each server engine.
 *
 *   npm run build && node scripts/run.mjs dist/scripts/bench/cpu-budget.js [--engines own,node-http]
 *       [--warmup 10] [--seconds 8] [--connections 16] [--out DIR]
 *
 * Method: the engines-proxy scenario's routes and traffic mix (replayed by wrk, as the harness does), the gateway
 * pinned to CPU 0 with `--perf-basic-prof`, wrk and the upstream stub on CPU 1. After the warm-up, `perf record
 * -e cpu-clock -g` samples the gateway for the measured window while its CPU time is read from /proc/<pid>/stat
 * (utime + stime) and wrk counts the answers: CPU µs per request, then split by the samples' stacks. A sample is
 * charged to the part of the first gateway (or node:http) frame from the leaf up, so node's streams and V8 code
 * between the leaf and that frame count for the part that called them; a kernel write is charged to the client
 * or the upstream by the same frame. perf adds its own cost (a few %), so the total is above the harness's
 * figure for the same engine; the split is what this tool is for.
 *
 * Needs `perf` (linux-perf) with access to its own processes (kernel.perf_event_paranoid ≤ 2), wrk and taskset.
 * Writes its perf data under --out (default: the git-ignored reports/runs/<timestamp>-cpu-budget/).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadScenario } from '../scenario/load-scenario.js';
import { distScript, GATEWAY_CLI, REPORTS_DIR } from '../scenario/paths.js';
import { freePort, spawnNode, stopProcess, waitReady } from '../scenario/processes.js';
import { buildRequests, expandMix, type LoadRequest } from '../scenario/traffic.js';
import { splitSamples } from './cpu-budget-parts.js';

function luaString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** A wrk script replaying `requests` in order, round and round. */
function wrkScript(requests: LoadRequest[]): string {
  const lines = ['local reqs = {}'];
  requests.forEach((r, i) => {
    const headers = Object.entries({ Host: '127.0.0.1', ...(r.headers ?? {}) })
      .map(([k, v]) => `[${luaString(k)}]=${luaString(v)}`)
      .join(', ');
    lines.push(`reqs[${i + 1}] = wrk.format(${luaString(r.method)}, ${luaString(r.path)}, {${headers}}, ${r.body === undefined ? 'nil' : luaString(r.body)})`);
  });
  lines.push('local i = 0', `request = function() i = i % ${requests.length} + 1; return reqs[i] end`);
  return `${lines.join('\n')}\n`;
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat; fields[0] here is field 3
  return Number(fields[11]) + Number(fields[12]);
}

function wrk(script: string, port: number, seconds: number, connections: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', '1', 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '-s', script, `http://127.0.0.1:${port}/`]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', () => {
      const m = /(\d+) requests in/.exec(out);
      if (m === null) reject(new Error(`wrk printed no request count:\n${out}`));
      else resolve(Number(m[1]));
    });
  });
}

async function measure(engine: string, dir: string, opts: { warmup: number; seconds: number; connections: number }): Promise<string> {
  const { scenario, routes } = loadScenario('engines-proxy');
  const script = join(dir, 'mix.lua');
  writeFileSync(script, wrkScript(buildRequests(expandMix(scenario, routes), 1000, scenario.seed)));
  const [port, upstreamPort] = [await freePort(), await freePort()];
  const stub = spawnNode([distScript('upstream-stub.js'), '--port', String(upstreamPort), '--body-bytes', '256'], [1], { stdio: 'ignore' });
  const config = {
    server: { host: '127.0.0.1', port, workers: 0 },
    admin: { enabled: false },
    logging: { level: 'warn', accessLog: false },
    variants: { server: engine },
    upstreams: { stub: { targets: [`http://127.0.0.1:${upstreamPort}`] } },
    routes: routes.map((r) => ({ path: r.path, methods: r.methods, upstream: 'stub' })),
  };
  const configFile = join(dir, `gateway-${engine}.json`);
  writeFileSync(configFile, JSON.stringify(config));
  const gateway: ChildProcess = spawnNode(['--perf-basic-prof', GATEWAY_CLI, '--config', configFile], [0], { stdio: 'ignore' });
  try {
    await waitReady(stub, { port: upstreamPort }, 20_000, () => 'upstream stub');
    await waitReady(gateway, { port }, 20_000, () => `gateway (${engine})`);
    await wrk(script, port, opts.warmup, opts.connections);
    const data = join(dir, `perf-${engine}.data`);
    const before = cpuTicks(gateway.pid!);
    const perf = spawn(
      'perf',
      ['record', '-q', '-e', 'cpu-clock', '-F', '2999', '-g', '-p', String(gateway.pid), '-o', data, '--', 'sleep', String(opts.seconds)],
      {
        stdio: 'ignore',
      },
    );
    const perfDone = new Promise<void>((r) => perf.on('close', () => r()));
    const requests = await wrk(script, port, opts.seconds, opts.connections);
    await perfDone;
    const cpuUs = ((cpuTicks(gateway.pid!) - before) / 100) * 1e6;
    const parts = splitSamples(execFileSync('perf', ['script', '-i', data, '-F', 'ip,sym'], { encoding: 'utf8', maxBuffer: 1 << 30 }));
    const total = [...parts.values()].reduce((s, n) => s + n, 0);
    const perRequest = cpuUs / requests;
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    const rows = [...parts]
      .sort((a, b) => b[1] - a[1])
      .map(([part, n]) => `| ${part} | ${((100 * n) / total).toFixed(1)}% | ${((perRequest * n) / total).toFixed(1)} |`);
    return [
      `### ${engine}: ${perRequest.toFixed(1)} µs CPU per request (${requests} requests, ${total} samples, load average ${load})`,
      '',
      '| part | share of samples | µs per request |',
      '| --- | ---: | ---: |',
      ...rows,
      '',
    ].join('\n');
  } finally {
    await stopProcess(gateway, 3000);
    await stopProcess(stub, 3000);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      engines: { type: 'string', default: 'own,node-http' },
      warmup: { type: 'string', default: '10' },
      seconds: { type: 'string', default: '8' },
      connections: { type: 'string', default: '16' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(
      'node dist/scripts/bench/cpu-budget.js [--engines own,node-http] [--warmup 10] [--seconds 8] [--connections 16] [--out DIR]\n' +
        "Per-request CPU budget of a proxied request (the engines-proxy mix), split by perf's stacks. Needs perf, wrk, taskset.\n",
    );
    return;
  }
  for (const tool of ['perf', 'wrk', 'taskset']) {
    if (spawnSync(tool, ['--version']).error !== undefined) throw new Error(`${tool} is not installed`);
  }
  const dir = values.out ?? join(REPORTS_DIR, 'runs', `${new Date().toISOString().replace(/:/g, '-').replace(/\..*/, 'Z')}-cpu-budget`);
  mkdirSync(dir, { recursive: true });
  const opts = { warmup: Number(values.warmup), seconds: Number(values.seconds), connections: Number(values.connections) };
  const out: string[] = [];
  for (const engine of values.engines.split(',')) out.push(await measure(engine, dir, opts));
  writeFileSync(join(dir, 'budget.md'), out.join('\n'));
  process.stdout.write(`${out.join('\n')}\nwritten: ${join(dir, 'budget.md')}\n`);
}

await main();
