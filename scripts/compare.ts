/**
 * npm run compare -- router|pool|metrics|upstream|plugins|workers|baseline [--repetitions N] [--duration S] [--only …] [--publish] [--eta]
 * Shorthand: runs the matching scenario and prints its verdict table. The report goes to the git-ignored
 * reports/runs/ unless --publish (then reports/<scenario>/, reports/latest/ and reports/index.md).
 */
import { parseArgs } from 'node:util';
import { numberOption, parseCommandLine, reportFailure, UsageError } from './lib/command-line.js';
import { etaLine } from './scenario/eta-table.js';
import { runScenario } from './scenario/runner.js';
import { verdictTerminalTable } from './scenario/terminal.js';

export const COMPARISONS: Record<string, string> = {
  router: 'routers',
  pool: 'pools',
  metrics: 'metrics',
  upstream: 'upstream-clients',
  plugins: 'plugins-overhead',
  workers: 'workers',
  baseline: 'baseline',
};

const HELP = `npm run compare -- <family> [options]
Runs every variant of one family side by side (the scenario named below), prints the verdict table and where the
report is (reports/runs/<timestamp>-<scenario>/, git-ignored). Before it starts, it names the scenario and its ETA.

families (→ scenario it runs):
${Object.entries(COMPARISONS)
  .map(([k, v]) => `  ${k.padEnd(10)} → ${v}`)
  .join('\n')}

options:
  --repetitions N   repetitions per variant (default: the scenario's own)
  --duration S      measured seconds per run (default: the scenario's own)
  --warmup S        warm-up seconds per run, discarded (default: the scenario's own)
  --only DIM=A,B    only these variants of a matrix dimension (repeatable), e.g. --only router=hybrid,radix
  --out DIR         write the report under DIR instead of reports/runs/
  --no-pin          do not pin the gateway and the load generator to CPUs with taskset
  --publish         write the committed reports/<scenario>/, reports/latest/ and reports/index.md instead
  --eta             print the scenario and how long it would take, then exit
  -h, --help        this text
`;

async function main(): Promise<void> {
  const { values, positionals } = parseCommandLine(HELP, () =>
    parseArgs({
      allowPositionals: true,
      options: {
        repetitions: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        only: { type: 'string', multiple: true },
        out: { type: 'string' },
        'no-pin': { type: 'boolean' },
        publish: { type: 'boolean' },
        eta: { type: 'boolean' },
      },
    }),
  );
  const scenario = COMPARISONS[positionals[0] ?? ''];
  if (positionals.length !== 1 || scenario === undefined) {
    const families = Object.keys(COMPARISONS).join(', ');
    throw new UsageError(positionals.length === 1 ? `unknown comparison "${positionals[0]}"; available: ${families}` : `name one family: ${families}`);
  }
  const reps = numberOption('repetitions', values.repetitions, { min: 1, integer: true });
  const duration = numberOption('duration', values.duration, { exclusiveMin: true });
  const warmup = numberOption('warmup', values.warmup);
  const eta = await etaLine(scenario, {
    ...(reps !== undefined ? { repetitions: reps } : {}),
    ...(warmup !== undefined ? { warmupS: warmup } : {}),
    ...(duration !== undefined ? { durationS: duration } : {}),
    narrowed: values.only !== undefined,
  });
  process.stdout.write(`compare ${positionals[0]} runs the scenario ${eta}\n`);
  if (values.eta === true) return;
  const { dir, results } = await runScenario({
    scenario,
    ...(reps !== undefined ? { repetitions: reps } : {}),
    ...(duration !== undefined ? { durationS: duration } : {}),
    ...(warmup !== undefined ? { warmupS: warmup } : {}),
    ...(values.only !== undefined ? { only: values.only } : {}),
    ...(values.out !== undefined ? { outDir: values.out } : {}),
    pin: values['no-pin'] !== true,
    publish: values.publish === true,
    command: `npm run compare -- ${process.argv.slice(2).join(' ')}`,
  });
  process.stdout.write(`\n${verdictTerminalTable(results)}\n\nreport: ${dir}/report.md\n`);
}

main().catch(reportFailure);
