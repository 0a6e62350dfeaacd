/**
 * npm run compare -- router|pool|metrics|upstream|plugins|workers|baseline [--repetitions N] [--duration S] [--only …] [--publish]
 * Shorthand: runs the matching scenario and prints its verdict table. The report goes to the git-ignored
 * reports/runs/ unless --publish (then reports/<scenario>/, reports/latest/ and reports/index.md).
 */
import { parseArgs } from 'node:util';
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

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      repetitions: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      only: { type: 'string', multiple: true },
      out: { type: 'string' },
      'no-pin': { type: 'boolean' },
      publish: { type: 'boolean' },
    },
  });
  const scenario = COMPARISONS[positionals[0] ?? ''];
  if (positionals.length !== 1 || scenario === undefined) {
    if (positionals.length === 1) process.stderr.write(`unknown comparison "${positionals[0]}"; available: ${Object.keys(COMPARISONS).join(', ')}\n`);
    process.stderr.write(`usage: npm run compare -- ${Object.keys(COMPARISONS).join('|')} [--repetitions N] [--duration S] [--only dim=a,b] [--publish]\n`);
    process.exit(2);
  }
  const num = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number (got ${v})`);
    return n;
  };
  const reps = num('repetitions', values.repetitions);
  const duration = num('duration', values.duration);
  const warmup = num('warmup', values.warmup);
  const { dir, results } = await runScenario({
    scenario,
    ...(reps !== undefined ? { repetitions: Math.max(1, Math.round(reps)) } : {}),
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

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
