/**
 * npm run profile -- <scenario> [--variant router=hybrid] [--variant …] --tool doctor|flame|bubbleprof|heapprofiler|0x
 *                    [--duration S] [--warmup S] [--out DIR]
 *
 * Runs ONE variant of a scenario in a single gateway process under clinic (NO_INSIGHT=true, --open=false) or 0x,
 * drives it with the scenario's load, then stops it with SIGINT (as Ctrl-C would) so the tool writes its HTML.
 * Without --variant it profiles the gateway (the scenario's reference variant when that is a gateway), never the
 * bare-server baseline.
 * Output: reports/runs/<timestamp>-profile-<scenario>-<variant>-<tool>/ (git-ignored; 10–40 MB each) with the
 * tool's HTML and a summary.md. The tool runs with that folder as its working directory, so nothing it writes
 * (.clinic/, *.0x/, isolate logs) lands anywhere else.
 * Profiler overhead distorts throughput: the numbers in summary.md describe this profiled run only.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { exitWithUsageError, parseCommandLine, reportFailure, UsageError } from './lib/command-line.js';
import { buildGatewayConfig, writeNoopPlugins } from './scenario/gateway-config.js';
import { loadScenario, UnknownScenarioError } from './scenario/load-scenario.js';
import { Loader, type LoaderJob } from './scenario/loader.js';
import { profileDir } from './scenario/output.js';
import { distScript, GATEWAY_CLI, ROOT } from './scenario/paths.js';
import { ProcSampler } from './scenario/proc-sampler.js';
import { freePort, planCpus, processTree, spawnNode, stopProcess, tail, waitReady } from './scenario/processes.js';
import { profileTarget } from './scenario/profile-target.js';
import { buildAnswerTable, buildRequests, expandMix } from './scenario/traffic.js';
import { expandMatrix, filterVariants, parseOnly } from './scenario/variants.js';

const TOOLS = ['doctor', 'flame', 'bubbleprof', 'heapprofiler', '0x'] as const;
type Tool = (typeof TOOLS)[number];
const ANALYSIS_TIMEOUT_MS = 10 * 60_000;

function toolCommand(tool: Tool, dest: string, target: string[]): { cmd: string; args: string[] } {
  const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name);
  if (tool === '0x') return { cmd: bin('0x'), args: ['--output-dir', dest, '--', process.execPath, ...target] };
  return { cmd: bin('clinic'), args: [tool, '--open=false', '--dest', dest, '--', process.execPath, ...target] };
}

function findHtml(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...findHtml(p));
    else if (e.name.endsWith('.html')) out.push(p);
  }
  return out;
}

const HELP = `npm run profile -- <scenario> --tool ${TOOLS.join('|')} [options]
Runs one variant of a scenario in a single gateway process under clinic or 0x, drives it with the scenario's
load, stops it with SIGINT so the tool writes its HTML. Output: reports/runs/<timestamp>-profile-<scenario>-
<variant>-<tool>/ (git-ignored) with the tool's HTML and a summary.md. Profiler overhead distorts throughput.

options:
  --tool NAME       ${TOOLS.join(', ')} (required)
  --variant DIM=V   which variant to profile (repeatable), e.g. --variant router=hybrid; default: the gateway
                    (the scenario's reference variant when that is a gateway), never the bare-server baseline
  --duration S      measured seconds (default: the scenario's own)
  --warmup S        warm-up seconds (default: the scenario's own)
  --out DIR         write under DIR instead of reports/runs/
  -h, --help        this text
`;

async function main(): Promise<void> {
  const { values, positionals } = parseCommandLine(HELP, () =>
    parseArgs({
      allowPositionals: true,
      options: {
        variant: { type: 'string', multiple: true },
        tool: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        out: { type: 'string' },
      },
    }),
  );
  const tool = values.tool as Tool | undefined;
  if (positionals.length !== 1) throw new UsageError('name one scenario');
  if (tool === undefined || !TOOLS.includes(tool)) throw new UsageError(`--tool must be one of ${TOOLS.join(', ')}`);
  const loaded = loadScenario(positionals[0]!);
  const scenario = loaded.scenario;
  const filtered = (values.variant ?? []).length > 0;
  const candidates = filterVariants(await expandMatrix(scenario), parseOnly(values.variant ?? []));
  const { variant, note } = profileTarget(candidates, filtered, scenario.baselineVariant);
  if (note !== null) process.stderr.write(`${note}\n`);
  if ((variant.workers ?? 0) > 0) {
    process.stderr.write(`profilers follow one process: running ${variant.id} with workers=0\n`);
    variant.workers = 0;
  }
  const durationS = values.duration !== undefined ? Number(values.duration) : (scenario.load.durationS ?? 10);
  const warmupS = values.warmup !== undefined ? Number(values.warmup) : scenario.warmupS;
  if (!existsSync(GATEWAY_CLI)) throw new Error(`not built: ${GATEWAY_CLI} missing (run npm run build)`);

  const startedAt = new Date().toISOString();
  const outDir = profileDir(scenario.name, variant.id, tool, startedAt, values.out);
  mkdirSync(outDir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'profile-'));
  const plan = planCpus();
  const requests = buildRequests(expandMix(scenario, loaded.routes), 1000, scenario.seed);

  let stub: ReturnType<typeof spawnNode> | null = null;
  let loader: Loader | null = null;
  try {
    let upstreamPort: number | undefined;
    if (scenario.mode === 'proxy') {
      upstreamPort = await freePort();
      const s = scenario.upstreamStub ?? { bodyBytes: 256, delayMs: 0 };
      stub = spawnNode(
        [distScript('upstream-stub.js'), '--port', String(upstreamPort), '--body-bytes', String(s.bodyBytes), '--delay-ms', String(s.delayMs)],
        plan.loaderCpus,
        { stdio: 'ignore' },
      );
      await waitReady(stub, { port: upstreamPort }, 20_000, () => 'upstream stub');
    }
    const port = await freePort();
    let adminPort: number | undefined;
    let target: string[];
    if (variant.kind === 'baseline') {
      const answers = join(work, 'answers.json');
      writeFileSync(answers, JSON.stringify(buildAnswerTable(requests, loaded.routes)));
      target = [distScript('baseline-server.js'), '--port', String(port), '--answers', answers];
      if (upstreamPort !== undefined) target.push('--upstream-port', String(upstreamPort));
    } else {
      adminPort = await freePort();
      const pluginDir = join(work, 'plugins');
      if ((variant.plugins ?? 0) > 0) writeNoopPlugins(pluginDir, variant.plugins!);
      const config = buildGatewayConfig(
        scenario,
        loaded.routes,
        variant,
        { port, adminPort, ...(upstreamPort !== undefined ? { upstreamPort } : {}) },
        pluginDir,
      );
      const file = join(work, 'gateway.json');
      writeFileSync(file, JSON.stringify(config, null, 2));
      target = [GATEWAY_CLI, '--config', file];
    }

    const { cmd, args } = toolCommand(tool, join(outDir, tool === '0x' ? '0x' : '.clinic'), target);
    const pinned = plan.taskset ? (['taskset', ['-c', plan.gatewayCpus.join(','), cmd, ...args]] as const) : ([cmd, args] as const);
    const output = tail(20_000);
    // own process group: SIGINT to the group is exactly what Ctrl-C in a terminal does, which is what both tools expect
    const child = spawn(pinned[0], [...pinned[1]], {
      // the tool's scratch files (.clinic/, *.0x/, V8 logs) land in the ignored run folder, not the checkout
      cwd: outDir,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_INSIGHT: 'true', NODE_ENV: 'production' },
    });
    child.stdout?.on('data', (d: Buffer) => output.push(d));
    child.stderr?.on('data', (d: Buffer) => output.push(d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    process.stderr.write(`profiling ${scenario.name} / ${variant.id} under ${tool} (${plan.note})\n`);
    await waitReady(child, { port, ...(adminPort !== undefined ? { adminPort } : {}) }, 60_000, () => output.text());
    loader = await Loader.start(plan.loaderCpus);
    const base: Omit<LoaderJob, 'durationS'> = {
      url: `http://127.0.0.1:${port}`,
      connections: scenario.load.connections,
      pipelining: scenario.load.pipelining,
      requests,
      ...(scenario.load.rate !== undefined ? { rate: scenario.load.rate } : {}),
    };
    if (warmupS > 0) await loader.run({ ...base, durationS: warmupS });
    // the profiled node process is the deepest descendant of the tool's process
    const tree = processTree(child.pid!);
    const sampler = new ProcSampler(tree[tree.length - 1]!);
    sampler.start();
    const outcome = await loader.run({ ...base, durationS });
    const usage = sampler.stop();

    process.stderr.write(
      `load done (${Math.round(outcome.result.requests / outcome.result.durationS)} req/s); stopping and waiting for ${tool} to write its report…\n`,
    );
    process.kill(-child.pid!, 'SIGINT');
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ANALYSIS_TIMEOUT_MS).unref());
    const code = await Promise.race([exited, timeout]);
    if (code === 'timeout') {
      process.kill(-child.pid!, 'SIGKILL');
      throw new Error(`${tool} did not finish within ${ANALYSIS_TIMEOUT_MS / 1000} s\n${output.text()}`);
    }
    const html = findHtml(outDir);
    if (html.length === 0) throw new Error(`${tool} exited (code ${code}) without writing HTML\n${output.text()}`);
    // the report's main file at the top of the directory, whatever the tool's own layout
    const main = join(outDir, `${tool}.html`);
    cpSync(html[0]!, main);
    const r = outcome.result;
    const summary = [
      `# Profile: \`${scenario.name}\` / \`${variant.id}\` under ${tool}`,
      '',
      `- HTML report: [${tool}.html](${tool}.html)${html.length > 1 ? ` (tool output: ${html.map((h) => `\`${relative(outDir, h)}\``).join(', ')})` : ` (tool output: \`${relative(outDir, html[0]!)}\`)`}`,
      `- started: ${startedAt}; ${warmupS} s warmup + ${durationS} s profiled load, ${scenario.load.connections} connections, pipelining ${scenario.load.pipelining}`,
      `- load under the profiler: ${Math.round(r.requests / r.durationS)} req/s, p50 ${r.latency.p50.toFixed(2)} ms, p99 ${r.latency.p99.toFixed(2)} ms, max ${r.latency.max.toFixed(2)} ms, ${r.errors} errors, ${r.non2xx} non-2xx`,
      `- profiled process: CPU ${usage.cpuPct.toFixed(0)}% of a core, RSS max ${usage.rssMaxMB.toFixed(1)} MB`,
      `- ${plan.note}`,
      `- tool exit code: ${code}`,
      '',
      `Profiler overhead changes the numbers above; use \`npm run scenario -- ${scenario.name}\` for performance figures.`,
      '',
      '## Reproduce',
      '',
      '```sh',
      `npm run profile -- ${process.argv.slice(2).join(' ')}`,
      '```',
      '',
    ].join('\n');
    writeFileSync(join(outDir, 'summary.md'), summary);
    process.stdout.write(`${summary}\nprofile: ${main} (${Math.round(statSync(main).size / 1024)} KiB)\n        ${join(outDir, 'summary.md')}\n`);
  } finally {
    if (loader !== null) await loader.stop();
    if (stub !== null) await stopProcess(stub, 2000);
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  if (err instanceof UnknownScenarioError) exitWithUsageError(err);
  reportFailure(err);
});
