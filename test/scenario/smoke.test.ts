import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/scenario/paths.js';
import { validateResults, type Results } from '../../scripts/scenario/results.js';
import { runScenario, type ScenarioRun } from '../../scripts/scenario/runner.js';
import { rerender } from '../../scripts/scenario/report/write.js';

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// Child processes (gateway, baseline, loader, preload) run from dist/: build first. tsc still emits when files
// other engineers are editing have type errors, so only a missing output is fatal.
function build(): void {
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  for (const f of ['dist/core/cli.js', 'dist/scripts/scenario/loader-child.js', 'dist/scripts/scenario/baseline-server.js']) {
    if (!existsSync(join(ROOT, f))) throw new Error(`build did not produce ${f}:\n${r.stdout}\n${r.stderr}`);
  }
}

describe('scenario runner: smoke end to end (real gateway processes)', () => {
  let out: string;
  let run: ScenarioRun;

  beforeAll(async () => {
    build();
    out = mkdtempSync(join(tmpdir(), 'scenario-test-'));
    run = await runScenario({ scenario: 'smoke', durationS: 1, warmupS: 0.5, repetitions: 2, outDir: out, progress: false });
  }, 120_000);

  afterAll(() => {
    if (out !== undefined) rmSync(out, { recursive: true, force: true });
  });

  it('writes results.json that is valid against its schema', () => {
    const file = join(run.dir, 'results.json');
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Results;
    expect(validateResults(parsed)).toEqual([]);
    expect(parsed.scenario.name).toBe('smoke');
    expect(parsed.scenario.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(parsed.environment.node).toBe(process.version);
    expect(parsed.environment.cores).toBeGreaterThanOrEqual(1);
    expect(parsed.environment.loadavgBefore).toHaveLength(3);
    // and the schema is not a rubber stamp
    expect(validateResults({ ...parsed, runs: [{ ...parsed.runs[0], rps: -1 }] }).length).toBeGreaterThan(0);
  });

  it('ran every variant, repetitions interleaved (A B A B), with measurements from the real processes', () => {
    const runs = run.results.runs;
    expect(runs.map((r) => r.variant)).toEqual(['baseline', 'router=hybrid', 'baseline', 'router=hybrid']);
    expect(runs.map((r) => r.repetition)).toEqual([0, 0, 1, 1]);
    for (const r of runs) {
      expect(r.requests).toBeGreaterThan(0);
      expect(r.rps).toBeGreaterThan(0);
      expect(r.errors).toBe(0);
      expect(r.status['5xx']).toBe(0);
      // 5% of the mix asks for a path no route serves: both the gateway and the baseline answer 404
      expect(r.status['4xx']).toBeGreaterThan(0);
      expect(r.status['2xx']).toBeGreaterThan(r.status['4xx']);
      expect(r.latencyMs.p50).toBeGreaterThan(0);
      expect(r.latencyMs.p99).toBeGreaterThanOrEqual(r.latencyMs.p50);
      expect(r.latencyMs.max).toBeGreaterThanOrEqual(r.latencyMs.p999);
      expect(r.gateway).not.toBeNull();
      expect(r.gateway!.cpuPct).toBeGreaterThan(0);
      expect(r.gateway!.rssMaxMB).toBeGreaterThan(5);
      expect(r.diagnostics).not.toBeNull();
      expect(r.loader.cpuPct).toBeGreaterThan(0);
    }
    const s = run.results.summary;
    expect(s.baselineVariant).toBe('baseline');
    expect(s.variants.map((v) => v.variant)).toEqual(['baseline', 'router=hybrid']);
    expect(s.comparisons).toHaveLength(1);
    expect(['faster', 'slower', 'no difference']).toContain(s.comparisons[0]!.throughput.verdict);
  });

  it('writes report.md, report.html and non-empty PNG charts', () => {
    const md = readFileSync(join(run.dir, 'report.md'), 'utf8');
    expect(md).toContain('# Scenario `smoke`');
    expect(md).toContain('Verdicts against `baseline`');
    expect(md).toContain('## How to reproduce');
    for (const png of ['throughput.png', 'latency.png', 'ratio.png']) {
      const file = join(run.dir, png);
      const bytes = readFileSync(file);
      expect(bytes.subarray(0, 8).equals(PNG_MAGIC), png).toBe(true);
      expect(statSync(file).size, png).toBeGreaterThan(5_000);
      expect(md).toContain(`](${png})`);
    }
    const html = readFileSync(join(run.dir, 'report.html'), 'utf8');
    expect(html.match(/src="data:image\/png;base64,/g)).toHaveLength(3);
    expect(html).toContain('router=hybrid');
  });

  it('points reports/latest/<scenario> and the index at the newest report', () => {
    expect(readFileSync(join(out, 'latest', 'smoke', 'report.md'), 'utf8')).toBe(readFileSync(join(run.dir, 'report.md'), 'utf8'));
    const index = readFileSync(join(out, 'index.md'), 'utf8');
    expect(index).toContain(`smoke/${run.dir.split('/').pop()}/report.md`);
  });

  it('re-rendering from results.json reproduces report.md byte for byte', async () => {
    const mdFile = join(run.dir, 'report.md');
    const before = readFileSync(mdFile);
    writeFileSync(mdFile, 'clobbered');
    rmSync(join(run.dir, 'throughput.png'));
    await rerender(run.dir);
    expect(readFileSync(mdFile).equals(before)).toBe(true);
    expect(readFileSync(join(run.dir, 'throughput.png')).subarray(0, 8).equals(PNG_MAGIC)).toBe(true);
  });
});
