/**
 * npm run scenario -- <name> [--repetitions N] [--duration S] [--warmup S] [--rate R] [--capacity [--objective MS] …] [--hdr-log]
 *   [--only dim=a,b]… [--out DIR] [--no-pin] [--publish] [--eta]
 * Runs a scenario from scenarios/<name>.json and writes reports/runs/<timestamp>-<name>/ (git-ignored);
 * --publish writes reports/<name>/<timestamp>/ and refreshes reports/latest/<name>/ and reports/index.md instead.
 * --eta prints how long the run would take and exits; `--eta-table` (no name) prints the README's table.
 */
import { parseArgs } from 'node:util';
import { ScenarioError } from '../scenarios/schema.js';
import { exitWithUsageError, numberOption, parseCommandLine, reportFailure, UsageError } from './lib/command-line.js';
import { etaLine, etaTableMarkdown, shippedScenarioEtas } from './scenario/eta-table.js';
import { h2ScenarioPath } from './scenario/h2load.js';
import { assertScenarioExists, scenarioPath, UnknownScenarioError } from './scenario/load-scenario.js';
import { runScenario } from './scenario/runner.js';
import { verdictTerminalTable } from './scenario/terminal.js';

const USAGE = `npm run scenario -- <name> [options]        (npm run scenario -- --eta-table: every shipped scenario's ETA)
Runs scenarios/<name>.json: every variant in its own process, interleaved repetitions, then a report in
reports/runs/<timestamp>-<name>/ (git-ignored): report.md, report.html, results.json and charts.

options:
  --repetitions N   repetitions per variant (default: the scenario's own; 3 or more for a confidence interval)
  --duration S      measured seconds per run (default: the scenario's own)
  --warmup S        warm-up seconds per run, discarded (default: the scenario's own)
  --rate R          fixed request rate per second (open loop) instead of the scenario's load
  --capacity        capacity mode (on by default in the capacity scenario): per variant the highest fixed rate
                    whose p99 stays within the objective, by a search over rates (bracket, then bisect)
  --objective MS    capacity: the latency objective (default 5 ms, or the scenario's)
  --window S        capacity: measured seconds per probe (default 5)
  --max-probes N    capacity: probes per search at most (default 12)
  --max-rate R      capacity: the highest rate probed (default 100000 req/s)
  --hdr-log         fixed-rate windows also write HdrHistogram interval logs (1 s) into the report's hdr/ folder
  --only DIM=A,B    only these variants of a matrix dimension (repeatable), e.g. --only router=hybrid,radix;
                    h2load scenarios (h2, grpc, upstream-h2) take variant ids, e.g. --only gateway,peer=nginx
  --build REV,REV   every gateway variant once per build (a git revision; "current" = this dist/), interleaved;
                    filed as <name>-builds
  --out DIR         write the report under DIR instead of reports/runs/
  --no-pin          do not pin the gateway and the load generator to CPUs with taskset
  --publish         write the committed reports/<name>/<timestamp>/, reports/latest/<name>/ and reports/index.md
  --eta             print how long the run would take and exit
  --eta-table       print every shipped scenario's ETA (markdown) and exit
  -h, --help        this text
`;

function positiveNumber(name: string, v: string | undefined): number | undefined {
  return numberOption(name, v, { exclusiveMin: true });
}

async function main(): Promise<void> {
  const { values, positionals } = parseCommandLine(USAGE, () =>
    parseArgs({
      allowPositionals: true,
      options: {
        repetitions: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        rate: { type: 'string' },
        capacity: { type: 'boolean' },
        objective: { type: 'string' },
        window: { type: 'string' },
        'max-probes': { type: 'string' },
        'max-rate': { type: 'string' },
        'hdr-log': { type: 'boolean' },
        only: { type: 'string', multiple: true },
        build: { type: 'string' },
        out: { type: 'string' },
        'no-pin': { type: 'boolean' },
        publish: { type: 'boolean' },
        eta: { type: 'boolean' },
        'eta-table': { type: 'boolean' },
      },
    }),
  );
  if (values['eta-table'] === true) {
    process.stdout.write(`${etaTableMarkdown(await shippedScenarioEtas())}\n`);
    return;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'name a scenario' : `one scenario at a time (got ${positionals.join(', ')})`);
  // before anything slow (build checks, CPU planning): a typo gets the list of names at once
  assertScenarioExists(positionals[0]!, [scenarioPath(positionals[0]!), h2ScenarioPath(positionals[0]!)]);
  const reps = positiveNumber('repetitions', values.repetitions);
  const warmup = values.warmup !== undefined ? Number(values.warmup) : undefined;
  if (warmup !== undefined && !(warmup >= 0)) throw new UsageError(`--warmup must be >= 0 (got ${values.warmup})`);
  const capacityOverrides = {
    ...(values.objective !== undefined ? { objectiveMs: positiveNumber('objective', values.objective)! } : {}),
    ...(values.window !== undefined ? { windowS: positiveNumber('window', values.window)! } : {}),
    ...(values['max-probes'] !== undefined ? { maxProbes: Math.round(positiveNumber('max-probes', values['max-probes'])!) } : {}),
    ...(values['max-rate'] !== undefined ? { maxRate: positiveNumber('max-rate', values['max-rate'])! } : {}),
  };
  const capacity = values.capacity === true || Object.keys(capacityOverrides).length > 0 ? capacityOverrides : undefined;
  if (values.eta === true) {
    const duration = positiveNumber('duration', values.duration);
    const line = await etaLine(positionals[0]!, {
      ...(reps !== undefined ? { repetitions: Math.round(reps) } : {}),
      ...(warmup !== undefined ? { warmupS: warmup } : {}),
      ...(duration !== undefined ? { durationS: duration } : {}),
      ...(capacity !== undefined ? { capacity } : {}),
      narrowed: values.only !== undefined,
    });
    process.stdout.write(`${line}\n`);
    return;
  }
  const { dir, results } = await runScenario({
    scenario: positionals[0]!,
    ...(reps !== undefined ? { repetitions: Math.round(reps) } : {}),
    ...(values.duration !== undefined ? { durationS: positiveNumber('duration', values.duration)! } : {}),
    ...(warmup !== undefined ? { warmupS: warmup } : {}),
    ...(values.rate !== undefined ? { rate: positiveNumber('rate', values.rate)! } : {}),
    ...(capacity !== undefined ? { capacity } : {}),
    ...(values['hdr-log'] === true ? { hdrLog: true } : {}),
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
  if (err instanceof UnknownScenarioError) exitWithUsageError(err);
  if (err instanceof ScenarioError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  reportFailure(err);
});
