#!/usr/bin/env node
// Runs the whole suite again and again, the way CI runs it, to catch the tests that fail by chance.
// Plain JS on purpose: every run deletes dist/, so this cannot run from there.
//
//   npm run test:repeat -- --runs 10 [--load] [test/some/dir ...]
//
// Each run: rm -rf dist, a full build, then `vitest run` with CI=true and the JSON reporter beside the default
// one. Failing tests are printed with their run number as soon as a run ends; everything lands in
// test-repeat/<start time>/ (git-ignored): summary.md and summary.json, each run's JSON report, and the full log
// of every run that failed (logs of green runs are deleted: they say nothing the summary does not).
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { ROOT } from './build.mjs';

const USAGE = `usage: npm run test:repeat -- [options] [vitest file filters...]

Runs the suite N times, each with a fresh dist/ (rm -rf dist, build) and CI=true, and reports every failing
test with its run number. Logs of failed runs, the JSON reports and a summary go to test-repeat/<time>/.

options:
  --runs N        how many runs (default 1)
  --load          keep one CPU busy beside the suite (a busy-looping child process, ended with the runs)
  --stop-on-fail  stop after the first failed run
  --slowest K     how many of the slowest tests the summary lists (default 15)
  --out DIR       where to write (default test-repeat/<time>)
  --verbose       also stream vitest's output to this terminal
  --help          print this and exit
`;

/** The parsed command line, or a one-line reason it is wrong. */
function parseArgs(argv) {
  const opts = { runs: 1, load: false, stopOnFail: false, slowest: 15, out: null, verbose: false, filters: [], help: false };
  const positiveInt = (name, value) => {
    if (value === undefined || !/^[1-9]\d*$/.test(value))
      throw new Error(`${name} needs a positive whole number, got ${value === undefined ? 'nothing' : `"${value}"`}`);
    return Number(value);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '--help':
      case '-h':
        opts.help = true;
        break;
      case '--runs':
        opts.runs = positiveInt('--runs', value());
        break;
      case '--slowest':
        opts.slowest = positiveInt('--slowest', value());
        break;
      case '--out': {
        const v = value();
        if (v === undefined || v === '') throw new Error('--out needs a folder');
        opts.out = v;
        break;
      }
      case '--load':
        opts.load = true;
        break;
      case '--stop-on-fail':
        opts.stopOnFail = true;
        break;
      case '--verbose':
        opts.verbose = true;
        break;
      default:
        if (a.startsWith('-')) throw new Error(`unknown option ${a} (see --help)`);
        opts.filters.push(a);
    }
  }
  return opts;
}

/**
 * One CPU kept busy the way a neighbour on a shared CI machine does. Bounded on its own, in case this process
 * dies without running its exit handlers (SIGKILL): it stops at its deadline, or as soon as its parent is gone.
 */
function startLoad(maxMs) {
  const code = `
    const end = Date.now() + ${Math.round(maxMs)};
    const parent = process.ppid;
    let x = 0;
    for (;;) {
      for (let i = 0; i < 5e6; i++) x = (x + i * 7) % 1000003;
      if (Date.now() > end || process.ppid !== parent) process.exit(0);
    }`;
  const child = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
  child.unref();
  return child;
}

/** Runs a command; its stdout and stderr go to `log` (and to this terminal with --verbose). Resolves with its exit code. */
function run(cmd, args, { env, log, verbose, onChild }) {
  return new Promise((resolve) => {
    // Its own process group: stopping a run must also stop what the tests started (gateways, their workers,
    // redis), which a killed vitest fork would leave behind.
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    onChild(child);
    for (const stream of [child.stdout, child.stderr]) {
      stream.on('data', (chunk) => {
        log.write(chunk);
        if (verbose) process.stdout.write(chunk);
      });
    }
    child.on('error', (err) => {
      log.write(`\n[test-repeat] could not start ${cmd}: ${err.message}\n`);
      resolve(127);
    });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

const closeLog = (log) => new Promise((resolve) => log.end(resolve));
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** What a run's JSON report says: failing tests, failing files without a failing test, and every test's duration. */
function readReport(file) {
  if (!existsSync(file)) return null;
  let report;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
  const failures = [];
  const durations = [];
  const files = [];
  for (const f of report.testResults ?? []) {
    const name = relative(ROOT, f.name);
    files.push({ file: name, ms: Math.max(0, (f.endTime ?? 0) - (f.startTime ?? 0)) });
    let failedTests = 0;
    for (const t of f.assertionResults ?? []) {
      if (typeof t.duration === 'number') durations.push({ file: name, test: t.fullName, ms: t.duration });
      if (t.status === 'failed') {
        failedTests++;
        failures.push({ file: name, test: t.fullName, title: t.title, message: firstLine(t.failureMessages?.[0] ?? '') });
      }
    }
    if (f.status === 'failed' && failedTests === 0) failures.push({ file: name, test: '(file: no test failed)', message: firstLine(f.message ?? '') });
  }
  return { failures, durations, files, counts: { passed: report.numPassedTests, failed: report.numFailedTests, total: report.numTotalTests } };
}

function firstLine(text) {
  const line =
    String(text)
      .split('\n')
      .find((l) => l.trim() !== '') ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/**
 * The error line the default reporter printed under "FAIL  <file> > … > <title>": the JSON report has only the
 * stack, which for a timeout is a placeholder (STACK_TRACE_ERROR).
 */
function messageFromLog(text, failure) {
  if (failure.title === undefined) return null;
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith(` FAIL  ${failure.file} `) && l.trimEnd().endsWith(`> ${failure.title}`));
  if (at === -1) return null;
  const next = lines.slice(at + 1).find((l) => l.trim() !== '');
  return next === undefined ? null : firstLine(next);
}

/** Per-file wall times as the default reporter prints them ("✓ test/a.test.ts (12 tests) 3456ms"): they include hooks. */
function fileTimesFromLog(text) {
  const out = new Map();
  // eslint-disable-next-line no-control-regex
  const plain = text.replace(/\u001b\[[0-9;]*m/g, '');
  for (const m of plain.matchAll(/^\s*[✓❯×↓✗]\s+(\S+\.test\.ts)\s+\([^)]*\)\s+(\d+(?:\.\d+)?)(ms|s)\b/gmu)) {
    out.set(m[1], Number(m[2]) * (m[3] === 's' ? 1000 : 1));
  }
  return out;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`test:repeat: ${err.message}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }

  const started = new Date();
  const outDir =
    opts.out ??
    join(
      ROOT,
      'test-repeat',
      started
        .toISOString()
        .replace(/:/g, '-')
        .replace(/\.\d+Z$/, 'Z'),
    );
  mkdirSync(outDir, { recursive: true });

  let current = null;
  let loadChild = null;
  let stopping = false;
  const signalGroup = (child, sig) => {
    try {
      process.kill(-child.pid, sig);
    } catch {
      // the group is gone already
    }
  };
  const groupAlive = (child) => {
    try {
      process.kill(-child.pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  // Synchronous, so that it also runs from the 'exit' event: whatever is still running is killed outright.
  const cleanup = () => {
    if (current) signalGroup(current, 'SIGKILL');
    if (loadChild && loadChild.exitCode === null && loadChild.signalCode === null) loadChild.kill('SIGKILL');
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\ntest:repeat: ${sig}, stopping (partial results in ${relative(ROOT, outDir) || outDir})\n`);
      // vitest and the gateways get a moment to close what they hold, then the whole group is killed.
      stopping = true;
      if (current) signalGroup(current, 'SIGTERM');
      setTimeout(() => process.exit(130), 3000);
    });
  }

  if (opts.load) {
    // Bounded by 30 minutes a run even if this process is killed without a chance to end it.
    loadChild = startLoad(opts.runs * 30 * 60_000);
  }
  const env = { ...process.env, CI: 'true', NO_COLOR: '1' };
  delete env.FORCE_COLOR;
  const vitestBin = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
  const runs = [];
  process.stdout.write(
    `test:repeat: ${opts.runs} run(s)${opts.load ? ', one CPU busy beside the suite' : ''}, ${cpus().length} CPUs, load average ${load()}; output in ${relative(ROOT, outDir) || outDir}\n`,
  );

  for (let n = 1; n <= opts.runs; n++) {
    const logFile = join(outDir, `run-${n}.log`);
    const jsonFile = join(outDir, `run-${n}.json`);
    const log = createWriteStream(logFile);
    const record = {
      run: n,
      startedAt: new Date().toISOString(),
      loadBefore: load(),
      buildMs: 0,
      testMs: 0,
      wallMs: 0,
      exitCode: 0,
      failures: [],
      counts: null,
    };
    const t0 = Date.now();
    rmSync(join(ROOT, 'dist'), { recursive: true, force: true });
    const buildCode = await run(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { env, log, verbose: opts.verbose, onChild: (c) => (current = c) });
    record.buildMs = Date.now() - t0;
    let text = '';
    if (buildCode !== 0) {
      record.exitCode = buildCode;
      record.failures.push({ file: '(build)', test: 'build failed', message: `scripts/build.mjs exited ${buildCode}` });
    } else {
      const t1 = Date.now();
      const args = [vitestBin, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${jsonFile}`, ...opts.filters];
      record.exitCode = await run(process.execPath, args, { env, log, verbose: opts.verbose, onChild: (c) => (current = c) });
      record.testMs = Date.now() - t1;
      const report = readReport(jsonFile);
      await closeLog(log);
      text = readFileSync(logFile, 'utf8');
      if (report) {
        record.failures = report.failures.map((f) => ({ ...f, message: messageFromLog(text, f) ?? f.message }));
        record.counts = report.counts;
        record.durations = report.durations;
        const fromLog = fileTimesFromLog(text);
        record.files = report.files.map((f) => ({ file: f.file, ms: fromLog.get(f.file) ?? f.ms }));
      }
      if (record.exitCode !== 0 && record.failures.length === 0) {
        const why = /Unhandled (?:Rejection|Error)s?/.test(text)
          ? 'unhandled error outside any test'
          : report
            ? 'no failing test in the report'
            : 'no JSON report written';
        record.failures.push({ file: '(run)', test: `vitest exited ${record.exitCode}`, message: `${why} (see the log)` });
      }
    }
    if (!log.closed) await closeLog(log);
    record.wallMs = Date.now() - t0;
    record.loadAfter = load();
    // Anything of the run's process group still alive was left behind by a test: say so, and end it before the
    // next run starts beside it.
    if (current && groupAlive(current)) {
      record.leftBehind = true;
      signalGroup(current, 'SIGKILL');
    }
    current = null;
    if (stopping) break;
    const failed = record.exitCode !== 0 || record.failures.length > 0;
    if (!failed) rmSync(logFile, { force: true });
    runs.push(record);

    const c = record.counts;
    process.stdout.write(
      `run ${n}/${opts.runs}: ${failed ? 'FAILED' : 'green'} in ${seconds(record.wallMs)} (build ${seconds(record.buildMs)}, tests ${seconds(record.testMs)})` +
        `${c ? `, ${c.passed} passed, ${c.failed} failed` : ''}; load ${record.loadBefore} → ${record.loadAfter}\n`,
    );
    for (const f of record.failures) process.stdout.write(`  run ${n} FAIL ${f.file} > ${f.test}\n    ${f.message}\n`);
    if (record.leftBehind) process.stdout.write(`  run ${n} left processes behind (killed): a test does not stop what it started\n`);
    if (failed) process.stdout.write(`  log: ${relative(ROOT, logFile)}\n`);
    writeSummary(outDir, opts, started, runs);
    if (failed && opts.stopOnFail) break;
  }

  cleanup();
  const failedRuns = runs.filter((r) => r.exitCode !== 0 || r.failures.length > 0).length;
  process.stdout.write(`test:repeat: ${runs.length - failedRuns}/${runs.length} runs green; summary in ${relative(ROOT, join(outDir, 'summary.md'))}\n`);
  return failedRuns === 0 ? 0 : 1;
}

/** summary.json (everything) and summary.md (runs, failures, slowest tests and files), rewritten after every run. */
function writeSummary(outDir, opts, started, runs) {
  const slow = new Map();
  const slowFiles = new Map();
  for (const r of runs) {
    for (const d of r.durations ?? []) {
      const key = `${d.file} > ${d.test}`;
      (slow.get(key) ?? slow.set(key, []).get(key)).push(d.ms);
    }
    for (const f of r.files ?? []) (slowFiles.get(f.file) ?? slowFiles.set(f.file, []).get(f.file)).push(f.ms);
  }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const ranked = (m, k) =>
    [...m]
      .map(([name, xs]) => ({ name, median: median(xs), max: Math.max(...xs), n: xs.length }))
      .sort((a, b) => b.median - a.median)
      .slice(0, k);
  const slowest = ranked(slow, opts.slowest);
  const slowestFiles = ranked(slowFiles, opts.slowest);
  const failedRuns = runs.filter((r) => r.exitCode !== 0 || r.failures.length > 0);

  const json = {
    startedAt: started.toISOString(),
    options: { runs: opts.runs, load: opts.load, filters: opts.filters },
    cpus: cpus().length,
    runs: runs.map(({ durations: _d, ...r }) => r),
    slowestTests: slowest,
    slowestFiles,
  };
  writeFileSync(join(outDir, 'summary.json'), `${JSON.stringify(json, null, 2)}\n`);

  const lines = [
    `# test:repeat ${started.toISOString()}`,
    '',
    `${runs.length} of ${opts.runs} run(s) done${opts.load ? ', one CPU busy beside the suite (--load)' : ''}, ${cpus().length} CPUs; ` +
      `${runs.length - failedRuns.length} green, ${failedRuns.length} failed.${opts.filters.length ? ` Filters: ${opts.filters.join(' ')}.` : ''}`,
    '',
    '| run | result | wall | build | tests | passed | failed | load avg before → after (1/5/15 min) |',
    '|---:|---|---:|---:|---:|---:|---:|---|',
    ...runs.map((r) => {
      const bad = r.exitCode !== 0 || r.failures.length > 0;
      return `| ${r.run} | ${bad ? 'FAILED' : 'green'}${r.leftBehind ? ' (left processes behind)' : ''} | ${seconds(r.wallMs)} | ${seconds(r.buildMs)} | ${seconds(r.testMs)} | ${r.counts?.passed ?? '–'} | ${r.counts?.failed ?? '–'} | ${r.loadBefore} → ${r.loadAfter} |`;
    }),
    '',
    '## Failures',
    '',
    ...(failedRuns.length === 0
      ? ['None.']
      : failedRuns.flatMap((r) => r.failures.map((f) => `- run ${r.run}: \`${f.file}\` > ${f.test}: ${f.message.replace(/\|/g, '\\|')}`))),
    '',
    `## Slowest ${slowest.length} tests (median over runs)`,
    '',
    '| test | median | max |',
    '|---|---:|---:|',
    ...slowest.map((s) => `| ${s.name.replace(/\|/g, '\\|')} | ${seconds(s.median)} | ${seconds(s.max)} |`),
    '',
    `## Slowest ${slowestFiles.length} files (median over runs, as the default reporter timed them)`,
    '',
    '| file | median | max |',
    '|---|---:|---:|',
    ...slowestFiles.map((s) => `| ${s.name} | ${seconds(s.median)} | ${seconds(s.max)} |`),
    '',
  ];
  writeFileSync(join(outDir, 'summary.md'), lines.join('\n'));
}

process.exitCode = await main();
