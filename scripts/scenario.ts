/**
 * npm run scenario -- <name> [--repetitions N] [--duration S] [--warmup S] [--rate R] [--only dim=a,b]… [--out DIR] [--no-pin] [--publish] [--eta]
 * Runs a scenario from scenarios/<name>.json and writes reports/runs/<timestamp>-<name>/ (git-ignored);
 * --publish writes reports/<name>/<timestamp>/ and refreshes reports/latest/<name>/ and reports/index.md instead.
 * --eta prints how long the run would take and exits; `--eta-table` (no name) prints the README's table.
 */
import { parseArgs } from 'node:util';
import { ScenarioError } from '../scenarios/schema.js';
import { etaTableMarkdown, scenarioEta, shippedScenarioEtas } from './scenario/eta-table.js';
import { estimateSeconds, formatDuration } from './scenario/eta.js';
import { h2ScenarioPath } from './scenario/h2load.js';
import { assertScenarioExists, scenarioPath, UnknownScenarioError } from './scenario/load-scenario.js';
import { runScenario } from './scenario/runner.js';
import { verdictTerminalTable } from './scenario/terminal.js';

const USAGE =
  'usage: npm run scenario -- <name> [--repetitions N] [--duration S] [--warmup S] [--rate REQ_PER_S] [--only dim=a,b] [--build REV,REV] [--out DIR] [--no-pin] [--publish] [--eta]\n' +
  '  reports go to reports/runs/<timestamp>-<name>/ (git-ignored); --publish updates the committed reports/<name>/, reports/latest/ and reports/index.md\n' +
  '  --build c4746cf,current: every gateway variant once per build (a git revision, "current" = this dist/), interleaved; filed as <name>-builds\n' +
  '  --eta: print how long the run would take and exit; npm run scenario -- --eta-table: every shipped scenario';

function positiveNumber(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number (got ${v})`);
  return n;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      repetitions: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rate: { type: 'string' },
      only: { type: 'string', multiple: true },
      build: { type: 'string' },
      out: { type: 'string' },
      'no-pin': { type: 'boolean' },
      publish: { type: 'boolean' },
      eta: { type: 'boolean' },
      'eta-table': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values['eta-table'] === true) {
    process.stdout.write(`${etaTableMarkdown(await shippedScenarioEtas())}\n`);
    return;
  }
  if (values.help === true || positionals.length !== 1) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(values.help === true ? 0 : 2);
  }
  // before anything slow (build checks, CPU planning): a typo gets the list of names at once
  assertScenarioExists(positionals[0]!, [scenarioPath(positionals[0]!), h2ScenarioPath(positionals[0]!)]);
  const reps = positiveNumber('repetitions', values.repetitions);
  const warmup = values.warmup !== undefined ? Number(values.warmup) : undefined;
  if (warmup !== undefined && !(warmup >= 0)) throw new Error(`--warmup must be >= 0 (got ${values.warmup})`);
  if (values.eta === true) {
    const e = await scenarioEta(positionals[0]!);
    const plan = {
      ...e.plan,
      ...(reps !== undefined ? { repetitions: Math.round(reps) } : {}),
      ...(warmup !== undefined ? { warmupS: warmup } : {}),
      ...(values.duration !== undefined ? { durationS: positiveNumber('duration', values.duration)! } : {}),
    };
    process.stdout.write(
      `${positionals[0]}: ${plan.variants} variants × ${plan.repetitions} repetitions × (${plan.warmupS} s warmup + ${plan.durationS ?? '?'} s) ` +
        `+ start-up ≈ ${formatDuration(estimateSeconds(plan))}${values.only !== undefined ? ' (before --only narrows the variants)' : ''}\n`,
    );
    return;
  }
  const { dir, results } = await runScenario({
    scenario: positionals[0]!,
    ...(reps !== undefined ? { repetitions: Math.round(reps) } : {}),
    ...(values.duration !== undefined ? { durationS: positiveNumber('duration', values.duration)! } : {}),
    ...(warmup !== undefined ? { warmupS: warmup } : {}),
    ...(values.rate !== undefined ? { rate: positiveNumber('rate', values.rate)! } : {}),
    ...(values.only !== undefined ? { only: values.only } : {}),
    ...(values.build !== undefined ? { builds: values.build.split(',').filter(Boolean) } : {}),
    ...(values.out !== undefined ? { outDir: values.out } : {}),
    pin: values['no-pin'] !== true,
    publish: values.publish === true,
    command: `npm run scenario -- ${process.argv.slice(2).join(' ')}`,
  });
  process.stdout.write(`\n${verdictTerminalTable(results)}\n`);
  process.stdout.write(`\nreport: ${dir}/report.md\n        ${dir}/report.html\n`);
  if (values.publish !== true) process.stdout.write('        (git-ignored scratch run; --publish writes the committed reports/ and reports/latest/)\n');
}

main().catch((err: unknown) => {
  if (err instanceof UnknownScenarioError) {
    process.stderr.write(`${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (err instanceof ScenarioError) process.stderr.write(`${err.message}\n`);
  else process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
