import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGatewayConfig, writeNoopPlugins } from '../../scripts/scenario/gateway-config.js';
import { loadScenario } from '../../scripts/scenario/load-scenario.js';
import { ROOT, distScript, GATEWAY_CLI } from '../../scripts/scenario/paths.js';
import { freePort, spawnNode, stopProcess, waitReady } from '../../scripts/scenario/processes.js';
import { reportDirName, rerender } from '../../scripts/scenario/report/write.js';
import { validateResults, type Results } from '../../scripts/scenario/results.js';
import { runScenario, type ScenarioRun } from '../../scripts/scenario/runner.js';
import { buildAnswerTable, buildRequests, expandMix } from '../../scripts/scenario/traffic.js';

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// Child processes (gateway, baseline, loader, preload) run from dist/, which the global setup has brought up to
// date. No tsc here: a second build rewrites dist/ while other test files spawn the gateway from it, and a
// half-written module then fails their start (seen as "does not provide an export named ..." in workers.test).
beforeAll(() => {
  for (const f of ['dist/core/cli.js', 'dist/scripts/scenario/loader-child.js', 'dist/scripts/scenario/baseline-server.js']) {
    if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: run the tests through npm test (it builds first)`);
  }
});

describe('scenario runner: smoke end to end (real gateway processes)', () => {
  let out: string;
  let run: ScenarioRun;

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'scenario-test-'));
    // publish: the committed layout (<out>/smoke/<timestamp>/, latest/, index.md), here under a temp root
    run = await runScenario({ scenario: 'smoke', durationS: 1, warmupS: 0.5, repetitions: 2, outDir: out, publish: true, progress: false });
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
    // the smoke run measures the gateway's CPU, so its report charts CPU per request too
    for (const png of ['throughput.png', 'latency.png', 'ratio.png', 'cpu.png']) {
      const file = join(run.dir, png);
      const bytes = readFileSync(file);
      expect(bytes.subarray(0, 8).equals(PNG_MAGIC), png).toBe(true);
      expect(statSync(file).size, png).toBeGreaterThan(5_000);
      expect(md).toContain(`](${png})`);
    }
    const html = readFileSync(join(run.dir, 'report.html'), 'utf8');
    expect(html.match(/src="data:image\/png;base64,/g)).toHaveLength(4);
    expect(html).toContain('router=hybrid');
  });

  it('--publish makes reports/latest/<scenario> the newest report, keeps no uncited copy, and indexes it', () => {
    // No page cites this run, so its timestamped directory is pruned and latest/ is where it lives.
    expect(run.dir).toBe(join(out, 'latest', 'smoke'));
    expect(existsSync(join(out, 'smoke'))).toBe(false);
    const index = readFileSync(join(out, 'index.md'), 'utf8');
    expect(index).toContain(`- [latest](latest/smoke/report.md) (${reportDirName(run.results.startedAt)})`);
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

async function fetchAll(port: number, reqs: Array<{ method: string; path: string; body?: string; headers?: Record<string, string> }>) {
  const out: Array<{ status: number; type: string | null; body: string }> = [];
  for (const r of reqs) {
    const res = await fetch(`http://127.0.0.1:${port}${r.path}`, {
      method: r.method,
      ...(r.headers !== undefined ? { headers: r.headers } : {}),
      ...(r.body !== undefined ? { body: r.body } : {}),
    });
    out.push({ status: res.status, type: res.headers.get('content-type'), body: await res.text() });
  }
  return out;
}

describe('baseline server', () => {
  it('answers every request of the smoke cycle with the same status, content-type and body as the gateway', async () => {
    const loaded = loadScenario('smoke');
    const requests = buildRequests(expandMix(loaded.scenario, loaded.routes), 200, 3);
    const distinct = [...new Map(requests.map((r) => [`${r.method} ${r.path}`, r])).values()].slice(0, 60);
    const dir = mkdtempSync(join(tmpdir(), 'baseline-test-'));
    const [bPort, gPort, aPort] = [await freePort(), await freePort(), await freePort()];
    writeFileSync(join(dir, 'answers.json'), JSON.stringify(buildAnswerTable(requests, loaded.routes)));
    const config = buildGatewayConfig(loaded.scenario, loaded.routes, { id: 'g', kind: 'gateway' }, { port: gPort, adminPort: aPort }, dir);
    writeFileSync(join(dir, 'gw.json'), JSON.stringify(config));
    const baseline = spawnNode([distScript('baseline-server.js'), '--port', String(bPort), '--answers', join(dir, 'answers.json')], [], { stdio: 'ignore' });
    const gateway = spawnNode([GATEWAY_CLI, '--config', join(dir, 'gw.json')], [], { stdio: 'ignore' });
    try {
      await waitReady(baseline, { port: bPort }, 20_000, () => 'baseline');
      await waitReady(gateway, { port: gPort, adminPort: aPort }, 20_000, () => 'gateway');
      const fromBaseline = await fetchAll(bPort, distinct);
      const fromGateway = await fetchAll(gPort, distinct);
      expect(fromBaseline).toEqual(fromGateway);
      expect(new Set(fromGateway.map((r) => r.status))).toEqual(new Set([200, 201, 404]));
    } finally {
      await stopProcess(baseline, 2000);
      await stopProcess(gateway, 5000);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('no-op plugins for plugins-overhead', () => {
  it('the gateway finds noop-1 … noop-N in the generated plugin dir (and nothing more)', async () => {
    const loaded = loadScenario('plugins-overhead');
    const dir = mkdtempSync(join(tmpdir(), 'noop-test-'));
    const [port, adminPort] = [await freePort(), await freePort()];
    const write = (extra: string[]) => {
      const config = buildGatewayConfig(loaded.scenario, loaded.routes, { id: 'p', kind: 'gateway', plugins: 3 }, { port, adminPort }, join(dir, 'plugins'));
      config.plugins = [...(config.plugins as unknown[]), ...extra.map((name) => ({ name, enabled: true, options: {} }))];
      writeFileSync(join(dir, 'gw.json'), JSON.stringify(config));
    };
    try {
      writeNoopPlugins(join(dir, 'plugins'), 3);
      write(['noop-4']);
      const bad = spawnSync(process.execPath, [GATEWAY_CLI, '--config', join(dir, 'gw.json')], { encoding: 'utf8', timeout: 20_000 });
      expect(bad.status).toBe(1);
      expect(bad.stdout + bad.stderr).toMatch(/unknown plugin "noop-4".*noop-1, noop-2, noop-3/);
      write([]);
      const good = spawnNode([GATEWAY_CLI, '--config', join(dir, 'gw.json')], [], { stdio: 'ignore' });
      try {
        await waitReady(good, { port, adminPort }, 20_000, () => 'gateway with 3 no-op plugins');
        const res = await fetch(`http://127.0.0.1:${port}/ping`);
        expect(await res.text()).toBe('pong');
      } finally {
        await stopProcess(good, 5000);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
