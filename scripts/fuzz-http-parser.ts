/**
 * npm run fuzz:http-parser -- [--inputs N] [--seed S] [--max-failures K] [--json]
 * The differential check of the own request parser (variants/server/own/parser.ts) against llhttp, node:http's
 * parser: N generated cases (default 100000) with seeds S, S+1, … (default 1), each compared whole and then
 * re-read in pieces. Prints every failure with its seed and input as a JSON string (rerun one with
 * --seed <seed> --inputs 1) and a summary; exits 1 when anything failed.
 */
import { parseArgs } from 'node:util';
import { runFuzz } from './fuzz/differential.js';
import { exitWithUsageError, parseCommandLine } from './lib/command-line.js';

const HELP = `npm run fuzz:http-parser -- [options]
The own request parser against llhttp (node:http's parser): generated cases, each compared whole and re-read in
pieces. Prints every failure with its seed and input (rerun one with --seed <seed> --inputs 1); exit 1 on any.

options:
  --inputs N          generated cases (default 100000)
  --seed S            first seed; case i uses S+i (default 1)
  --max-failures K    stop after K failures (default 20)
  --json              print the whole report as JSON
  -h, --help          this text
`;

function main(): void {
  const { values } = parseCommandLine(HELP, () =>
    parseArgs({
      options: {
        inputs: { type: 'string', default: '100000' },
        seed: { type: 'string', default: '1' },
        'max-failures': { type: 'string', default: '20' },
        json: { type: 'boolean' },
      },
    }),
  );
  const inputs = Number(values.inputs);
  const seed = Number(values.seed);
  const maxFailures = Number(values['max-failures']);
  if (!Number.isSafeInteger(inputs) || inputs < 1 || !Number.isSafeInteger(seed) || !Number.isSafeInteger(maxFailures)) {
    exitWithUsageError('--inputs, --seed and --max-failures are integers (--inputs at least 1)');
  }
  const report = runFuzz(inputs, seed, {
    maxFailures,
    onProgress: (done) => {
      if (done % 100000 === 0) process.stderr.write(`${done} inputs…\n`);
    },
  });
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    for (const f of report.failures) {
      process.stdout.write(
        `FAIL seed=${f.seed} maxHeaderSize=${f.maxHeaderSize} mutations=${f.mutations.join(',') || '-'}: ${f.failure}\n  input: ${JSON.stringify(f.input)}\n`,
      );
    }
    const allowed = Object.entries(report.allowed)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    process.stdout.write(
      `${report.inputs} inputs from seed ${report.firstSeed} in ${(report.ms / 1000).toFixed(1)} s: ` +
        `${report.bothAccepted} accepted by both, ${report.bothRejected} refused by both, ` +
        `stricter on purpose: ${allowed || 'none'}; ${report.failures.length} failures\n`,
    );
  }
  process.exit(report.failures.length > 0 ? 1 : 0);
}

main();
