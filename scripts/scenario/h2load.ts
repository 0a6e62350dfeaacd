/**
 * The scenario runner's `h2` mode: scenarios loaded by h2load (Debian's nghttp2-client), since autocannon and wrk
 * speak HTTP/1.1 only. A scenario file with `"mode": "h2"` (scenarios/h2load/) is dispatched here by runScenario;
 * the report is the runner's usual results.json / report.md / report.html, targets and skipped peers included.
 *
 * A variant is a contestant reached over a client protocol (`h1`, `h1-tls`, `h2-tls`, `h2c`):
 * - the gateway serving a static route (`h2`: what TLS and HTTP/2 cost on the client side), or proxying to the
 *   scenario's upstream service over HTTP/1.1 or h2c (`upstream-h2`, `grpc`);
 * - `direct`: the service itself (h2-stub.ts), the reference of `grpc`;
 * - `nginx`: Debian's nginx with `grpc_pass` (peers/nginx.ts), skipped and reported when it is not installed.
 * Each contestant answers one request of its kind before it is timed (h2-answer-check.ts). Latency percentiles
 * come from h2load's per-request log (`--log-file`), restricted to the measured window; CPU from /proc over it.
 */
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Scenario, TargetSpec } from '../../scenarios/schema.js';
import type { AnswerCheck } from './answer-check.js';
import { readDiagnostics } from './diagnostics.js';
import { describeEnvironment } from './environment.js';
import { estimateSeconds, formatDuration, remainingSeconds } from './eta.js';
import { GRPC_PATHS, GRPC_REPLY, GRPC_REQUEST, STREAM_MESSAGES, UPSTREAM_BODY, type GrpcCall } from './grpc-traffic.js';
import { checkH2Answer, type H2Expected } from './h2-answer-check.js';
import { canonicalJson, scenarioPath } from './load-scenario.js';
import { saveRun } from './output.js';
import { distScript, GATEWAY_CLI, ROOT, SCENARIO_DIR } from './paths.js';
import { peerUnavailable, spawnPeer } from './peers/index.js';
import { ProcSampler } from './proc-sampler.js';
import { freePort, planCpus, spawnNode, stopProcess, tail, waitReady, type CpuPlan } from './processes.js';
import type { Results, RunResult } from './results.js';
import { statisticsInfo, validateResults } from './results.js';
import type { RunOptions, ScenarioRun } from './runner.js';
import { cpuUsPerRequest, summarize } from './summarize.js';
import { evaluateTargets } from './targets.js';
import type { VariantSpec } from './variants.js';

export type H2Protocol = 'h1' | 'h1-tls' | 'h2-tls' | 'h2c';
const PROTOCOLS: readonly H2Protocol[] = ['h1', 'h1-tls', 'h2-tls', 'h2c'];

/** Who answers a variant's requests: the gateway, the upstream service itself, or nginx as a peer. */
export type H2Contestant = 'gateway' | 'direct' | 'nginx';

export interface H2Variant {
  id: string;
  /** how h2load speaks to the contestant */
  protocol: H2Protocol;
  /** overrides load.connections */
  connections?: number;
  /** concurrent streams per connection (h2 only; HTTP/1.1 always 1) */
  streams?: number;
  /** default gateway */
  via?: H2Contestant;
  /** the gateway proxies to the scenario's service over this protocol instead of serving `route` itself */
  upstream?: 'http1' | 'h2c';
  /** gRPC scenarios: the call loaded (default unary) */
  call?: GrpcCall;
}

/** scenarios/h2load/*.json */
export interface H2Scenario {
  $schema?: string;
  name: string;
  description: string;
  mode: 'h2';
  /** the static route gateway variants without `upstream` serve */
  route?: { path: string; status?: number; headers?: Record<string, string>; body: unknown };
  /**
   * the upstream service (h2-stub.ts) proxied variants reach and `direct` variants load: `grpc` (gRPC calls over
   * h2c) or `http` (a fixed JSON answer, over HTTP/1.1 or h2c as each variant's `upstream` says)
   */
  service?: 'grpc' | 'http';
  variants: H2Variant[];
  baselineVariant: string;
  /** pipelining is always 1 (h2load's -m for HTTP/1.1); `streams` is per variant */
  load: { connections: number; pipelining: 1; durationS: number; rate?: undefined };
  warmupS: number;
  repetitions: number;
  seed: number;
  /** ratio targets judged in the report (targets.ts), e.g. CPU efficiency against nginx */
  targets?: TargetSpec[];
}

const READY_TIMEOUT_MS = 20_000;

/** h2load takes whole units only ("0.5" is a value error): fractional seconds as milliseconds. */
export function h2loadDuration(seconds: number): string {
  return Number.isInteger(seconds) ? String(seconds) : `${Math.round(seconds * 1000)}ms`;
}

function isH2(p: H2Protocol): boolean {
  return p === 'h2-tls' || p === 'h2c';
}

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
  if (!Array.isArray(s.variants) || s.variants.length === 0) problems.push('/variants: at least one');
  if (s.service !== undefined && s.service !== 'grpc' && s.service !== 'http') problems.push('/service: grpc or http');
  for (const [i, v] of (s.variants ?? []).entries()) {
    const at = `/variants/${i}`;
    const via = v.via ?? 'gateway';
    if (!PROTOCOLS.includes(v.protocol)) problems.push(`${at}/protocol: one of ${PROTOCOLS.join(', ')}`);
    if (v.streams !== undefined && !isH2(v.protocol) && v.streams !== 1) problems.push(`${at}/streams: HTTP/1.1 has one stream per connection`);
    if (!['gateway', 'direct', 'nginx'].includes(via)) problems.push(`${at}/via: gateway, direct or nginx`);
    if (v.upstream !== undefined && v.upstream !== 'http1' && v.upstream !== 'h2c') problems.push(`${at}/upstream: http1 or h2c`);
    if (v.upstream !== undefined && s.service === undefined) problems.push(`${at}/upstream: needs the scenario's service`);
    if (via === 'gateway' && v.upstream === undefined && s.service !== 'grpc' && typeof s.route?.path !== 'string')
      problems.push(`${at}: a gateway variant without upstream serves /route, which is missing`);
    if (via !== 'gateway' && s.service !== 'grpc') problems.push(`${at}/via: ${via} needs "service": "grpc"`);
    if (s.service === 'grpc' && v.protocol !== 'h2c') problems.push(`${at}/protocol: gRPC calls are loaded over h2c`);
    if (s.service === 'grpc' && v.upstream === 'http1') problems.push(`${at}/upstream: gRPC needs an HTTP/2 upstream (h2c)`);
    if (v.call !== undefined && (s.service !== 'grpc' || !(v.call in GRPC_PATHS))) problems.push(`${at}/call: unary or server-stream, in a grpc service`);
  }
  if (s.route !== undefined && (typeof s.route.path !== 'string' || !s.route.path.startsWith('/'))) problems.push('/route/path: must start with "/"');
  for (const [i, t] of (s.targets ?? []).entries()) {
    for (const k of ['variant', 'reference'] as const) if (!s.variants?.some((v) => v.id === t[k])) problems.push(`/targets/${i}/${k}: must name a variant`);
    if (!['throughput', 'p99', 'cpu'].includes(t.metric)) problems.push(`/targets/${i}/metric: throughput, p99 or cpu`);
    if ((t.min === undefined) === (t.max === undefined)) problems.push(`/targets/${i}: exactly one of min, max`);
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

/** The upstream services a scenario needs, keyed by stub kind (h2-stub.ts), started once and shared by every run. */
type StubKind = 'grpc' | 'http1' | 'h2c';
type Stubs = Map<StubKind, { child: ChildProcess; port: number }>;

function stubKindOf(s: H2Scenario, v: H2Variant): StubKind | null {
  if (s.service === 'grpc') return 'grpc';
  return v.upstream ?? null;
}

async function startStub(kind: StubKind, plan: CpuPlan): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const out = tail();
  // pinned with the load generator, like the proxy-mode stub: the proxy's CPU is measured without it
  const child = spawnNode([distScript('h2-stub.js'), '--kind', kind, '--port', String(port)], plan.loaderCpus, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => out.push(d));
  child.stderr?.on('data', (d: Buffer) => out.push(d));
  try {
    await waitReady(child, { port }, READY_TIMEOUT_MS, () => `${kind} stub output:\n${out.text()}`);
  } catch (err) {
    await stopProcess(child, 1000);
    throw err;
  }
  return { child, port };
}

function gatewayConfig(
  s: H2Scenario,
  v: H2Variant,
  ports: { port: number; adminPort: number; upstreamPort: number | null },
  cert: { cert: string; key: string },
): Record<string, unknown> {
  const listener =
    v.protocol === 'h1'
      ? {}
      : v.protocol === 'h2c'
        ? { http2: 'h2c', http2Limits: { maxConcurrentStreams: 1000 } }
        : { tls: { cert: cert.cert, key: cert.key }, http2: v.protocol === 'h2-tls' };
  const upstreamProtocol = s.service === 'grpc' ? 'h2c' : v.upstream;
  return {
    server: { host: '127.0.0.1', port: ports.port, workers: 0, ...listener },
    admin: { enabled: true, host: '127.0.0.1', port: ports.adminPort },
    logging: { level: 'warn', accessLog: false },
    ...(upstreamProtocol !== undefined && ports.upstreamPort !== null
      ? {
          upstreams: { svc: { targets: [`http://127.0.0.1:${ports.upstreamPort}`], protocol: upstreamProtocol } },
          routes: [{ path: '/*', upstream: 'svc' }],
        }
      : {
          routes: [
            { path: s.route!.path, methods: ['GET'], response: { status: s.route!.status ?? 200, headers: s.route!.headers ?? {}, body: s.route!.body } },
          ],
        }),
  };
}

/** The request a variant is loaded with (and verified with before timing). */
function requestOf(s: H2Scenario, v: H2Variant): { path: string; method: 'GET' | 'POST'; headers: Record<string, string>; body?: Buffer } {
  if (s.service === 'grpc') {
    return { path: GRPC_PATHS[v.call ?? 'unary'], method: 'POST', headers: { 'content-type': 'application/grpc', te: 'trailers' }, body: GRPC_REQUEST };
  }
  return { path: stubKindOf(s, v) !== null ? '/api/item' : s.route!.path, method: 'GET', headers: {} };
}

function expectedAnswer(s: H2Scenario, v: H2Variant): H2Expected {
  if (s.service === 'grpc') {
    const n = (v.call ?? 'unary') === 'unary' ? 1 : STREAM_MESSAGES;
    return { status: 200, grpcStatus: '0', body: Buffer.concat(Array.from({ length: n }, () => GRPC_REPLY)) };
  }
  if (stubKindOf(s, v) !== null) return { status: 200, body: UPSTREAM_BODY };
  return { status: s.route!.status ?? 200 };
}

/** `--only a,b`: those variant ids (the baseline always runs: the comparisons need it). */
function selectVariants(s: H2Scenario, only: string[]): H2Variant[] {
  const wanted = new Set(only.flatMap((o) => o.split(',')).filter((x) => x !== ''));
  if (wanted.size === 0) return s.variants;
  const unknown = [...wanted].filter((id) => !s.variants.some((v) => v.id === id));
  if (unknown.length > 0) throw new Error(`--only: ${unknown.join(', ')} not a variant of ${s.name} (variants: ${s.variants.map((v) => v.id).join(', ')})`);
  return s.variants.filter((v) => wanted.has(v.id) || v.id === s.baselineVariant);
}

function caveatsOf(s: H2Scenario, variants: H2Variant[], plan: CpuPlan, skipped: Map<string, string>): string[] {
  const out = [
    plan.note,
    ...[...skipped].map(([id, why]) => `${id} skipped: ${why}.`),
    `load generator: h2load (${spawnSync('h2load', ['--version'], { encoding: 'utf8' }).stdout.trim().split('\n')[0]}), one thread; ` +
      'HTTP/1.1 variants use --h1 with one request in flight per connection; h2 variants use `streams` concurrent streams per connection.',
  ];
  if (variants.some((v) => v.protocol === 'h1-tls' || v.protocol === 'h2-tls')) {
    out.push(
      'TLS: self-signed P-256 certificate, TLS 1.3 (what h2load and Node negotiate by default); connections are opened once per run, so the handshake cost is amortised: this measures per-request crypto and framing, not handshakes.',
    );
  }
  if (s.service !== undefined) {
    out.push(
      'the upstream service (scripts/scenario/h2-stub.ts, fixed answers) runs pinned with the load generator; CPU µs/req is the measured process tree only: ' +
        "the gateway's, nginx's (master + 1 worker), or for `direct` the service's own.",
    );
  }
  if (s.service === 'grpc') {
    out.push(
      `gRPC: one request per stream (h2load), a 12-byte message; a server-streaming call answers ${STREAM_MESSAGES} messages and counts as one request. ` +
        'h2load counts HTTP 200 as success and does not read grpc-status: each contestant first answers one call of its kind with grpc-status 0 and the exact bytes (verify before timing).',
    );
  }
  if (variants.some((v) => (v.via ?? 'gateway') === 'nginx')) {
    out.push(
      'nginx: 1 worker process (plus its idle master, counted in CPU/RSS), `listen … http2` and `grpc_pass` with upstream keepalive 64; not a Node process.',
    );
  }
  out.push("latency percentiles come from h2load's per-request log (requests started after the warmup), not from a CO-corrected open loop.");
  if (availableParallelism() <= 2) out.push(`${availableParallelism()}-core machine: absolute numbers are far below a server's, ratios are what transfer.`);
  return out;
}

export async function runH2LoadScenario(opts: RunOptions): Promise<ScenarioRun> {
  const { scenario, hash } = loadH2Scenario(opts.scenario);
  if (!hasH2load()) {
    throw new Error(`scenario ${scenario.name} skipped: h2load not found (Debian/Ubuntu: apt-get install nghttp2-client). autocannon cannot load HTTP/2.`);
  }
  if (!existsSync(GATEWAY_CLI)) throw new Error('not built (run `npm run build`): missing dist/core/cli.js');
  const repetitions = opts.repetitions ?? scenario.repetitions;
  // a request count (h2load -n) has no warm-up: h2load's --warm-up-time works with a duration only
  const amount = opts.amount;
  const warmupS = amount !== undefined ? 0 : (opts.warmupS ?? scenario.warmupS);
  const durationS = opts.durationS ?? scenario.load.durationS;
  const skipped = new Map<string, string>();
  const selected = selectVariants(scenario, opts.only ?? []).filter((v) => {
    const why = (v.via ?? 'gateway') === 'nginx' ? peerUnavailable('nginx') : null;
    if (why !== null) skipped.set(v.id, why);
    return why === null;
  });
  const plan = planCpus(opts.pin === false);
  const loadBefore = loadavg();
  const startedAt = new Date().toISOString();
  const work = mkdtempSync(join(tmpdir(), `scenario-${scenario.name}-`));
  const variants: VariantSpec[] = selected.map((v) => {
    const via = v.via ?? 'gateway';
    return via === 'nginx'
      ? { id: v.id, kind: 'peer', peer: 'nginx' }
      : via === 'direct'
        ? { id: v.id, kind: 'baseline' }
        : { id: v.id, kind: 'gateway', workers: 0 };
  });
  const runs: RunResult[] = [];
  const checks = new Map<string, AnswerCheck>();
  const verbose = opts.progress !== false;
  const etaPlan = { variants: variants.length, repetitions, warmupS, durationS: amount !== undefined ? undefined : durationS };
  const total = repetitions * variants.length;
  if (verbose)
    process.stderr.write(
      `scenario ${scenario.name}: ${variants.length} variants × ${repetitions} repetitions, ETA ${formatDuration(estimateSeconds(etaPlan))}\n`,
    );
  const stubs: Stubs = new Map();
  const t0 = performance.now();
  try {
    const cert = makeCert(work);
    for (const v of selected) {
      const kind = stubKindOf(scenario, v);
      if (kind !== null && !stubs.has(kind)) stubs.set(kind, await startStub(kind, plan));
    }
    let order = 0;
    for (let rep = 0; rep < repetitions; rep++) {
      // Interleaved (a, b, c, a, …) so drift on the machine hits every variant alike.
      for (const v of selected) {
        order++;
        if (skipped.has(v.id)) continue;
        const run = await runVariant(scenario, v, rep, order - 1, { plan, work, cert, warmupS, durationS, amount, stubs, checks });
        const left = remainingSeconds(etaPlan, order, total, (performance.now() - t0) / 1000);
        const eta = order < total ? ` — ETA ${formatDuration(left)}` : '';
        if (run === null) {
          skipped.set(v.id, `answered differently: ${checks.get(v.id)?.mismatch ?? ''}`);
          for (let i = runs.length - 1; i >= 0; i--) if (runs[i]!.variant === v.id) runs.splice(i, 1);
          if (verbose) process.stderr.write(`[${order}/${total}] ${v.id} #${rep + 1}: not timed (${skipped.get(v.id)})${eta}\n`);
          continue;
        }
        runs.push(run);
        const cpu = cpuUsPerRequest(run);
        if (verbose)
          process.stderr.write(
            `[${order}/${total}] ${v.id} #${rep + 1}: ${Math.round(run.rps)} req/s, p99 ${run.latencyMs.p99.toFixed(2)} ms${cpu !== null ? `, ${cpu.toFixed(1)} CPU µs/req` : ''}${eta}\n`,
          );
      }
    }
  } finally {
    for (const stub of stubs.values()) await stopProcess(stub.child, 2000);
    rmSync(work, { recursive: true, force: true });
  }
  if (runs.length === 0) throw new Error(`no variant could be timed:\n  ${[...skipped].map(([id, why]) => `${id}: ${why}`).join('\n  ')}`);
  const env = describeEnvironment(plan, loadBefore);
  const ids = variants.map((v) => v.id);
  const results: Results = {
    schemaVersion: 1,
    scenario: { name: scenario.name, description: scenario.description, hash, definition: scenario as unknown as Scenario, routeCount: 1 },
    options: { repetitions, durationS: amount !== undefined ? null : durationS, amount: amount ?? null, warmupS, only: opts.only ?? [], seed: scenario.seed },
    command: opts.command ?? `npm run scenario -- ${scenario.name}`,
    startedAt,
    finishedAt: new Date().toISOString(),
    environment: env,
    variants,
    runs,
    summary: summarize(ids, runs, scenario.baselineVariant, scenario.seed),
    statistics: statisticsInfo(scenario.seed),
    caveats: caveatsOf(scenario, selected, plan, skipped),
    ...(scenario.targets !== undefined ? { targets: evaluateTargets(scenario.targets, runs, scenario.seed, skipped) } : {}),
    ...(checks.size > 0 ? { answerChecks: [...checks.values()] } : {}),
    ...(skipped.size > 0 ? { skipped: [...skipped].map(([variant, reason]) => ({ variant, reason })) } : {}),
  };
  const problems = validateResults(results);
  if (problems.length > 0) throw new Error(`results do not match their schema:\n  ${problems.join('\n  ')}`);
  const dir = await saveRun(results, { ...(opts.outDir !== undefined ? { outDir: opts.outDir } : {}), publish: opts.publish === true });
  return { dir, results };
}

interface VariantEnv {
  plan: CpuPlan;
  work: string;
  cert: { cert: string; key: string };
  warmupS: number;
  durationS: number;
  /** requests per run instead of the duration */
  amount: number | undefined;
  stubs: Stubs;
  checks: Map<string, AnswerCheck>;
}

/** Starts the contestant a variant loads; `direct` starts nothing (the shared stub is measured). */
async function startContestant(
  s: H2Scenario,
  v: H2Variant,
  order: number,
  env: VariantEnv,
): Promise<{ port: number; pid: number; child: ChildProcess | null; diagDir: string | null }> {
  const stub = stubKindOf(s, v);
  const upstream = stub !== null ? env.stubs.get(stub)! : null;
  const via = v.via ?? 'gateway';
  if (via === 'direct') return { port: upstream!.port, pid: upstream!.child.pid!, child: null, diagDir: null };
  const port = await freePort();
  const output = tail();
  let child: ChildProcess;
  let adminPort: number | undefined;
  let diagDir: string | null = null;
  if (via === 'nginx') {
    child = spawnPeer('nginx', {
      port,
      upstreamPort: upstream!.port,
      prefixes: [],
      cpus: env.plan.gatewayCpus,
      dir: join(env.work, 'peer', String(order)),
      nodeArgs: [],
      spawn: { stdio: ['ignore', 'pipe', 'pipe'] },
      grpc: true,
    });
  } else {
    adminPort = await freePort();
    const file = join(env.work, `gateway-${order}.json`);
    writeFileSync(file, JSON.stringify(gatewayConfig(s, v, { port, adminPort, upstreamPort: upstream?.port ?? null }, env.cert)));
    diagDir = join(env.work, 'diag', String(order));
    const preload = ['--import', pathToFileURL(distScript('preload-diagnostics.js')).href];
    child = spawnNode([...preload, GATEWAY_CLI, '--config', file], env.plan.gatewayCpus, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SCENARIO_DIAG_DIR: diagDir, NODE_ENV: 'production' },
      cwd: ROOT,
    });
  }
  child.stdout?.on('data', (d: Buffer) => output.push(d));
  child.stderr?.on('data', (d: Buffer) => output.push(d));
  try {
    await waitReady(child, { port, ...(adminPort !== undefined ? { adminPort } : {}) }, READY_TIMEOUT_MS, () => `variant ${v.id} output:\n${output.text()}`);
  } catch (err) {
    await stopProcess(child, 1000);
    throw err;
  }
  return { port, pid: child.pid!, child, diagDir };
}

/** One measured run; null when the contestant answered the check request wrongly (not timed). */
async function runVariant(s: H2Scenario, v: H2Variant, repetition: number, order: number, env: VariantEnv): Promise<RunResult | null> {
  const contestant = await startContestant(s, v, order, env);
  try {
    const req = requestOf(s, v);
    const check = await checkH2Answer(v.id, { protocol: v.protocol, port: contestant.port, ...req }, expectedAnswer(s, v));
    if (!env.checks.has(v.id) || !check.identical) env.checks.set(v.id, check);
    if (!check.identical) return null;
    const connections = v.connections ?? s.load.connections;
    const streams = isH2(v.protocol) ? (v.streams ?? 1) : 1;
    const logFile = join(env.work, `h2load-${order}.log`);
    const url = `${v.protocol === 'h1' || v.protocol === 'h2c' ? 'http' : 'https'}://127.0.0.1:${contestant.port}${req.path}`;
    const length = env.amount !== undefined ? ['-n', String(env.amount)] : ['-D', h2loadDuration(env.durationS)];
    const args = ['-t', '1', '-c', String(connections), '-m', String(streams), ...length, '--log-file', logFile];
    if (env.warmupS > 0) args.push('--warm-up-time', h2loadDuration(env.warmupS));
    if (!isH2(v.protocol)) args.push('--h1');
    for (const [name, value] of Object.entries(req.headers)) args.push('-H', `${name}: ${value}`);
    if (req.body !== undefined) {
      const data = join(env.work, 'request.bin');
      writeFileSync(data, req.body);
      args.push('-d', data);
    }
    args.push(url);
    const sampler = new ProcSampler(contestant.pid);
    const startedAt = new Date().toISOString();
    const t0 = Date.now();
    // The contestant's CPU is sampled over the measured window only (h2load's warmup runs first).
    const warm = setTimeout(() => sampler.start(), env.warmupS * 1000);
    const r = await runH2load(args, env.plan, logFile, env.warmupS);
    clearTimeout(warm);
    const usage = sampler.stop();
    const diagnostics = contestant.diagDir !== null ? readDiagnostics(contestant.diagDir, t0 + env.warmupS * 1000, Date.now()) : null;
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
    if (contestant.child !== null) await stopProcess(contestant.child, 5000);
  }
}
