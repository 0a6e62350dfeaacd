/**
 * Memory under sustained proxying (issue 8: "RSS flat (±10%) over 1M proxied requests").
 *
 *   node dist/scripts/bench/memory.js [--requests 1000000] [--connections 32] [--max-minutes 30] [--out DIR] [--no-write] [--no-pin]
 *
 * Starts the upstream stub and the gateway CLI (single process, `server.workers: 0`, one `/api/*` proxy route,
 * default upstream client with keep-alive), pinned like the scenarios (gateway on CPU 0…n-2, load generator and
 * stub on the last CPU). A warm-up of 5% of the requests (at least 20k) lets the JIT, the pools and the heap
 * settle; then the RSS of the gateway process (VmRSS from /proc) is the reference, and the requests are driven
 * in ten equal chunks (autocannon `amount`, in the scenario runner's pinned loader process), with the RSS read
 * after each chunk (median of 5 reads over 0.5 s, load paused) and every 250 ms during the chunks. The verdict is
 * the largest deviation of a checkpoint from the reference against ±10%.
 * Bounded: each chunk has a deadline and the whole run stops after --max-minutes (reported as incomplete).
 * Writes {results.json,report.md} to the git-ignored reports/runs/<timestamp>-micro-memory/; with --publish to the
 * committed reports/micro/memory/<timestamp>/ and reports/micro/memory/latest/ (harness.ts, writeMicroReport).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { exitWithUsageError, numberOption, parseCommandLine } from '../lib/command-line.js';
import { Loader, type LoaderOutcome } from '../scenario/loader.js';
import { distScript, GATEWAY_CLI, ROOT } from '../scenario/paths.js';
import { readRss } from '../scenario/proc-sampler.js';
import { freePort, planCpus, spawnNode, stopProcess, tail, waitReady } from '../scenario/processes.js';
import { writeMicroReport } from './harness.js';

const HELP = `npm run bench:memory -- [options]
The gateway's RSS and live heap over many proxied requests (verdict: flat within ±10 % after warm-up). Writes
reports/runs/<timestamp>-micro-memory/ (git-ignored).

options:
  --requests N      proxied requests (default 1000000, at least 10)
  --connections C   load-generator connections (default 32)
  --max-minutes M   stop after this long whatever the count (default 30)
  --out DIR         write under DIR instead of reports/runs/
  --no-write        print only
  --publish         write the committed reports/micro/memory/ instead
  --no-pin          do not pin processes to CPUs
  -h, --help        this text
`;
const { values } = parseCommandLine(HELP, () =>
  parseArgs({
    options: {
      requests: { type: 'string' },
      connections: { type: 'string' },
      'max-minutes': { type: 'string' },
      out: { type: 'string' },
      'no-write': { type: 'boolean' },
      publish: { type: 'boolean' },
      'no-pin': { type: 'boolean' },
    },
  }),
);
let TOTAL: number, CONNECTIONS: number, MAX_MS: number;
try {
  TOTAL = numberOption('requests', values.requests ?? '1000000', { min: 10, integer: true })!;
  CONNECTIONS = numberOption('connections', values.connections ?? '32', { min: 1, integer: true })!;
  MAX_MS = numberOption('max-minutes', values['max-minutes'] ?? '30', { exclusiveMin: true })! * 60_000;
} catch (err) {
  exitWithUsageError(err);
}
const CHUNKS = 10;
const WARMUP = Math.max(20_000, Math.round(TOTAL * 0.05));
const TOLERANCE = 0.1;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const MB = (b: number) => b / (1024 * 1024);

async function settledRss(pid: number): Promise<number> {
  const reads: number[] = [];
  for (let i = 0; i < 5; i++) {
    await sleep(100);
    const r = readRss(pid);
    if (r !== null) reads.push(r);
  }
  if (reads.length === 0) throw new Error('cannot read the gateway RSS from /proc');
  return reads.sort((a, b) => a - b)[reads.length >> 1]!;
}

interface Checkpoint {
  /** proxied requests completed since the warm-up, when read */
  requests: number;
  pct: number;
  rssMB: number;
  deviationPct: number;
  /** mark-compacts so far (since the gateway started) */
  markCompacts: number;
  /** heap used right after the latest mark-compact (MB), null before the first */
  liveHeapMB: number | null;
}

/** Parses `node --trace-gc` lines: "[pid:0x…]  1234 ms: Mark-Compact 50.1 (80.2) -> 30.1 (79.0) MB, …". */
class GcTrace {
  markCompacts = 0;
  scavenges = 0;
  liveHeapMB: number | null = null;
  private partial = '';

  /** true when the chunk held only GC trace lines */
  push(chunk: Buffer): boolean {
    const text = this.partial + chunk.toString();
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    let other = false;
    for (const line of lines) {
      const m = /ms: (Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Compact)[^\d]*[\d.]+ \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB/.exec(line);
      if (m === null) {
        if (line.trim() !== '') other = true;
        continue;
      }
      if (m[1] === 'Mark-Compact' || m[1] === 'Mark-sweep') {
        this.markCompacts++;
        this.liveHeapMB = Number(m[2]);
      } else {
        this.scavenges++;
      }
    }
    return !other;
  }
}

async function main(): Promise<void> {
  const started = new Date();
  const deadline = Date.now() + MAX_MS;
  const plan = planCpus(values['no-pin'] === true);
  const work = mkdtempSync(join(tmpdir(), 'bench-memory-'));
  const children: ChildProcess[] = [];
  let loader: Loader | null = null;
  try {
    const upstreamPort = await freePort();
    const stub = spawnNode([distScript('upstream-stub.js'), '--port', String(upstreamPort), '--body-bytes', '256'], plan.loaderCpus, { stdio: 'ignore' });
    children.push(stub);
    await waitReady(stub, { port: upstreamPort }, 20_000, () => 'upstream stub');

    const [port, adminPort] = [await freePort(), await freePort()];
    const config = {
      server: { host: '127.0.0.1', port, workers: 0 },
      admin: { enabled: true, host: '127.0.0.1', port: adminPort },
      logging: { level: 'warn', accessLog: false },
      upstreams: { stub: { targets: [`http://127.0.0.1:${upstreamPort}`] } },
      routes: [{ path: '/api/*', methods: ['*'], upstream: 'stub' }],
    };
    writeFileSync(join(work, 'gateway.json'), JSON.stringify(config));
    const out = tail();
    // --trace-gc: every GC prints a line with the heap before/after; the heap after each mark-compact is the
    // live heap, which tells a leak (it climbs) from garbage not yet collected (RSS climbs, live heap does not)
    const gcs = new GcTrace();
    const gateway = spawnNode(['--trace-gc', GATEWAY_CLI, '--config', join(work, 'gateway.json')], plan.gatewayCpus, {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: ROOT,
      env: { ...process.env, NODE_ENV: 'production' },
    });
    children.push(gateway);
    gateway.stdout?.on('data', (d: Buffer) => {
      if (!gcs.push(d)) out.push(d);
    });
    gateway.stderr?.on('data', (d: Buffer) => out.push(d));
    await waitReady(gateway, { port, adminPort }, 20_000, () => `gateway:\n${out.text()}`);
    const pid = gateway.pid!;
    loader = await Loader.start(plan.loaderCpus);

    const requests = Array.from({ length: 64 }, (_, i) => ({ method: 'GET', path: `/api/items/${i + 1}` }));
    const drive = async (amount: number): Promise<LoaderOutcome> => {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('deadline');
      let handle: NodeJS.Timeout | undefined;
      const timer = new Promise<'deadline'>((r) => (handle = setTimeout(() => r('deadline'), left)));
      const job = loader!.run({ url: `http://127.0.0.1:${port}`, connections: CONNECTIONS, pipelining: 1, amount, timeoutS: 10, requests });
      const r = await Promise.race([job, timer]).finally(() => clearTimeout(handle));
      if (r === 'deadline') throw new Error('deadline');
      if (gateway.exitCode !== null || gateway.signalCode !== null) throw new Error(`gateway exited:\n${out.text()}`);
      return r;
    };

    process.stderr.write(
      `memory: ${TOTAL.toLocaleString('en-US')} proxied requests in ${CHUNKS} chunks after a ${WARMUP.toLocaleString('en-US')}-request warm-up (${plan.note}); stops after ${MAX_MS / 60_000} min\n`,
    );
    const rssStart = readRss(pid)!;
    const warm = await drive(WARMUP);
    const reference = await settledRss(pid);
    process.stderr.write(
      `  warm-up: ${warm.result.requests} requests, RSS ${MB(rssStart).toFixed(1)} MB at start → ${MB(reference).toFixed(1)} MB (reference)\n`,
    );

    const checkpoints: Checkpoint[] = [
      { requests: 0, pct: 0, rssMB: MB(reference), deviationPct: 0, markCompacts: gcs.markCompacts, liveHeapMB: gcs.liveHeapMB },
    ];
    const during: number[] = [];
    const poll = setInterval(() => {
      const r = readRss(pid);
      if (r !== null) during.push(r);
    }, 250);
    let done = 0;
    let errors = 0;
    let non2xx = 0;
    let timeouts = 0;
    let incomplete: string | null = null;
    const t0 = performance.now();
    try {
      for (let c = 0; c < CHUNKS; c++) {
        const amount = Math.floor(TOTAL / CHUNKS) + (c < TOTAL % CHUNKS ? 1 : 0);
        let r: LoaderOutcome;
        try {
          r = await drive(amount);
        } catch (err) {
          incomplete = (err as Error).message === 'deadline' ? `stopped by the ${MAX_MS / 60_000}-minute limit` : (err as Error).message;
          break;
        }
        done += r.result.requests;
        errors += r.result.errors;
        non2xx += r.result.non2xx;
        timeouts += r.result.timeouts;
        const rss = await settledRss(pid);
        const cp = {
          requests: done,
          pct: (100 * done) / TOTAL,
          rssMB: MB(rss),
          deviationPct: (100 * (rss - reference)) / reference,
          markCompacts: gcs.markCompacts,
          liveHeapMB: gcs.liveHeapMB,
        };
        checkpoints.push(cp);
        const rate = done / ((performance.now() - t0) / 1000);
        process.stderr.write(
          `  ${cp.pct.toFixed(0).padStart(3)}%  ${done.toLocaleString('en-US').padStart(10)} requests  RSS ${cp.rssMB.toFixed(1)} MB (${cp.deviationPct >= 0 ? '+' : ''}${cp.deviationPct.toFixed(1)}%)  live heap ${cp.liveHeapMB?.toFixed(1) ?? '–'} MB after ${cp.markCompacts} mark-compacts  ${Math.round(rate)} req/s${r.result.errors + r.result.non2xx > 0 ? `  ${r.result.errors} errors, ${r.result.non2xx} non-2xx` : ''}\n`,
        );
      }
    } finally {
      clearInterval(poll);
    }
    const maxDev = Math.max(...checkpoints.map((c) => Math.abs(c.deviationPct)));
    const flat = maxDev <= TOLERANCE * 100;
    const json = {
      kind: 'memory',
      startedAt: started.toISOString(),
      node: process.version,
      requests: { planned: TOTAL, completed: done, warmup: WARMUP, errors, non2xx, timeouts },
      connections: CONNECTIONS,
      pinning: plan.note,
      method:
        'gateway CLI, workers 0, one /api/* proxy route to the upstream stub (256-byte body), default upstream client; ' +
        'VmRSS of the gateway process from /proc; reference = after the warm-up; checkpoints after each 10% (median of 5 reads over 0.5 s, load paused); ' +
        "live heap = heap used after the latest mark-compact, from the gateway's --trace-gc output",
      rss: {
        startMB: MB(rssStart),
        referenceMB: MB(reference),
        duringMaxMB: during.length > 0 ? MB(Math.max(...during)) : null,
        duringMinMB: during.length > 0 ? MB(Math.min(...during)) : null,
        checkpoints,
      },
      gc: { scavenges: gcs.scavenges, markCompacts: gcs.markCompacts },
      verdict: { maxDeviationPct: maxDev, tolerancePct: TOLERANCE * 100, flat, incomplete },
    };
    const md = renderMarkdown(json);
    process.stdout.write(`${md}\n`);
    if (values['no-write'] !== true) {
      const dir = writeMicroReport('memory', json, md, {
        ...(values.out !== undefined ? { outDir: values.out } : {}),
        publish: values.publish === true,
        started,
      });
      process.stderr.write(`report: ${join(dir, 'report.md')}\n`);
    }
    // the verdict is in the report; only a run that could not finish is a failure of the tool
    if (incomplete !== null) process.exitCode = 1;
  } finally {
    if (loader !== null) await loader.stop();
    for (const c of children.reverse()) await stopProcess(c, 5000);
    rmSync(work, { recursive: true, force: true });
  }
}

interface Report {
  startedAt: string;
  node: string;
  requests: { planned: number; completed: number; warmup: number; errors: number; non2xx: number; timeouts: number };
  pinning: string;
  method: string;
  rss: { startMB: number; referenceMB: number; duringMaxMB: number | null; duringMinMB: number | null; checkpoints: Checkpoint[] };
  gc: { scavenges: number; markCompacts: number };
  verdict: { maxDeviationPct: number; tolerancePct: number; flat: boolean; incomplete: string | null };
}

function renderMarkdown(j: Report): string {
  const v = j.verdict;
  const status = v.incomplete !== null ? `INCOMPLETE (${v.incomplete})` : v.flat ? 'flat' : 'NOT flat';
  return [
    '# Gateway RSS over sustained proxying',
    '',
    `Node ${j.node}, ${j.startedAt}; ${j.pinning}.`,
    '',
    `Method: ${j.method}.`,
    '',
    `**${j.requests.completed.toLocaleString('en-US')} of ${j.requests.planned.toLocaleString('en-US')} proxied requests: max deviation from the post-warm-up RSS ${v.maxDeviationPct.toFixed(1)}% (target ±${v.tolerancePct}%) → ${status}.**`,
    '',
    `RSS at start ${j.rss.startMB.toFixed(1)} MB, after the ${j.requests.warmup.toLocaleString('en-US')}-request warm-up ${j.rss.referenceMB.toFixed(1)} MB (reference); ` +
      `sampled every 250 ms under load: ${j.rss.duringMinMB?.toFixed(1) ?? '–'} – ${j.rss.duringMaxMB?.toFixed(1) ?? '–'} MB. ` +
      `Errors ${j.requests.errors}, timeouts ${j.requests.timeouts}, non-2xx ${j.requests.non2xx}.`,
    '',
    `GC over the whole process life: ${j.gc.scavenges} scavenges, ${j.gc.markCompacts} mark-compacts. Live heap = heap used right after the latest mark-compact: ` +
      'if RSS climbs but the live heap does not, the growth is garbage not yet collected (or heap the GC chose to keep), not a leak.',
    '',
    '| checkpoint | requests | RSS MB | vs reference | mark-compacts so far | live heap MB |',
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
    ...j.rss.checkpoints.map(
      (c) =>
        `| ${c.pct.toFixed(0)}% | ${c.requests.toLocaleString('en-US')} | ${c.rssMB.toFixed(1)} | ${c.deviationPct >= 0 ? '+' : ''}${c.deviationPct.toFixed(1)}% | ${c.markCompacts} | ${c.liveHeapMB?.toFixed(1) ?? '–'} |`,
    ),
    '',
    'Reproduce: `npm run bench:memory -- --requests 1000000`.',
    '',
  ].join('\n');
}

await main();
