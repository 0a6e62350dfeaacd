/**
 * The scenario runner's `h2` mode: TLS and HTTP/2 cost measured with h2load (Debian's nghttp2-client), since
 * autocannon speaks HTTP/1.1 only. A scenario file with `"mode": "h2"` (scenarios/h2load/h2.json) is
 * dispatched here by runScenario; the report is the runner's usual results.json / report.md / report.html.
 *
 * Every variant is the same gateway serving the same static route, reached over a different client protocol:
 * `h1` (cleartext HTTP/1.1), `h1-tls` (HTTPS/1.1, ALPN http/1.1), `h2-tls` (HTTP/2 over TLS). Latency
 * percentiles come from h2load's per-request log (`--log-file`), restricted to the measured window.
 */
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Scenario } from '../../scenarios/schema.js';
import { readDiagnostics } from './diagnostics.js';
import { describeEnvironment } from './environment.js';
import { estimateSeconds, formatDuration, remainingSeconds } from './eta.js';
import { canonicalJson, scenarioPath } from './load-scenario.js';
import { saveRun } from './output.js';
import { distScript, GATEWAY_CLI, ROOT, SCENARIO_DIR } from './paths.js';
import { ProcSampler } from './proc-sampler.js';
import { freePort, planCpus, spawnNode, stopProcess, tail, waitReady, type CpuPlan } from './processes.js';
import type { Results, RunResult } from './results.js';
import { statisticsInfo, validateResults } from './results.js';
import type { RunOptions, ScenarioRun } from './runner.js';
import { summarize } from './summarize.js';
import type { VariantSpec } from './variants.js';

export type H2Protocol = 'h1' | 'h1-tls' | 'h2-tls';

export interface H2Variant {
  id: string;
  protocol: H2Protocol;
  /** overrides load.connections */
  connections?: number;
  /** concurrent streams per connection (h2 only; HTTP/1.1 always 1) */
  streams?: number;
}

/** scenarios/h2.json */
export interface H2Scenario {
  $schema?: string;
  name: string;
  description: string;
  mode: 'h2';
  route: { path: string; status?: number; headers?: Record<string, string>; body: unknown };
  variants: H2Variant[];
  baselineVariant: string;
  /** pipelining is always 1 (h2load's -m for HTTP/1.1); `streams` is per variant */
  load: { connections: number; pipelining: 1; durationS: number; rate?: undefined };
  warmupS: number;
  repetitions: number;
  seed: number;
}

const READY_TIMEOUT_MS = 20_000;

export function hasH2load(): boolean {
  return spawnSync('h2load', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * h2 scenarios live in scenarios/h2load/ (the runner's schema, which every scenarios/*.json must pass, has no
 * h2 mode): `npm run scenario -- h2` finds scenarios/h2load/h2.json; a path to a .json file works too.
 */
export function h2ScenarioPath(nameOrPath: string): string {
  return nameOrPath.endsWith('.json') ? scenarioPath(nameOrPath) : join(SCENARIO_DIR, 'h2load', `${nameOrPath}.json`);
}

/** True when the scenario file declares `"mode": "h2"` (read before the runner's schema sees it). */
export function isH2LoadScenario(nameOrPath: string): boolean {
  try {
    const raw = JSON.parse(readFileSync(h2ScenarioPath(nameOrPath), 'utf8')) as { mode?: unknown };
    return raw.mode === 'h2';
  } catch {
    return false;
  }
}

export function loadH2Scenario(nameOrPath: string): { scenario: H2Scenario; hash: string } {
  const text = readFileSync(h2ScenarioPath(nameOrPath), 'utf8');
  const s = JSON.parse(text) as H2Scenario;
  const problems: string[] = [];
  if (typeof s.name !== 'string' || s.name === '') problems.push('/name: required');
  if (typeof s.route?.path !== 'string' || !s.route.path.startsWith('/')) problems.push('/route/path: must start with "/"');
  if (!Array.isArray(s.variants) || s.variants.length === 0) problems.push('/variants: at least one');
  for (const [i, v] of (s.variants ?? []).entries()) {
    if (!['h1', 'h1-tls', 'h2-tls'].includes(v.protocol)) problems.push(`/variants/${i}/protocol: one of h1, h1-tls, h2-tls`);
    if (v.streams !== undefined && v.protocol !== 'h2-tls' && v.streams !== 1) problems.push(`/variants/${i}/streams: HTTP/1.1 has one stream per connection`);
  }
  if (!s.variants?.some((v) => v.id === s.baselineVariant)) problems.push('/baselineVariant: must name a variant');
  if (!(s.load?.connections >= 1) || !(s.load?.durationS > 0)) problems.push('/load: connections >= 1 and durationS > 0');
  if (problems.length > 0) throw new Error(`scenario ${nameOrPath}:\n  ${problems.join('\n  ')}`);
  return { scenario: s, hash: createHash('sha256').update(canonicalJson(s)).digest('hex') };
}

/** A self-signed certificate in `dir` (h2load does not verify; the gateway needs one to terminate TLS). */
function makeCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { cert, key };
}

interface H2loadOutcome {
  requests: number;
  rps: number;
  bytesPerS: number;
  durationS: number;
  errors: number;
  timeouts: number;
  status: RunResult['status'];
  latencyMs: RunResult['latencyMs'];
  cpuPct: number;
}

/** h2load's "finished in 10.00s, 1234.5 req/s, 1.2MB/s" and the requests / status lines. */
export function parseH2loadOutput(out: string): Omit<H2loadOutcome, 'latencyMs' | 'cpuPct'> {
  const fin = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s, ([\d.]+)([KMG]?B)\/s/.exec(out);
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const st = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  if (fin === null || req === null || st === null) throw new Error(`unexpected h2load output:\n${out}`);
  const unit = { B: 1, KB: 1024, MB: 1024 * 1024, GB: 1024 ** 3 }[fin[5] as 'B'] ?? 1;
  return {
    durationS: Number(fin[1]) / (fin[2] === 'ms' ? 1000 : 1),
    rps: Number(fin[3]),
    bytesPerS: Number(fin[4]) * unit,
    requests: Number(req[3]),
    errors: Number(req[5]) + Number(req[6]),
    timeouts: Number(req[7]),
    status: { '1xx': 0, '2xx': Number(st[1]), '3xx': Number(st[2]), '4xx': Number(st[3]), '5xx': Number(st[4]) },
  };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Latency from h2load's --log-file (start µs since epoch, status, elapsed µs), requests started at/after fromUs. */
export function latencyFromLog(text: string, fromUs: number): RunResult['latencyMs'] {
  const values: number[] = [];
  for (const line of text.split('\n')) {
    const [start, , elapsed] = line.split('\t');
    if (elapsed === undefined || Number(start) < fromUs) continue;
    values.push(Number(elapsed) / 1000);
  }
  const a = Float64Array.from(values).sort();
  const mean = a.length === 0 ? 0 : a.reduce((s, x) => s + x, 0) / a.length;
  return {
    mean,
    p50: percentile(a, 50),
    p90: percentile(a, 90),
    p99: percentile(a, 99),
    p999: percentile(a, 99.9),
    max: a.length === 0 ? 0 : a[a.length - 1]!,
  };
}

function runH2load(args: string[], plan: CpuPlan, logFile: string, warmupS: number): Promise<H2loadOutcome> {
  return new Promise((resolve, reject) => {
    const cmd = plan.loaderCpus.length > 0 ? 'taskset' : 'h2load';
    const full = plan.loaderCpus.length > 0 ? ['-c', plan.loaderCpus.join(','), 'h2load', ...args] : args;
    const startedUs = Date.now() * 1000;
    const child = spawn(cmd, full, { stdio: ['ignore', 'pipe', 'pipe'] });
    const sampler = new ProcSampler(child.pid!);
    sampler.start();
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      const usage = sampler.stop();
      if (code !== 0) return reject(new Error(`h2load exited with ${code}:\n${out}`));
      try {
        const parsed = parseH2loadOutput(out);
        const latencyMs = latencyFromLog(existsSync(logFile) ? readFileSync(logFile, 'utf8') : '', startedUs + warmupS * 1e6);
        resolve({ ...parsed, latencyMs, cpuPct: usage.cpuPct });
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}

function gatewayConfig(s: H2Scenario, v: H2Variant, port: number, adminPort: number, cert: { cert: string; key: string }): Record<string, unknown> {
  return {
    server: {
      host: '127.0.0.1',
      port,
      workers: 0,
      ...(v.protocol === 'h1' ? {} : { tls: { cert: cert.cert, key: cert.key }, http2: v.protocol === 'h2-tls' }),
    },
    admin: { enabled: true, host: '127.0.0.1', port: adminPort },
    logging: { level: 'warn', accessLog: false },
    routes: [{ path: s.route.path, methods: ['GET'], response: { status: s.route.status ?? 200, headers: s.route.headers ?? {}, body: s.route.body } }],
  };
}

export async function runH2LoadScenario(opts: RunOptions): Promise<ScenarioRun> {
  const { scenario, hash } = loadH2Scenario(opts.scenario);
  if (!hasH2load()) {
    throw new Error(`scenario ${scenario.name} skipped: h2load not found (Debian/Ubuntu: apt-get install nghttp2-client). autocannon cannot load HTTP/2.`);
  }
  if (!existsSync(GATEWAY_CLI)) throw new Error('not built (run `npm run build`): missing dist/core/cli.js');
  const repetitions = opts.repetitions ?? scenario.repetitions;
  const warmupS = opts.warmupS ?? scenario.warmupS;
  const durationS = opts.durationS ?? scenario.load.durationS;
  const plan = planCpus(opts.pin === false);
  const loadBefore = loadavg();
  const startedAt = new Date().toISOString();
  const work = mkdtempSync(join(tmpdir(), `scenario-${scenario.name}-`));
  const cert = makeCert(work);
  const variants: VariantSpec[] = scenario.variants.map((v) => ({ id: v.id, kind: 'gateway', workers: 0 }));
  const runs: RunResult[] = [];
  const verbose = opts.progress !== false;
  const etaPlan = { variants: variants.length, repetitions, warmupS, durationS };
  const total = repetitions * variants.length;
  if (verbose)
    process.stderr.write(
      `scenario ${scenario.name}: ${variants.length} variants × ${repetitions} repetitions, ETA ${formatDuration(estimateSeconds(etaPlan))}\n`,
    );
  const t0 = performance.now();
  try {
    let order = 0;
    for (let rep = 0; rep < repetitions; rep++) {
      // Interleaved (h1, h1-tls, h2-tls, h1, …) so drift on the machine hits every variant alike.
      for (const v of scenario.variants) {
        const run = await runVariant(scenario, v, rep, order++, { plan, work, cert, warmupS, durationS });
        runs.push(run);
        const left = remainingSeconds(etaPlan, order, total, (performance.now() - t0) / 1000);
        if (verbose)
          process.stderr.write(
            `[${order}/${total}] ${v.id} #${rep + 1}: ${Math.round(run.rps)} req/s, p99 ${run.latencyMs.p99.toFixed(2)} ms${run.gateway ? `, cpu ${run.gateway.cpuPct.toFixed(0)}%` : ''}${order < total ? ` — ETA ${formatDuration(left)}` : ''}\n`,
          );
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const env = describeEnvironment(plan, loadBefore);
  const ids = variants.map((v) => v.id);
  const results: Results = {
    schemaVersion: 1,
    scenario: { name: scenario.name, description: scenario.description, hash, definition: scenario as unknown as Scenario, routeCount: 1 },
    options: { repetitions, durationS, amount: null, warmupS, only: [], seed: scenario.seed },
    command: opts.command ?? `npm run scenario -- ${scenario.name}`,
    startedAt,
    finishedAt: new Date().toISOString(),
    environment: env,
    variants,
    runs,
    summary: summarize(ids, runs, scenario.baselineVariant, scenario.seed),
    statistics: statisticsInfo(scenario.seed),
    caveats: [
      plan.note,
      `load generator: h2load (${spawnSync('h2load', ['--version'], { encoding: 'utf8' }).stdout.trim().split('\n')[0]}), one thread; ` +
        'HTTP/1.1 variants use --h1 with one request in flight per connection; h2 variants use `streams` concurrent streams per connection.',
      'TLS: self-signed P-256 certificate, TLS 1.3 (what h2load and Node negotiate by default); connections are opened once per run, so the handshake cost is amortised: this measures per-request crypto and framing, not handshakes.',
      "latency percentiles come from h2load's per-request log (requests started after the warmup), not from a CO-corrected open loop.",
      ...(availableParallelism() <= 2 ? [`${availableParallelism()}-core machine: absolute numbers are far below a server's, ratios are what transfer.`] : []),
    ],
  };
  const problems = validateResults(results);
  if (problems.length > 0) throw new Error(`results do not match their schema:\n  ${problems.join('\n  ')}`);
  const dir = await saveRun(results, { ...(opts.outDir !== undefined ? { outDir: opts.outDir } : {}), publish: opts.publish === true });
  return { dir, results };
}

async function runVariant(
  s: H2Scenario,
  v: H2Variant,
  repetition: number,
  order: number,
  env: { plan: CpuPlan; work: string; cert: { cert: string; key: string }; warmupS: number; durationS: number },
): Promise<RunResult> {
  const port = await freePort();
  const adminPort = await freePort();
  const file = join(env.work, `gateway-${order}.json`);
  writeFileSync(file, JSON.stringify(gatewayConfig(s, v, port, adminPort, env.cert)));
  const diagDir = join(env.work, 'diag', String(order));
  const output = tail();
  const preload = ['--import', pathToFileURL(distScript('preload-diagnostics.js')).href];
  const child = spawnNode([...preload, GATEWAY_CLI, '--config', file], env.plan.gatewayCpus, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SCENARIO_DIAG_DIR: diagDir, NODE_ENV: 'production' },
    cwd: ROOT,
  });
  child.stdout?.on('data', (d: Buffer) => output.push(d));
  child.stderr?.on('data', (d: Buffer) => output.push(d));
  try {
    await waitReady(child, { port, adminPort }, READY_TIMEOUT_MS, () => `variant ${v.id} output:\n${output.text()}`);
    const connections = v.connections ?? s.load.connections;
    const streams = v.protocol === 'h2-tls' ? (v.streams ?? 1) : 1;
    const logFile = join(env.work, `h2load-${order}.log`);
    const url = `${v.protocol === 'h1' ? 'http' : 'https'}://127.0.0.1:${port}${s.route.path}`;
    const args = [
      '-t',
      '1',
      '-c',
      String(connections),
      '-m',
      String(streams),
      '-D',
      String(env.durationS),
      '--warm-up-time',
      String(env.warmupS),
      '--log-file',
      logFile,
    ];
    if (v.protocol !== 'h2-tls') args.push('--h1');
    args.push(url);
    const sampler = new ProcSampler(child.pid!);
    const startedAt = new Date().toISOString();
    const t0 = Date.now();
    // The gateway's CPU is sampled over the measured window only (h2load's warmup runs first).
    const warm = setTimeout(() => sampler.start(), env.warmupS * 1000);
    const r = await runH2load(args, env.plan, logFile, env.warmupS);
    clearTimeout(warm);
    const usage = sampler.stop();
    const diagnostics = readDiagnostics(diagDir, t0 + env.warmupS * 1000, Date.now());
    const warnings: string[] = [];
    const bound = r.cpuPct >= 90;
    if (bound) warnings.push(`load generator at ${r.cpuPct.toFixed(0)}% of its core: loader-bound, throughput is a lower bound`);
    if (r.errors > 0 || r.timeouts > 0) warnings.push(`${r.errors} errors, ${r.timeouts} timeouts`);
    if (r.status['5xx'] > 0) warnings.push(`${r.status['5xx']} responses were 5xx`);
    const non2xx = r.status['1xx'] + r.status['3xx'] + r.status['4xx'] + r.status['5xx'];
    return {
      variant: v.id,
      repetition,
      order,
      startedAt,
      durationS: r.durationS,
      requests: r.requests,
      rps: r.rps,
      bytesPerS: r.bytesPerS,
      latencyMs: r.latencyMs,
      errors: r.errors,
      timeouts: r.timeouts,
      non2xx,
      status: r.status,
      gateway: usage.samples > 0 ? usage : null,
      diagnostics,
      loader: { cpuPct: r.cpuPct, bound },
      warnings,
    };
  } finally {
    await stopProcess(child, 5000);
  }
}
