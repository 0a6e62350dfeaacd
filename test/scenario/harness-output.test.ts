/**
 * Issue 14, "harness output a person can trust": where runs land (git status unchanged unless --publish), what the
 * statistics in results.json are, "n=1, no CI", saturation and expected-404 lines, the ETA and the README's table,
 * and which variant `profile` picks without --variant. The CLI runs are real processes (dist/), tiny and bounded.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etaTableMarkdown, shippedScenarioEtas } from '../../scripts/scenario/eta-table.js';
import { estimateSeconds, formatDuration, PER_RUN_OVERHEAD_S, remainingSeconds, STARTUP_S } from '../../scripts/scenario/eta.js';
import { non2xxBreakdown, non2xxText } from '../../scripts/scenario/interpret.js';
import { loadScenario } from '../../scripts/scenario/load-scenario.js';
import { profileDir, runDir, RUNS_DIR } from '../../scripts/scenario/output.js';
import { ROOT } from '../../scripts/scenario/paths.js';
import { profileTarget } from '../../scripts/scenario/profile-target.js';
import { formatTick, logTicks } from '../../scripts/scenario/report/charts.js';
import { validateResults, type Results, type RunResult } from '../../scripts/scenario/results.js';
import { expandMatrix } from '../../scripts/scenario/variants.js';

function git(args: string[]): string {
  const r = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/**
 * What a harness run could leave behind: changes under reports/, and new untracked files at the repository root or
 * in the harness's own folders. (Other work in the same checkout touches core/, variants/, test/: not compared.)
 */
function harnessFootprint(): string[] {
  const reports = git(['status', '--porcelain', '--untracked-files=all', '--', 'reports']).split('\n').filter(Boolean);
  const untracked = git(['ls-files', '--others', '--exclude-standard'])
    .split('\n')
    .filter((f) => f !== '' && (!f.includes('/') || /^(scripts|scenarios|reports)\//.test(f)));
  return [...reports, ...untracked.map((f) => `?? ${f}`)].sort();
}

function ignored(path: string): boolean {
  return spawnSync('git', ['check-ignore', '-q', relative(ROOT, path)], { cwd: ROOT }).status === 0;
}

function node(args: string[], timeout = 120_000) {
  return spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout, env: { ...process.env, CI: '' } });
}

describe('where runs land', () => {
  it('by default in the git-ignored reports/runs/; --publish in the committed layout', () => {
    const at = '2026-01-02T03:04:05.678Z';
    const scratch = runDir('smoke', at, {});
    expect(scratch).toBe(join(RUNS_DIR, '2026-01-02T03-04-05Z-smoke'));
    expect(ignored(scratch)).toBe(true);
    expect(runDir('smoke', at, { publish: true })).toBe(join(ROOT, 'reports', 'smoke', '2026-01-02T03-04-05Z'));
    expect(ignored(runDir('smoke', at, { publish: true }))).toBe(false);
    const prof = profileDir('routers', 'router=hybrid', 'flame', at);
    expect(dirname(prof)).toBe(RUNS_DIR);
    expect(prof).toContain('profile-routers-router-hybrid-flame');
    expect(ignored(prof)).toBe(true);
  });
});

describe('a one-repetition scenario run from the CLI (real processes)', () => {
  let before: string[];
  let after: string[];
  let out: ReturnType<typeof node>;
  let dir: string;

  beforeAll(() => {
    before = harnessFootprint();
    out = node([join(ROOT, 'dist/scripts/scenario.js'), 'smoke', '--repetitions', '1', '--duration', '1', '--warmup', '0']);
    after = harnessFootprint();
    const m = /report: (\S+)\/report\.md/.exec(out.stdout);
    dir = m?.[1] ?? '';
  }, 150_000);

  afterAll(() => {
    if (dir !== '' && dir.startsWith(RUNS_DIR)) rmSync(dir, { recursive: true, force: true });
  });

  it('leaves git status unchanged and says where the ignored report is', () => {
    expect(out.status, out.stderr).toBe(0);
    expect(dir.startsWith(`${RUNS_DIR}/`)).toBe(true);
    expect(existsSync(join(dir, 'report.md'))).toBe(true);
    expect(ignored(dir)).toBe(true);
    expect(after).toEqual(before);
    expect(out.stdout).toContain('git-ignored');
  });

  it('prints an ETA before the runs and an updated one after each', () => {
    expect(out.stderr).toMatch(/^ETA \d+ s \(updated as runs finish\)$/m);
    expect(out.stderr).toMatch(/\[1\/2\] .* — ETA \d+ s$/m);
  });

  it('results.json names its statistics', () => {
    const r = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as Results;
    expect(validateResults(r)).toEqual([]);
    expect(r.statistics).toMatchObject({
      statistic: 'median',
      over: 'repetitions',
      interval: { method: 'percentile bootstrap', level: 0.95, resamples: 4000, minSamples: 2 },
      ratio: { statistic: 'ratio of medians', method: 'percentile bootstrap', level: 0.95 },
    });
    expect(Object.keys(r.statistics!.fields).sort()).toEqual(['estimate', 'hi', 'lo']);
    // the smoke mix asks for /missing/… 5% of the time on purpose
    expect(r.traffic!.expectedStatusShare).toEqual({ '404': 0.05 });
  });

  it('reports gateway CPU µs per request beside throughput, for every variant', () => {
    const r = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as Results;
    for (const v of r.summary.variants) {
      const run = r.runs.find((x) => x.variant === v.variant)!;
      // one run: the median is that run's CPU seconds ÷ its requests
      expect(v.cpuUsPerRequest?.estimate).toBeCloseTo((run.gateway!.cpuS! * 1e6) / run.requests, 6);
      expect(v.cpuUsPerRequest!.estimate).toBeGreaterThan(0);
    }
    expect(r.summary.comparisons[0]?.cpuPerRequest?.ratio.estimate).toBeGreaterThan(0);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    for (const text of [out.stdout, md]) expect(text).toContain('CPU µs/req');
  });

  it('with n=1 prints "n=1, no CI" and no zero-width interval, in the terminal and report.md', () => {
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    for (const text of [out.stdout, md]) {
      expect(text).toContain('n=1, no CI');
      expect(text).toContain('no verdict (n=1, no CI)');
      expect(text).not.toMatch(/\[([\d.,]+) – \1\]/);
    }
  });

  it('says what bounded each variant and explains the intended 404s', () => {
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    for (const text of [out.stdout, md]) {
      expect(text).toContain('Reading the numbers');
      expect(text).toMatch(
        /baseline\W+bare server at \d+% CPU, loader at \d+%: (neither saturated — the numbers measure latency, not capacity|bare server-bound|loader-bound|both saturated)/,
      );
      expect(text).toMatch(/expected 404s: [\d,]+ \(the mix's miss share, 5\.0% of requests; [\d.]+% observed\); unexpected non-2xx: 0/);
    }
  });
});

describe('ETA', () => {
  it('is repetitions × variants × (warmup + duration + per-run overhead) + start-up', () => {
    const plan = { variants: 9, repetitions: 5, warmupS: 3, durationS: 10 };
    expect(estimateSeconds(plan)).toBe(STARTUP_S + 45 * (13 + PER_RUN_OVERHEAD_S));
    expect(estimateSeconds({ ...plan, calibration: true })).toBe(STARTUP_S + 46 * (13 + PER_RUN_OVERHEAD_S));
    // before any run finished: the plan; after: this machine's measured pace
    expect(remainingSeconds(plan, 0, 45, 0)).toBe(45 * (13 + PER_RUN_OVERHEAD_S));
    expect(remainingSeconds(plan, 9, 45, 180)).toBe(36 * 20);
    expect(remainingSeconds(plan, 45, 45, 900)).toBe(0);
    expect([formatDuration(45), formatDuration(200), formatDuration(120), formatDuration(3900)]).toEqual(['45 s', '3 min 20 s', '2 min', '1 h 05 min']);
  });

  it("docs/benchmarks.md's table is what the ETA function computes from each shipped scenario", async () => {
    const table = etaTableMarkdown(await shippedScenarioEtas());
    const doc = readFileSync(join(ROOT, 'docs/benchmarks.md'), 'utf8');
    expect(doc).toContain(table);
  });
});

describe('profile target', () => {
  it('without --variant profiles the gateway, never the baseline', async () => {
    for (const name of ['smoke', 'routers', 'baseline', 'latency']) {
      const s = loadScenario(name).scenario;
      const variants = await expandMatrix(s);
      expect(variants.some((v) => v.kind === 'baseline')).toBe(true);
      const { variant } = profileTarget(variants, false, s.baselineVariant);
      expect(variant.kind, name).toBe('gateway');
    }
    const routers = loadScenario('routers').scenario;
    expect(profileTarget(await expandMatrix(routers), false, routers.baselineVariant).variant.id).toBe('router=hybrid');
  });

  it('with --variant profiles what was asked, the baseline included', async () => {
    const variants = await expandMatrix(loadScenario('smoke').scenario);
    expect(
      profileTarget(
        variants.filter((v) => v.id === 'baseline'),
        true,
        'baseline',
      ).variant.id,
    ).toBe('baseline');
    expect(() => profileTarget([], true, undefined)).toThrow(/matches no variant/);
  });
});

describe('non-2xx the mix intends', () => {
  const results = {
    traffic: { cycle: 1000, expectedStatusShare: { '404': 0.1 } },
    scenario: { definition: { load: { connections: 1 } } },
  } as unknown as Results;
  const run = (status: Partial<RunResult['status']>): RunResult => {
    const s = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, ...status };
    return { requests: s['2xx'] + s['3xx'] + s['4xx'] + s['5xx'], non2xx: s['3xx'] + s['4xx'] + s['5xx'], status: s } as RunResult;
  };

  it('counts the mix share of 404s as expected and everything else as unexpected', () => {
    const ok = non2xxBreakdown(results, [run({ '2xx': 9000, '4xx': 1000 })]);
    expect(ok).toMatchObject({ total: 1000, unexpected: 0, expected: [{ label: '404', count: 1000, share: 0.1 }] });
    expect(non2xxText(ok)).toBe("expected 404s: 1,000 (the mix's miss share, 10.0% of requests; 10.0% observed); unexpected non-2xx: 0");
    // 5xx are never expected; 4xx far beyond the share are not either
    expect(non2xxBreakdown(results, [run({ '2xx': 8990, '4xx': 1000, '5xx': 10 })]).unexpected).toBe(10);
    expect(non2xxBreakdown(results, [run({ '2xx': 5000, '4xx': 5000 })]).unexpected).toBeGreaterThan(3000);
    // a mix without misses expects none
    const none = { ...results, traffic: { cycle: 1000, expectedStatusShare: {} } } as Results;
    expect(non2xxBreakdown(none, [run({ '2xx': 990, '4xx': 10 })]).unexpected).toBe(10);
  });
});

describe('log axis ticks', () => {
  it('are 1-2-5 × 10^k (powers of 10 only over many decades), never every integer mantissa', () => {
    expect(logTicks(0.1, 10)).toEqual([0.1, 0.2, 0.5, 1, 2, 5, 10]);
    expect(logTicks(0.01, 100)).toEqual([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]);
    expect(logTicks(0.01, 1000)).toEqual([0.01, 0.1, 1, 10, 100, 1000]);
    expect(logTicks(0.001, 10_000)).toEqual([0.001, 0.01, 0.1, 1, 10, 100, 1000, 10_000]);
    expect([0.05, 0.5, 2, 20, 500, 2000, 10_000].map(formatTick)).toEqual(['0.05', '0.5', '2', '20', '500', '2k', '10k']);
  });
});

describe('profile end to end', () => {
  it('profiles the gateway by default and leaves git status unchanged', () => {
    const before = harnessFootprint();
    const out = mkdtempSync(join(tmpdir(), 'profile-out-'));
    rmSync(out, { recursive: true });
    const r = node([join(ROOT, 'dist/scripts/profile.js'), 'smoke', '--tool', '0x', '--duration', '1', '--warmup', '0'], 240_000);
    const m = /^profile: (\S+)\/0x\.html/m.exec(r.stdout);
    try {
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(m).not.toBeNull();
      const dir = m![1]!;
      expect(dir.startsWith(`${RUNS_DIR}/`)).toBe(true);
      const summary = readFileSync(join(dir, 'summary.md'), 'utf8');
      expect(summary).toContain('`smoke` / `router=hybrid` under 0x');
      expect(harnessFootprint()).toEqual(before);
    } finally {
      if (m !== null && m[1]!.startsWith(RUNS_DIR)) rmSync(m[1]!, { recursive: true, force: true });
    }
  }, 300_000);
});
