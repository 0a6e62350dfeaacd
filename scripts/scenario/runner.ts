import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import cliProgress from 'cli-progress';
import type { Scenario } from '../../scenarios/schema.js';
import { answerSpec, checkAnswers, sampleAnswers, type AnswerCheck, type AnswerSpec } from './answer-check.js';
import { gatewayCliFor } from './builds.js';
import { capacitySpec, giveUpMs, judgeProbe, probeSeconds, searchCapacity, summarizeCapacity, type CapacitySearch, type CapacitySpec } from './capacity.js';
import { readDiagnostics } from './diagnostics.js';
import { checkDrift, DEFAULT_DRIFT_LIMIT, driftControl, driftOfRuns } from './drift.js';
import { describeEnvironment } from './environment.js';
import { estimateSeconds, formatDuration, remainingSeconds, type EtaPlan } from './eta.js';
import { buildGatewayConfig, writeNoopPlugins } from './gateway-config.js';
import { isH2LoadScenario, runH2LoadScenario } from './h2load.js';
import { SATURATED_PCT, trafficInfo } from './interpret.js';
import { loadScenario, type LoadedScenario } from './load-scenario.js';
import { Loader, type LoaderJob } from './loader.js';
import { openLoopBinary } from './open-loop-c.js';
import { saveRun } from './output.js';
import { distScript, GATEWAY_CLI, ROOT } from './paths.js';
import { isPeerName, peerIsNode, peerScript, peerUnavailable, routePrefixes, spawnPeer, type NodePeer, type PeerName } from './peers/index.js';
import { ProcSampler } from './proc-sampler.js';
import { freePort, planCpus, spawnNode, stopProcess, tail, waitReady, type CpuPlan } from './processes.js';
import type { Calibration, Environment, Results, RunResult } from './results.js';
import { statisticsInfo, validateResults } from './results.js';
import { stubBody } from './stub-body.js';
import { summarize } from './summarize.js';
import { evaluateTargets } from './targets.js';
import { buildAnswerTable, buildRequests, expandMix, type Answer, type LoadRequest } from './traffic.js';
import { expandMatrix, filterVariants, parseOnly, schedule, type VariantSpec } from './variants.js';
import { wrkCanRun } from './wrk.js';

/** A loader process above this share of one core is the bottleneck: the run measures autocannon, not the gateway. */
export const LOADER_BOUND_PCT = SATURATED_PCT;
const READY_TIMEOUT_MS = 20_000;

export interface RunOptions {
  /** scenario name (scenarios/<name>.json) or a path to a .json file */
  scenario: string;
  repetitions?: number;
  durationS?: number;
  /**
   * measure a fixed request count per run instead of a duration (overrides both): a run on a loaded machine then
   * ends when its requests are answered, never with an empty measurement
   */
  amount?: number;
  warmupS?: number;
  /** `--only` arguments, e.g. ["router=radix,hybrid"] */
  only?: string[];
  /**
   * reports root. Default: the git-ignored reports/runs/, the report in <out>/<timestamp>-<scenario>/.
   * With publish: reports/, the report in <out>/<scenario>/<timestamp>/ (scripts/scenario/output.ts).
   */
  outDir?: string;
  /** the committed reference layout: also copy to <out>/latest/<scenario>/ and refresh <out>/index.md (default false) */
  publish?: boolean;
  pin?: boolean;
  /** progress bar on a TTY, one line per run otherwise; false = silent */
  progress?: boolean;
  /** the command line to print under "how to reproduce" */
  command?: string;
  /** fixed request rate (req/s) for every run; overrides the scenario's load.rate / load.rateOfMax */
  rate?: number;
  /** `--build a,b`: run every gateway variant once per build (scripts/scenario/builds.ts), the first the reference */
  builds?: string[];
  /** capacity mode (capacity.ts) for any scenario: true, or overrides of the scenario's `capacity` block */
  capacity?: boolean | Partial<CapacitySpec>;
  /** fixed-rate windows also write HdrHistogram interval logs into the report's hdr/ folder (hdr-log.ts) */
  hdrLog?: boolean;
}

export interface ScenarioRun {
  dir: string;
  results: Results;
}

function caveatsFor(
  env: Environment,
  plan: CpuPlan,
  variants: VariantSpec[],
  scenario: Scenario,
  rate: number | undefined,
  skipped: Map<string, string>,
): string[] {
  const out: string[] = [plan.note];
  for (const [id, why] of skipped) out.push(`${id} skipped: ${why}.`);
  if (variants.some((v) => v.kind === 'peer')) {
    out.push('peers run with their defaults plus keep-alive to the upstream stub (configs and tuning notes in scripts/scenario/peers/).');
  }
  if (variants.some((v) => v.kind === 'peer' && v.peer === 'nginx')) {
    out.push('nginx: 1 worker process (plus its idle master, counted in CPU/RSS), upstream keepalive 64; no GC / event-loop diagnostics (not a Node process).');
  }
  if (variants.some((v) => v.kind === 'peer' && v.peer === 'haproxy')) {
    out.push('HAProxy: 1 thread, http-reuse always, logging off (scripts/scenario/peers/haproxy.cfg says how it was tuned); not a Node process.');
  }
  if (variants.some((v) => v.kind === 'peer' && v.peer === 'caddy')) {
    out.push(
      'Caddy: reverse_proxy with keep-alive, GOMAXPROCS from the one pinned CPU, logs discarded (scripts/scenario/peers/Caddyfile); not a Node process.',
    );
  }
  if (variants.some((v) => v.kind === 'peer' && v.peer === 'floor')) {
    out.push(
      'floor: a floor, not a product (scripts/scenario/peers/floor-proxy.ts): a Node proxy on net sockets, one upstream connection per client connection, that parses each request head and response framing and adds X-Forwarded-For, nothing else.',
    );
  }
  const load = scenario.load;
  const wrk =
    load.engine !== 'autocannon' &&
    wrkCanRun({ pipelining: load.pipelining, ...(rate !== undefined ? { rate } : {}), ...(load.amount !== undefined ? { amount: load.amount } : {}) });
  if (load.engine === 'wrk' && !wrk) out.push('load engine: wrk was asked for but is not installed or cannot run this load shape; autocannon ran instead.');
  out.push(
    wrk
      ? 'load engine: wrk (C, 1 thread, Lua replay of the request mix); its CPU is the loader CPU.'
      : rate !== undefined
        ? load.pipelining === 1 && openLoopBinary() !== null
          ? "load engine: open-loop generator in C (scripts/scenario/openloop.c, epoll, latency from each request's due time); its CPU is the loader CPU."
          : "load engine: open-loop generator in Node (no C compiler here; latency from each request's due time). It saturates its core near 20k req/s on a 2-core box: check the loader-bound column."
        : 'load engine: autocannon (programmatic); it saturates its own core near the bare-server rate on this class of machine, so check the loader-bound column.',
  );
  if (env.cores <= 2) {
    out.push(
      `${env.cores}-core machine: the gateway has ${Math.max(1, env.cores - 1)} core(s); absolute numbers are far below a server's, ratios are what transfer.`,
    );
  }
  if (env.loadavgBefore[0]! > env.cores * 0.5) {
    out.push(`load average before the run was ${env.loadavgBefore[0]!.toFixed(2)} on ${env.cores} cores: other work was competing for the CPUs.`);
  }
  const maxWorkers = Math.max(0, ...variants.map((v) => v.workers ?? 0));
  if (maxWorkers > 0 && plan.gatewayCpus.length > 0 && maxWorkers > plan.gatewayCpus.length) {
    out.push(`variants with ${maxWorkers} workers share ${plan.gatewayCpus.length} gateway CPU(s): they measure contention, not scaling.`);
  }
  if (scenario.mode === 'proxy') out.push("proxy mode: the upstream stub shares the load generator's CPU.");
  if (rate !== undefined) {
    out.push(
      `fixed rate (${rate} req/s, open loop): throughput is set by the load generator, compare latency. Request i is due at ` +
        't0 + i/rate and its latency runs from that due time (coordinated omission corrected, the wrk2 method), so a stall ' +
        'counts against every request that should have been sent during it. Requests are issued from a 1 ms timer over an ' +
        "undici Pool with the scenario's connection count (queueing in the pool counts as latency). autocannon is not used " +
        'for fixed rates: its rate limit is per connection and per second (bursts, then idles) and its latency is not CO-corrected.',
    );
  }
  return out;
}

/** Progress on stderr: a bar on a TTY, one line per finished run otherwise; both carry an ETA updated per run. */
class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private timer: NodeJS.Timeout | null = null;
  private done = 0;
  private t0 = 0;
  private currentStart = 0;

  constructor(
    private readonly plan: EtaPlan,
    private readonly total: number,
    private readonly mode: 'bar' | 'lines' | 'off',
  ) {}

  private eta(): string {
    const elapsed = this.done > 0 ? (performance.now() - this.t0) / 1000 : 0;
    return formatDuration(remainingSeconds(this.plan, this.done, this.total, elapsed));
  }

  start(): void {
    this.t0 = performance.now();
    if (this.mode !== 'bar') return;
    this.bar = new cliProgress.SingleBar(
      { format: ' {bar} {value}/{total} runs | ETA {myEta} | {label}', hideCursor: true, stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(this.total, 0, { label: 'starting', myEta: this.eta() });
    this.timer = setInterval(() => this.tick(), 1000);
  }

  private tick(): void {
    // between updates the ETA counts down through the current run
    const inRun = (performance.now() - this.currentStart) / 1000;
    const left = Math.max(0, remainingSeconds(this.plan, this.done, this.total, this.done > 0 ? (performance.now() - this.t0) / 1000 - inRun : 0) - inRun);
    this.bar?.update({ myEta: formatDuration(left) });
  }

  begin(label: string): void {
    this.currentStart = performance.now();
    this.bar?.update({ label });
  }

  end(line: string): void {
    this.done++;
    this.bar?.update(this.done, { myEta: this.eta() });
    if (this.mode === 'lines') process.stderr.write(`${line}${this.done < this.total ? ` — ETA ${this.eta()}` : ''}\n`);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.bar?.stop();
  }
}

interface Context {
  loaded: LoadedScenario;
  plan: CpuPlan;
  work: string;
  loader: Loader;
  requests: LoadRequest[];
  answersFile: string;
  upstreamPort?: number;
  /** proxy mode with routeOptionSets: a second stub, what `stub-mirror` points at */
  mirrorPort?: number;
  durationS: number | undefined;
  amount: number | undefined;
  warmupS: number;
  /** fixed rate of every measured run (undefined = as fast as possible) */
  rate: number | undefined;
  answers: Record<string, Answer>;
  /** the fixed requests each variant must answer correctly before it is measured (answer-check.ts) */
  answerSpec: AnswerSpec;
  checks: Map<string, AnswerCheck>;
  /** `--hdr-log`: where fixed-rate windows write their HdrHistogram logs (copied into the report), else null */
  hdrDir: string | null;
}

async function startVariant(
  ctx: Context,
  variant: VariantSpec,
  order: number,
): Promise<{ child: ChildProcess; port: number; diagDir: string; output: ReturnType<typeof tail> }> {
  const port = await freePort();
  const diagDir = join(ctx.work, 'diag', String(order));
  mkdirSync(diagDir, { recursive: true });
  const output = tail();
  const env = { ...process.env, SCENARIO_DIAG_DIR: diagDir, NODE_ENV: 'production' };
  const preload = ['--import', pathToFileURL(distScript('preload-diagnostics.js')).href];
  let child: ChildProcess;
  let adminPort: number | undefined;
  if (variant.kind === 'peer') {
    if (ctx.upstreamPort === undefined) throw new Error(`peer ${variant.peer}: peers need a proxy-mode scenario`);
    if (!isPeerName(variant.peer ?? '')) throw new Error(`unknown peer "${variant.peer}"`);
    const name = variant.peer as Parameters<typeof spawnPeer>[0];
    child = spawnPeer(name, {
      port,
      upstreamPort: ctx.upstreamPort,
      prefixes: routePrefixes(ctx.loaded.routes.map((r) => r.path)),
      cpus: ctx.plan.gatewayCpus,
      dir: join(ctx.work, 'peer', String(order)),
      nodeArgs: peerIsNode(name) ? preload : [],
      spawn: { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: ROOT },
    });
  } else if (variant.kind === 'baseline') {
    const args = [...preload, distScript('baseline-server.js'), '--port', String(port), '--answers', ctx.answersFile];
    if (ctx.upstreamPort !== undefined) args.push('--upstream-port', String(ctx.upstreamPort));
    child = spawnNode(args, ctx.plan.gatewayCpus, { stdio: ['ignore', 'pipe', 'pipe'], env });
  } else {
    adminPort = await freePort();
    const config = buildGatewayConfig(
      ctx.loaded.scenario,
      ctx.loaded.routes,
      variant,
      {
        port,
        adminPort,
        ...(ctx.upstreamPort !== undefined ? { upstreamPort: ctx.upstreamPort } : {}),
        ...(ctx.mirrorPort !== undefined ? { mirrorPort: ctx.mirrorPort } : {}),
      },
      join(ctx.work, 'plugins', String(variant.plugins ?? 0)),
    );
    if ((variant.plugins ?? 0) > 0) writeNoopPlugins(join(ctx.work, 'plugins', String(variant.plugins)), variant.plugins!);
    const file = join(ctx.work, `gateway-${order}.json`);
    writeFileSync(file, JSON.stringify(config, null, 2));
    child = spawnNode([...preload, gatewayCliFor(variant.build), '--config', file], ctx.plan.gatewayCpus, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
      cwd: ROOT,
    });
  }
  child.stdout?.on('data', (d: Buffer) => output.push(d));
  child.stderr?.on('data', (d: Buffer) => output.push(d));
  try {
    await waitReady(
      child,
      { port, ...(adminPort !== undefined ? { adminPort } : {}) },
      READY_TIMEOUT_MS,
      () => `variant ${variant.id} output:\n${output.text()}`,
    );
  } catch (err) {
    await stopProcess(child, 1000);
    throw err;
  }
  return { child, port, diagDir, output };
}

function job(ctx: Context, port: number, measured: boolean): LoaderJob {
  const load = ctx.loaded.scenario.load;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: load.connections,
    pipelining: load.pipelining,
    requests: ctx.requests,
    engine: load.engine,
    // the warm-up runs at the fixed rate too: a full-speed warm-up would leave GC debt paid inside the window
    ...(ctx.rate !== undefined ? { rate: ctx.rate } : {}),
    ...(load.timeoutS !== undefined ? { timeoutS: load.timeoutS } : {}),
    ...(measured ? (ctx.amount !== undefined ? { amount: ctx.amount } : { durationS: ctx.durationS! }) : { durationS: ctx.warmupS }),
  };
}

/** A variant answered the fixed requests differently: it is reported (results.json `skipped`), not timed. */
export class WrongAnswers extends Error {
  constructor(
    readonly variant: string,
    readonly reason: string,
  ) {
    super(`variant ${variant} ${reason}`);
    this.name = 'WrongAnswers';
  }
}

/** Verify before timing: the fixed requests, compared (answer-check.ts); throws WrongAnswers on a difference. */
export async function verifyAnswers(ctx: Pick<Context, 'answerSpec' | 'checks'>, variant: string, port: number): Promise<void> {
  const check = await checkAnswers(variant, port, ctx.answerSpec);
  if (!ctx.checks.has(variant) || !check.identical) ctx.checks.set(variant, check);
  if (!check.identical) throw new WrongAnswers(variant, `answered differently: ${check.mismatch}`);
}

type Started = Awaited<ReturnType<typeof startVariant>>;

/**
 * One measured window on a running variant: the loader runs `load` while the process sampler watches the
 * variant's process tree; the outcome becomes a RunResult with its warnings. `rate`: the fixed rate offered, if any.
 */
async function measureWindow(
  ctx: Context,
  variant: VariantSpec,
  started: Started,
  load: LoaderJob,
  at: { repetition: number; order: number },
): Promise<{ run: RunResult; abandoned: boolean }> {
  const { child, diagDir, output } = started;
  const sampler = new ProcSampler(child.pid!);
  const startedAt = new Date().toISOString();
  sampler.start();
  const outcome = await ctx.loader.run(load);
  const usage = sampler.stop();
  if (child.exitCode !== null || child.signalCode !== null) {
    throw new Error(`variant ${variant.id} exited during the run\n${output.text()}`);
  }
  const diagnostics = readDiagnostics(diagDir, outcome.startMs, outcome.endMs);
  const r = outcome.result;
  const loaderCpuPct = outcome.wallMs > 0 ? (outcome.cpuUs / 1000 / outcome.wallMs) * 100 : 0;
  const bound = loaderCpuPct >= LOADER_BOUND_PCT;
  const warnings: string[] = [];
  if (bound) warnings.push(`load generator at ${loaderCpuPct.toFixed(0)}% of its core: loader-bound, throughput is a lower bound`);
  if (r.errors > 0 || r.timeouts > 0) warnings.push(`${r.errors} errors, ${r.timeouts} timeouts`);
  if (r.status['5xx'] > 0) warnings.push(`${r.status['5xx']} responses were 5xx`);
  if (r.requests === 0) warnings.push('no request completed');
  if (r.abandoned === true) warnings.push(`the generator gave up: requests fell more than ${load.giveUpMs} ms behind the rate ${load.rate}`);
  else if (load.rate !== undefined && r.durationS > 0 && r.requests / r.durationS < load.rate * 0.95) {
    warnings.push(
      `achieved ${Math.round(r.requests / r.durationS)} req/s, below the fixed rate ${load.rate}: the variant could not keep up, its latency is not at that rate`,
    );
  }
  const nodeProcess = variant.kind !== 'peer' || peerIsNode(variant.peer as PeerName);
  if (diagnostics === null && nodeProcess) warnings.push('no GC / event-loop diagnostics from the process');
  const run: RunResult = {
    variant: variant.id,
    repetition: at.repetition,
    order: at.order,
    startedAt,
    durationS: r.durationS,
    requests: r.requests,
    rps: r.durationS > 0 ? r.requests / r.durationS : 0,
    bytesPerS: r.durationS > 0 ? r.bytes / r.durationS : 0,
    latencyMs: r.latency,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    status: r.status,
    gateway: usage.samples > 0 ? usage : null,
    diagnostics,
    loader: { cpuPct: loaderCpuPct, bound },
    warnings,
  };
  return { run, abandoned: r.abandoned === true };
}

/** `--hdr-log`: where a fixed-rate window's HdrHistogram log goes (the report's hdr/ folder), tagged variant@rate. */
function hdrLogFor(ctx: Context, variant: VariantSpec, repetition: number, rate: number | undefined): LoaderJob['hdrLog'] | undefined {
  if (ctx.hdrDir === null || rate === undefined) return undefined;
  const name = `${variant.id.replace(/[=,/]/g, '-')}-r${repetition + 1}-${rate}rps.hlog`;
  return { file: join(ctx.hdrDir, name), intervalS: 1, tag: `${variant.id}@${rate}` };
}

async function runOne(ctx: Context, variant: VariantSpec, repetition: number, order: number): Promise<RunResult> {
  const started = await startVariant(ctx, variant, order);
  try {
    await verifyAnswers(ctx, variant.id, started.port);
    if (ctx.warmupS > 0) await ctx.loader.run(job(ctx, started.port, false));
    const hdrLog = hdrLogFor(ctx, variant, repetition, ctx.rate);
    const load = { ...job(ctx, started.port, true), ...(hdrLog !== undefined ? { hdrLog } : {}) };
    return (await measureWindow(ctx, variant, started, load, { repetition, order })).run;
  } finally {
    await stopProcess(started.child, 5000);
  }
}

/**
 * Capacity mode: one search per variant and repetition (capacity.ts), interleaved like runs, on one process
 * each: started, verified, warmed up at the start rate, then probed rate after rate.
 */
async function searchOne(
  ctx: Context,
  spec: CapacitySpec,
  variant: VariantSpec,
  repetition: number,
  order: number,
): Promise<CapacitySearch & { capacityRun: RunResult }> {
  const started = await startVariant(ctx, variant, order);
  const load = ctx.loaded.scenario.load;
  const base = (rate: number): LoaderJob => ({
    url: `http://127.0.0.1:${started.port}`,
    connections: load.connections,
    pipelining: 1,
    requests: ctx.requests,
    engine: load.engine,
    rate,
    giveUpMs: giveUpMs(spec),
    ...(load.timeoutS !== undefined ? { timeoutS: load.timeoutS } : {}),
  });
  const runs = new Map<number, RunResult>();
  try {
    await verifyAnswers(ctx, variant.id, started.port);
    if (ctx.warmupS > 0) await ctx.loader.run({ ...base(spec.startRate), durationS: ctx.warmupS });
    const result = await searchCapacity(spec, async (rate) => {
      if (spec.probeWarmupS > 0) await ctx.loader.run({ ...base(rate), durationS: spec.probeWarmupS });
      const hdrLog = hdrLogFor(ctx, variant, repetition, rate);
      const m = await measureWindow(
        ctx,
        variant,
        started,
        { ...base(rate), durationS: spec.windowS, ...(hdrLog !== undefined ? { hdrLog } : {}) },
        { repetition, order },
      );
      runs.set(rate, m.run);
      return judgeProbe(spec, { rate, run: m.run, abandoned: m.abandoned });
    });
    // the run that stands for this search in the runs table: the probe at its capacity (or the lowest probed)
    const lowest = Math.min(...runs.keys());
    const capacityRun = runs.get(result.capacity) ?? runs.get(lowest)!;
    return { variant: variant.id, repetition, order, ...result, capacityRun };
  } finally {
    await stopProcess(started.child, 5000);
  }
}

async function startUpstreamStub(scenario: Scenario, plan: CpuPlan): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const stub = scenario.upstreamStub ?? { bodyBytes: 256, delayMs: 0 };
  const out = tail();
  const child = spawnNode(
    [distScript('upstream-stub.js'), '--port', String(port), '--body-bytes', String(stub.bodyBytes), '--delay-ms', String(stub.delayMs)],
    plan.loaderCpus,
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (d: Buffer) => out.push(d));
  child.stderr?.on('data', (d: Buffer) => out.push(d));
  await waitReady(child, { port }, READY_TIMEOUT_MS, () => `upstream stub output:\n${out.text()}`);
  return { child, port };
}

/**
 * rateOfMax: one full-speed run of the calibration variant (warmup + the scenario's measured duration), whose
 * throughput × fraction becomes the fixed rate of every measured run. One run, not a median: the fixed rate
 * only has to be "about half of the maximum", and the latency comparison is between variants at the same rate.
 */
async function calibrate(ctx: Context, variants: VariantSpec[], id: string | undefined, fraction: number, verbose: boolean): Promise<Calibration> {
  const variant = variants.find((v) => v.id === id);
  if (variant === undefined) throw new Error(`rateOfMax: calibration variant "${id}" is not among the variants to run`);
  const saved = ctx.rate;
  ctx.rate = undefined;
  try {
    const run = await runOne(ctx, variant, 0, 10_000);
    const rate = Math.max(1, Math.round(run.rps * fraction));
    if (verbose) process.stderr.write(`calibration: ${variant.id} at full speed ${Math.round(run.rps)} req/s → fixed rate ${rate} req/s (${fraction} ×)\n`);
    return { source: 'rateOfMax', variant: variant.id, maxRps: run.rps, fraction, rate, loaderBound: run.loader.bound };
  } finally {
    ctx.rate = saved;
  }
}

function checkBuilt(variants: VariantSpec[]): void {
  const needed = ['loader-child.js', 'preload-diagnostics.js', 'baseline-server.js', 'upstream-stub.js'].map(distScript);
  if (variants.some((v) => v.kind === 'gateway')) needed.push(GATEWAY_CLI);
  for (const v of variants) {
    if (v.kind === 'peer' && isPeerName(v.peer ?? '') && peerIsNode(v.peer as PeerName)) needed.push(peerScript(v.peer as NodePeer));
  }
  const missing = needed.filter((f) => !existsSync(f));
  if (missing.length > 0) throw new Error(`not built (run \`npm run build\`): missing ${missing.join(', ')}`);
}

/**
 * Any scenario as a before/after of builds: `build` joins the matrix, the first build becomes the reference where
 * the scenario's reference was a gateway variant, and targets naming gateway variants apply to the last build.
 * (Gateway ids gain the build first, as `build` is the first dimension: "server=own" → "build=<b>,server=own";
 * "baseline" and "peer=…" stay.) The report is filed as `<name>-builds` so it never replaces the scenario's own
 * latest report.
 */
export function withBuildDimension(scenario: Scenario, builds: string[]): Scenario {
  if (builds.length < 2) throw new Error(`--build needs two or more builds (got ${builds.join(',') || 'none'})`);
  if (scenario.matrix.build !== undefined) throw new Error(`${scenario.name} already has a build dimension`);
  const rename = (id: string, build: string): string => {
    if (id === 'gateway') return `build=${build}`;
    return id === 'baseline' || id.startsWith('peer=') ? id : `build=${build},${id}`;
  };
  return {
    ...scenario,
    name: `${scenario.name}-builds`,
    description: `${scenario.description} Run as a before/after of builds ${builds.join(' → ')} (\`--build\`).`,
    matrix: { ...scenario.matrix, build: builds },
    ...(scenario.baselineVariant !== undefined ? { baselineVariant: rename(scenario.baselineVariant, builds[0]!) } : {}),
    ...(scenario.targets !== undefined
      ? { targets: scenario.targets.map((t) => ({ ...t, variant: rename(t.variant, builds.at(-1)!), reference: rename(t.reference, builds.at(-1)!) })) }
      : {}),
  };
}

/** One progress line per search: its capacity, how it was found, and what the probe at it measured. */
function capacityLine(s: CapacitySearch, spec: CapacitySpec): string {
  const at = s.probes.find((p) => p.pass && p.rate === s.capacity);
  const bound = s.lowestFail === null ? `at least (no probe up to ${spec.maxRate} failed)` : s.capacity === 0 ? `none (fails at ${spec.minRate} req/s)` : '';
  return (
    `capacity ${s.capacity} req/s ${bound}`.trimEnd() +
    `${s.lowestFail !== null && s.capacity > 0 ? ` (fails at ${s.lowestFail})` : ''}, ${s.probes.length} probes${s.converged ? '' : ', not converged'}` +
    (at !== undefined ? `; at capacity p99 ${at.p99Ms.toFixed(2)} ms${at.cpuUsPerRequest !== null ? `, ${at.cpuUsPerRequest.toFixed(1)} CPU µs/req` : ''}` : '')
  );
}

function capacityCaveats(spec: CapacitySpec): string[] {
  return [
    `capacity mode: per variant and repetition, the highest fixed rate (open loop, the C generator, latency from each request's due time) ` +
      `at which p${spec.percentile} stays ≤ ${spec.objectiveMs} ms over a ${spec.windowS} s window (after ${spec.probeWarmupS} s at that rate, discarded), ` +
      `with no errors and ≥ 95% of the rate achieved; found by doubling from ${spec.startRate} req/s to a failing rate (at most ${spec.maxRate}), then bisecting ` +
      `until the bracket is within ${(spec.tolerance * 100).toFixed(0)}% (at most ${spec.maxProbes} probes). The generator gives up a probe once a request is ` +
      `${giveUpMs(spec)} ms late. In the tables below, each run is the probe at the variant's capacity: its req/s is the capacity, its latency and CPU per request are at it.`,
  ];
}

export async function runScenario(opts: RunOptions): Promise<ScenarioRun> {
  // `"mode": "h2"` scenarios (TLS / HTTP/2 client side) are loaded by h2load, not autocannon: see h2load.ts.
  if (isH2LoadScenario(opts.scenario)) return runH2LoadScenario(opts);
  const loaded = loadScenario(opts.scenario);
  const scenario = opts.builds !== undefined ? withBuildDimension(loaded.scenario, opts.builds) : loaded.scenario;
  const repetitions = opts.repetitions ?? scenario.repetitions;
  const warmupS = opts.warmupS ?? scenario.warmupS;
  const amount = opts.amount ?? (opts.durationS === undefined ? scenario.load.amount : undefined);
  const durationS = amount === undefined ? (opts.durationS ?? scenario.load.durationS) : undefined;

  const all = await expandMatrix(scenario);
  const reference = scenario.baselineVariant ?? (scenario.includeBaseline ? 'baseline' : all.find((v) => v.kind === 'gateway')?.id);
  if (reference !== undefined && !all.some((v) => v.id === reference)) {
    throw new Error(`baselineVariant "${reference}" is not a variant of ${scenario.name} (variants: ${all.map((v) => v.id).join(', ')})`);
  }
  const skipped = new Map<string, string>();
  const runnable = all.filter((v) => {
    const why = v.kind === 'peer' && isPeerName(v.peer ?? '') ? peerUnavailable(v.peer as Parameters<typeof peerUnavailable>[0]) : null;
    if (why !== null) skipped.set(v.id, why);
    return why === null;
  });
  const variants = filterVariants(runnable, parseOnly(opts.only ?? []), reference);
  checkBuilt(variants);
  // Other builds are prepared (checked out and compiled) before any measurement, never inside a run.
  for (const v of variants) if (v.kind === 'gateway') gatewayCliFor(v.build);

  const mix = expandMix(scenario, loaded.routes);
  const requests = buildRequests(mix, Math.min(20_000, Math.max(1000, mix.length * 4)), scenario.seed);
  const work = mkdtempSync(join(tmpdir(), `scenario-${scenario.name}-`));
  const answersFile = join(work, 'answers.json');
  const answers = buildAnswerTable(requests, loaded.routes);
  writeFileSync(answersFile, JSON.stringify(answers));

  const capacity =
    opts.capacity === true || typeof opts.capacity === 'object' || scenario.capacity !== undefined
      ? capacitySpec(scenario.capacity, typeof opts.capacity === 'object' ? opts.capacity : undefined)
      : null;
  if (capacity !== null && (scenario.load.pipelining !== 1 || openLoopBinary() === null)) {
    throw new Error(
      `${scenario.name}: capacity mode needs the C open-loop generator without pipelining (scripts/scenario/openloop.c, built with cc; ` +
        `Debian: apt-get install gcc libc6-dev); the Node generator saturates its own core first and would measure itself`,
    );
  }
  const hdrDir = opts.hdrLog === true ? mkdtempSync(join(tmpdir(), `scenario-hdr-${scenario.name}-`)) : null;
  const plan = planCpus(opts.pin === false);
  const loadBefore = loadavg();
  const startedAt = new Date().toISOString();
  const runs: RunResult[] = [];
  const searches: CapacitySearch[] = [];
  const checks = new Map<string, AnswerCheck>();
  let rate = opts.rate ?? scenario.load.rate;
  let calibration: Calibration | undefined = opts.rate !== undefined ? { source: 'option', rate: opts.rate } : undefined;
  const sched = schedule(variants, repetitions);
  const etaPlan: EtaPlan = {
    variants: variants.length,
    repetitions,
    warmupS,
    durationS,
    calibration: capacity === null && rate === undefined && scenario.load.rateOfMax !== undefined,
    ...(capacity !== null ? { capacity: { probes: capacity.maxProbes, probeS: probeSeconds(capacity) } } : {}),
  };
  const mode = opts.progress === false ? 'off' : process.stderr.isTTY ? 'bar' : 'lines';
  const progress = new Progress(etaPlan, sched.length, mode);
  if (mode !== 'off') {
    process.stderr.write(
      `scenario ${scenario.name}: ${variants.length} variants × ${repetitions} repetitions, ` +
        (capacity !== null
          ? `capacity search each (p${capacity.percentile} ≤ ${capacity.objectiveMs} ms, ≤ ${capacity.maxProbes} probes of ${capacity.probeWarmupS} + ${capacity.windowS} s) + ${warmupS} s warmup (${plan.note})\n`
          : `${durationS !== undefined ? `${durationS} s` : `${amount} requests`} + ${warmupS} s warmup each (${plan.note})\n`) +
        `ETA ${formatDuration(estimateSeconds(etaPlan))} (updated as runs finish)\n`,
    );
  }

  let stub: { child: ChildProcess; port: number } | null = null;
  let mirrorStub: { child: ChildProcess; port: number } | null = null;
  let loader: Loader | null = null;
  try {
    if (scenario.mode === 'proxy') stub = await startUpstreamStub(scenario, plan);
    // a mirror is another service: its load must not queue the primary's requests in the same stub
    if (scenario.mode === 'proxy' && scenario.routeOptionSets !== undefined) mirrorStub = await startUpstreamStub(scenario, plan);
    loader = await Loader.start(plan.loaderCpus);
    const ctx: Context = {
      loaded,
      plan,
      work,
      loader,
      requests,
      answersFile,
      ...(stub !== null ? { upstreamPort: stub.port } : {}),
      ...(mirrorStub !== null ? { mirrorPort: mirrorStub.port } : {}),
      durationS,
      amount,
      warmupS,
      rate,
      answers,
      answerSpec: answerSpec(sampleAnswers(requests, answers, stubBody((scenario.upstreamStub ?? { bodyBytes: 256 }).bodyBytes)), scenario.verify?.headers),
      checks,
      hdrDir,
    };
    const rom = scenario.load.rateOfMax;
    if (capacity === null && rate === undefined && rom !== undefined) {
      calibration = await calibrate(ctx, variants, rom.variant ?? reference, rom.fraction, mode !== 'off');
      rate = calibration.rate;
      ctx.rate = rate;
    }
    progress.start();
    for (const [order, item] of sched.entries()) {
      const label = `${item.variant.id} #${item.repetition + 1}`;
      progress.begin(label);
      const wrong = skipped.get(item.variant.id);
      if (wrong !== undefined) {
        progress.end(`[${order + 1}/${sched.length}] ${label}: not timed (${wrong})`);
        continue;
      }
      let run: RunResult;
      let search: CapacitySearch | null = null;
      try {
        if (capacity !== null) {
          const { capacityRun, ...found } = await searchOne(ctx, capacity, item.variant, item.repetition, order);
          search = found;
          run = capacityRun;
        } else run = await runOne(ctx, item.variant, item.repetition, order);
      } catch (err) {
        if (!(err instanceof WrongAnswers)) throw err;
        // reported, not timed: runs it made before answering wrongly go too (its answers are not trusted)
        skipped.set(item.variant.id, err.reason);
        for (let i = runs.length - 1; i >= 0; i--) if (runs[i]!.variant === item.variant.id) runs.splice(i, 1);
        for (let i = searches.length - 1; i >= 0; i--) if (searches[i]!.variant === item.variant.id) searches.splice(i, 1);
        progress.end(`[${order + 1}/${sched.length}] ${label}: not timed (${err.reason})`);
        continue;
      }
      runs.push(run);
      if (search !== null) {
        searches.push(search);
        progress.end(`[${order + 1}/${sched.length}] ${label}: ${capacityLine(search, capacity!)}`);
        continue;
      }
      const warn = run.warnings.length > 0 ? ` (${run.warnings.join('; ')})` : '';
      progress.end(
        `[${order + 1}/${sched.length}] ${label}: ${Math.round(run.rps)} req/s, p99 ${run.latencyMs.p99} ms` +
          `${run.gateway !== null ? `, cpu ${run.gateway.cpuPct.toFixed(0)}%` : ''}${warn}`,
      );
    }
  } finally {
    progress.stop();
    if (loader !== null) await loader.stop();
    if (stub !== null) await stopProcess(stub.child, 2000);
    if (mirrorStub !== null) await stopProcess(mirrorStub.child, 2000);
    rmSync(work, { recursive: true, force: true });
  }

  if (runs.length === 0) throw new Error(`no variant could be timed:\n  ${[...skipped].map(([id, why]) => `${id}: ${why}`).join('\n  ')}`);
  const env = describeEnvironment(plan, loadBefore);
  const control = driftControl(variants, scenario.drift?.control);
  const driftLimit = scenario.drift?.limit ?? DEFAULT_DRIFT_LIMIT;
  const drift =
    capacity !== null
      ? control === null
        ? null
        : checkDrift(
            control,
            'capacity (req/s)',
            searches.filter((x) => x.variant === control).map((x) => x.capacity),
            driftLimit,
          )
      : driftOfRuns(runs, control, rate !== undefined, driftLimit);
  const ids = variants.map((v) => v.id);
  const refId = reference !== undefined && ids.includes(reference) ? reference : null;
  const results: Results = {
    schemaVersion: 1,
    scenario: { name: scenario.name, description: scenario.description, hash: loaded.hash, definition: scenario, routeCount: loaded.routes.length },
    options: {
      repetitions,
      durationS: durationS ?? null,
      amount: amount ?? null,
      warmupS,
      only: opts.only ?? [],
      seed: scenario.seed,
    },
    command: opts.command ?? `npm run scenario -- ${scenario.name}`,
    startedAt,
    finishedAt: new Date().toISOString(),
    environment: env,
    variants,
    runs,
    summary: summarize(ids, runs, refId, scenario.seed),
    caveats: [
      ...caveatsFor(env, plan, variants, scenario, capacity !== null ? undefined : rate, skipped),
      ...(capacity !== null ? capacityCaveats(capacity) : []),
    ],
    statistics: statisticsInfo(scenario.seed),
    traffic: trafficInfo(requests, answers),
    ...(scenario.targets !== undefined ? { targets: evaluateTargets(scenario.targets, runs, scenario.seed, skipped) } : {}),
    ...(drift !== null ? { drift } : {}),
    ...(checks.size > 0 ? { answerChecks: [...checks.values()] } : {}),
    ...(calibration !== undefined && capacity === null ? { calibration } : {}),
    ...(capacity !== null ? { capacity: summarizeCapacity(capacity, ids, searches, refId, scenario.seed) } : {}),
    ...(skipped.size > 0 ? { skipped: [...skipped].map(([variant, reason]) => ({ variant, reason })) } : {}),
  };
  const problems = validateResults(results);
  if (problems.length > 0) throw new Error(`results do not match their schema:\n  ${problems.join('\n  ')}`);

  try {
    const dir = await saveRun(results, {
      ...(opts.outDir !== undefined ? { outDir: opts.outDir } : {}),
      publish: opts.publish === true,
      ...(hdrDir !== null ? { attach: { from: hdrDir, as: 'hdr' } } : {}),
    });
    return { dir, results };
  } finally {
    if (hdrDir !== null) rmSync(hdrDir, { recursive: true, force: true });
  }
}
