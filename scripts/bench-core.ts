import { parseArgs } from 'node:util';
import { autocannon, freePort, hasTaskset, median, startProcess, stopProcess, waitForUrl, writeTempJson } from './lib/bench-tools.js';
import { exitWithUsageError, numberOption, parseCommandLine } from './lib/command-line.js';

/**
 * The core's overhead, visible from day one: req/s of the gateway serving a static route (1 process, no
 * plugins, no access log) beside a bare http.createServer answering the same bytes, interleaved A B A B in one
 * run, servers pinned to CPU 0 and autocannon to CPU 1.
 *
 * Usage: npm run bench:core -- [--reps N] [--duration S] [--connections C]
 */
const HELP = `npm run bench:core -- [options]
The gateway serving a static route (1 process, no plugins, no access log) beside a bare http.createServer
answering the same bytes, interleaved, servers on CPU 0 and autocannon on CPU 1; prints the medians and the ratio.

options:
  --reps N          interleaved repetitions (default 3)
  --duration S      measured seconds per run (default 5)
  --connections C   autocannon connections (default 50)
  -h, --help        this text
`;
const { values } = parseCommandLine(HELP, () =>
  parseArgs({
    options: { reps: { type: 'string', default: '3' }, duration: { type: 'string', default: '5' }, connections: { type: 'string', default: '50' } },
  }),
);
let reps: number, durationS: number, connections: number;
try {
  reps = numberOption('reps', values.reps, { min: 1, integer: true })!;
  durationS = numberOption('duration', values.duration, { exclusiveMin: true })!;
  connections = numberOption('connections', values.connections, { min: 1, integer: true })!;
} catch (err) {
  exitWithUsageError(err);
}

interface Target {
  name: string;
  start(port: number): ReturnType<typeof startProcess>;
}

const targets: Target[] = [
  { name: 'bare http.createServer', start: (port) => startProcess(0, ['dist/scripts/bare-server.js', String(port)]) },
  {
    name: 'gateway (hybrid router, 1 process)',
    start: (port) => {
      const config = writeTempJson('gateway.json', {
        server: { port, workers: 0 },
        admin: { enabled: false },
        logging: { level: 'warn', accessLog: false },
        routes: [{ path: '/ping', methods: ['GET'], response: { status: 200, headers: { 'content-type': 'text/plain' }, body: 'pong' } }],
      });
      return startProcess(0, ['dist/core/cli.js', '--config', config]);
    },
  },
];

const results = new Map<string, number[]>(targets.map((t) => [t.name, []]));
if (!hasTaskset) console.log('note: taskset not found; servers and load generator share CPUs');
for (let r = 0; r < reps; r++) {
  for (const t of targets) {
    const port = await freePort();
    const proc = t.start(port);
    const url = `http://127.0.0.1:${port}/ping`;
    await waitForUrl(url);
    await autocannon(url, { connections, durationS: 1, cpu: 1 }); // warmup (JIT), discarded
    const res = await autocannon(url, { connections, durationS, cpu: 1 });
    await stopProcess(proc);
    results.get(t.name)!.push(res.rps);
    console.log(`rep ${r + 1}/${reps}  ${t.name.padEnd(36)} ${Math.round(res.rps)} req/s  p99 ${res.p99} ms  errors ${res.errors + res.non2xx}`);
  }
}
const bare = median(results.get(targets[0]!.name)!);
const gw = median(results.get(targets[1]!.name)!);
console.log(`\nmedian over ${reps} interleaved runs of ${durationS}s, ${connections} connections (load: autocannon, CPU 1):`);
console.log(`  bare http.createServer: ${Math.round(bare)} req/s`);
console.log(`  gateway:                ${Math.round(gw)} req/s`);
console.log(`  ratio gateway/bare:     ${(gw / bare).toFixed(3)}`);
