/**
 * A quick look at HTTP/2 upstreams and gRPC through the gateway: the `grpc` and `upstream-h2` scenarios
 * (scenarios/h2load/, run by scripts/scenario/h2load.ts) at one short repetition, printed as one table each with
 * req/s and CPU µs per request. The scenarios are the measurement of record (repetitions, CIs, the nginx target);
 * this is their smoke-sized run. The reports go to a temporary directory and are removed: it writes nothing.
 *
 *   npm run bench:grpc -- [--duration 5] [--only grpc|upstream-h2]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { exitWithUsageError, numberOption, parseCommandLine, UsageError } from '../lib/command-line.js';
import { runScenario } from '../scenario/runner.js';
import { cpuUsPerRequest } from '../scenario/summarize.js';
import { targetBound } from '../scenario/targets.js';

const HELP = `npm run bench:grpc -- [options]
gRPC unary and server-streaming calls through the gateway vs the service directly vs nginx grpc_pass, and HTTP/1.1
traffic through the gateway to an HTTP/1.1 vs an h2c upstream: req/s and CPU µs per request, one short repetition
of the grpc and upstream-h2 scenarios (npm run scenario -- grpc for the full runs). Prints a table.

options:
  --duration S      measured seconds per run (default 5)
  --only NAME       grpc or upstream-h2 (default both)
  -h, --help        this text
`;
const { values } = parseCommandLine(HELP, () => parseArgs({ options: { duration: { type: 'string' }, only: { type: 'string' } } }));
let durationS: number;
try {
  durationS = numberOption('duration', values.duration ?? '5', { exclusiveMin: true })!;
  if (values.only !== undefined && values.only !== 'grpc' && values.only !== 'upstream-h2') throw new UsageError('--only: grpc or upstream-h2');
} catch (err) {
  exitWithUsageError(err);
}

async function main(): Promise<void> {
  const out = mkdtempSync(join(tmpdir(), 'bench-grpc-'));
  try {
    for (const name of ['grpc', 'upstream-h2'].filter((n) => values.only === undefined || values.only === n)) {
      const { results } = await runScenario({
        scenario: name,
        repetitions: 1,
        durationS,
        warmupS: 1,
        outDir: out,
        command: `npm run bench:grpc -- --only ${name}`,
      });
      process.stdout.write(`\n${name}: ${durationS} s per run\n| variant | req/s | errors | CPU µs/req |\n| --- | ---: | ---: | ---: |\n`);
      for (const r of results.runs) {
        const cpu = cpuUsPerRequest(r);
        process.stdout.write(`| ${r.variant} | ${Math.round(r.rps)} | ${r.errors + r.timeouts} | ${cpu === null ? '–' : cpu.toFixed(1)} |\n`);
      }
      for (const s of results.skipped ?? []) process.stdout.write(`${s.variant} skipped: ${s.reason}\n`);
      for (const t of results.targets ?? []) {
        process.stdout.write(`target ${t.variant} ÷ ${t.reference} (${t.metric}) ${targetBound(t)}: ${t.ratio?.estimate.toFixed(2) ?? '–'}×, ${t.status}\n`);
      }
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
});
