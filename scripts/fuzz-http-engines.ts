/**
 * npm run fuzz:http-engines -- [--inputs N] [--seed S] [--reference R] [--candidate C] [--concurrency K]
 *                               [--max-failures F] [--json]
 * The engine-level differential check (scripts/fuzz/engine-differential.ts): N generated request
 * streams (default 100000) with seeds S, S+1, … (default 1), each sent over loopback sockets, cut into writes at
 * random boundaries, to two server engines behind an echo handler (default node-http against own, or against
 * itself while own is not registered), comparing what each dispatched and refused. Prints every failure with its
 * seed, cuts and input (rerun one with --seed <seed> --inputs 1) and a summary; writes no file; exits 1 when
 * anything failed.
 */
import { parseArgs } from 'node:util';
import { hasVariant } from '../core/variants.js';
import { runEngineFuzz } from './fuzz/engine-differential.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      inputs: { type: 'string', default: '100000' },
      seed: { type: 'string', default: '1' },
      reference: { type: 'string', default: 'node-http' },
      candidate: { type: 'string', default: hasVariant('server', 'own') ? 'own' : 'node-http' },
      concurrency: { type: 'string', default: '16' },
      'max-failures': { type: 'string', default: '20' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const inputs = Number(values.inputs);
  const seed = Number(values.seed);
  const concurrency = Number(values.concurrency);
  const maxFailures = Number(values['max-failures']);
  const engines = [values.reference, values.candidate];
  const bad =
    !Number.isSafeInteger(inputs) ||
    inputs < 1 ||
    !Number.isSafeInteger(seed) ||
    !Number.isSafeInteger(concurrency) ||
    concurrency < 1 ||
    !Number.isSafeInteger(maxFailures) ||
    engines.some((e) => !hasVariant('server', e));
  if (values.help === true || bad) {
    process.stderr.write(
      'usage: npm run fuzz:http-engines -- [--inputs N] [--seed S] [--reference ENGINE] [--candidate ENGINE] [--concurrency K] [--max-failures F] [--json]\n',
    );
    process.exit(values.help === true ? 0 : 2);
  }
  const report = await runEngineFuzz(values.reference, values.candidate, inputs, seed, {
    concurrency,
    maxFailures,
    onProgress: (done) => {
      if (done % 10000 === 0) process.stderr.write(`${done} inputs…\n`);
    },
  });
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    for (const f of report.failures) {
      process.stdout.write(
        `FAIL seed=${f.seed} maxHeaderSize=${f.maxHeaderSize} mutations=${f.mutations.join(',') || '-'} cuts=${JSON.stringify(f.cuts.length > 12 ? `${f.cuts.length} cuts` : f.cuts)}: ${f.failure}\n` +
          `  input: ${JSON.stringify(f.input)}\n` +
          `  ${report.reference}: ${JSON.stringify(f.reference)}\n  ${report.candidate}: ${JSON.stringify(f.candidate)}\n`,
      );
    }
    const allowed = Object.entries(report.allowed)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    process.stdout.write(
      `${report.candidate} against ${report.reference}: ${report.inputs} inputs from seed ${report.firstSeed} in ${(report.ms / 1000).toFixed(1)} s: ` +
        `${report.bothAccepted} accepted by both, ${report.bothRefused} refused by both (${report.statusDiffers} with another status of the same class), ` +
        `stricter on purpose: ${allowed || 'none'}; ${report.failures.length} failures\n`,
    );
  }
  process.exit(report.failures.length > 0 ? 1 : 0);
}

void main();
