/**
 * npm run bench:micro -- [router|pool|metrics|http-parser|buffer-pool|all] [--quick] [--out DIR] [--publish]
 * Dispatches to the per-family micro-benchmarks (scripts/bench/*.ts); each writes its report to the git-ignored
 * reports/runs/<timestamp>-micro-<family>/ (with --publish: the committed reports/micro/<family>/) and returns its
 * Markdown, printed here.
 */
import { parseArgs } from 'node:util';
import { runBufferPoolBench } from './bench/buffer-pool.js';
import { runHttpParserBench } from './bench/http-parser.js';
import { runMetricsBench } from './bench/metrics.js';
import { runPoolBench } from './bench/pool.js';
import { runRouterBench } from './bench/router.js';
import { parseCommandLine, reportFailure, UsageError } from './lib/command-line.js';

interface BenchOptions {
  quick?: boolean;
  outDir?: string;
  publish?: boolean;
}
type Bench = (opts: BenchOptions) => Promise<{ markdown: string; dir?: string }>;

const FAMILIES: Record<string, Bench> = {
  router: runRouterBench,
  pool: runPoolBench,
  metrics: runMetricsBench,
  'http-parser': runHttpParserBench,
  'buffer-pool': runBufferPoolBench,
};

const HELP = `npm run bench:micro -- [${Object.keys(FAMILIES).join('|')}|all] [options]
benchmark.js micro-benchmarks of one variant family (default: all), printed as Markdown and written to
reports/runs/<timestamp>-micro-<family>/ (git-ignored).

options:
  --quick       fewer samples (a smoke run, not a measurement)
  --out DIR     write under DIR instead of reports/runs/
  --publish     write the committed reports/micro/<family>/ instead
  -h, --help    this text
`;

async function main(): Promise<void> {
  const { values, positionals } = parseCommandLine(HELP, () =>
    parseArgs({
      allowPositionals: true,
      options: { quick: { type: 'boolean' }, out: { type: 'string' }, publish: { type: 'boolean' } },
    }),
  );
  const which = positionals[0] ?? 'all';
  if (positionals.length > 1 || (which !== 'all' && FAMILIES[which] === undefined)) {
    throw new UsageError(`unknown family "${positionals.join(' ')}"; available: ${Object.keys(FAMILIES).join(', ')}, all`);
  }
  const names = which === 'all' ? Object.keys(FAMILIES) : [which];
  for (const name of names) {
    process.stderr.write(`micro-benchmark: ${name}${values.quick === true ? ' (quick)' : ''}…\n`);
    const result = await FAMILIES[name]!({
      ...(values.quick === true ? { quick: true } : {}),
      ...(values.out !== undefined ? { outDir: values.out } : {}),
      publish: values.publish === true,
    });
    process.stdout.write(`${result.markdown}\n`);
    if (result.dir !== undefined) process.stdout.write(`\nreport: ${result.dir}\n\n`);
  }
}

main().catch(reportFailure);
