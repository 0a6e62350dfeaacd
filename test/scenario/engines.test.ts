/**
 * Issue 18's measurement side: the `server` engine family as a matrix dimension (`server=own`), the `cpu` target
 * metric (CPU efficiency = reference CPU µs per request ÷ the variant's), and the two engine scenarios. The end to
 * end part runs the real gateway (dist/) with each registered engine, 1 repetition × 1 s.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScenario, validateScenario } from '../../scenarios/schema.js';
import { buildGatewayConfig } from '../../scripts/scenario/gateway-config.js';
import { loadScenario } from '../../scripts/scenario/load-scenario.js';
import { GATEWAY_CLI } from '../../scripts/scenario/paths.js';
import { freePort, spawnNode, stopProcess, waitReady } from '../../scripts/scenario/processes.js';
import { validateResults, type Results, type RunResult } from '../../scripts/scenario/results.js';
import { runScenario, withBuildDimension, type ScenarioRun } from '../../scripts/scenario/runner.js';
import { evaluateTargets } from '../../scripts/scenario/targets.js';
import { expandMatrix, filterVariants, loadRegisteredVariants, parseOnly } from '../../scripts/scenario/variants.js';

const direct = {
  name: 'x',
  description: 'd',
  mode: 'direct',
  routes: [{ path: '/a', methods: ['GET'], response: { status: 200, body: 'a' } }],
  traffic: [{ weight: 1, method: 'GET', path: '/a' }],
  load: { connections: 1, durationS: 1 },
};

describe('server as a matrix dimension', () => {
  it('the schema takes a list of engine names or "all" and says so when given anything else', () => {
    expect(validateScenario({ ...direct, matrix: { server: 'all' } }).ok).toBe(true);
    expect(validateScenario({ ...direct, matrix: { server: ['node-http', 'own'] } }).ok).toBe(true);
    const bad = validateScenario({ ...direct, matrix: { server: 'own' } });
    expect(bad.ok ? [] : bad.errors).toEqual(['/matrix/server: must be a list of variant names or "all"']);
    const badName = validateScenario({ ...direct, matrix: { server: ['Own'] } });
    expect(badName.ok ? [] : badName.errors).toEqual(['/matrix/server/0: must match pattern "^[a-z0-9][a-z0-9-]*$"']);
  });

  it('"all" is every engine the built gateway registers; variants are named server=<engine>', async () => {
    const registered = await loadRegisteredVariants();
    expect(registered.server).toContain('node-http');
    const s = parseScenario({ ...direct, matrix: { server: 'all', workers: [0] }, includeBaseline: true });
    const vs = await expandMatrix(s);
    expect(vs.map((v) => v.id)).toEqual(['baseline', ...registered.server.map((e) => `server=${e},workers=0`)]);
    const fixed = await expandMatrix(s, { ...registered, server: ['node-http', 'own'] });
    expect(fixed[2]).toEqual({ id: 'server=own,workers=0', kind: 'gateway', server: 'own', workers: 0 });
    expect(filterVariants(fixed, parseOnly(['server=own']), 'baseline').map((v) => v.id)).toEqual(['baseline', 'server=own,workers=0']);
  });

  it('the gateway config selects the engine with variants.server', () => {
    const loaded = loadScenario('engines-direct');
    const config = buildGatewayConfig(loaded.scenario, loaded.routes, { id: 'server=own', kind: 'gateway', server: 'own' }, { port: 1, adminPort: 2 }, '/none');
    expect(config.variants).toEqual({ server: 'own' });
    const none = buildGatewayConfig(loaded.scenario, loaded.routes, { id: 'baseline', kind: 'gateway' }, { port: 1, adminPort: 2 }, '/none');
    expect(none.variants).toBeUndefined();
  });

  it('a gateway started from that config runs the engine it names (admin /stats → workers[0].tls.engine)', async () => {
    const registered = await loadRegisteredVariants();
    const loaded = loadScenario('engines-direct');
    const dir = mkdtempSync(join(tmpdir(), 'engines-config-'));
    try {
      for (const engine of registered.server) {
        const [port, adminPort] = [await freePort(), await freePort()];
        const config = buildGatewayConfig(
          loaded.scenario,
          loaded.routes,
          { id: `server=${engine}`, kind: 'gateway', server: engine },
          { port, adminPort },
          dir,
        );
        writeFileSync(join(dir, `${engine}.json`), JSON.stringify(config));
        const gw = spawnNode([GATEWAY_CLI, '--config', join(dir, `${engine}.json`)], [], { stdio: 'ignore' });
        try {
          await waitReady(gw, { port, adminPort }, 20_000, () => `gateway on ${engine}`);
          const stats = (await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).json()) as { workers: Array<{ tls: { engine: string } }> };
          expect(stats.workers[0]?.tls.engine).toBe(engine);
          expect(await (await fetch(`http://127.0.0.1:${port}/ping`)).text()).toBe('pong');
        } finally {
          await stopProcess(gw, 5000);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('cpu target metric (CPU efficiency)', () => {
  const run = (variant: string, cpuUsPerReq: number | null, requests = 10_000): RunResult =>
    ({
      variant,
      requests,
      durationS: 1,
      rps: requests,
      latencyMs: { p99: 1 },
      gateway: cpuUsPerReq === null ? null : { cpuPct: 50, cpuS: (cpuUsPerReq * requests) / 1e6, rssMeanMB: 1, rssMaxMB: 1, processes: 1, samples: 4 },
    }) as unknown as RunResult;
  // the engine spends 20 µs per request, nginx 24, node:http 30 (throughput equal: only CPU tells them apart)
  const runs = [
    ...[20, 20.5, 19.5].map((x) => run('own', x)),
    ...[24, 24.2, 23.8].map((x) => run('nginx', x)),
    ...[30, 30.3, 29.7].map((x) => run('node-http', x)),
  ];

  it('is reference CPU µs/req ÷ variant CPU µs/req, judged with the same CI machinery as throughput', () => {
    const [a, b, c] = evaluateTargets(
      [
        { variant: 'own', reference: 'nginx', metric: 'cpu', min: 0.8 },
        { variant: 'own', reference: 'node-http', metric: 'cpu', min: 1.3 },
        { variant: 'own', reference: 'node-http', metric: 'cpu', min: 1.6 },
      ],
      runs,
      1,
      new Map(),
    );
    expect(a!.ratio!.estimate).toBeCloseTo(24 / 20, 6);
    expect(a).toMatchObject({ status: 'met', confidence: 'clear' });
    expect(b!.ratio!.estimate).toBeCloseTo(30 / 20, 6);
    expect(b).toMatchObject({ status: 'met', confidence: 'clear' });
    expect(c).toMatchObject({ status: 'missed', confidence: 'clear' });
    // same runs, throughput metric: no difference there, so the cpu metric is not throughput in disguise
    const [t] = evaluateTargets([{ variant: 'own', reference: 'node-http', metric: 'throughput', min: 1.3 }], runs, 1, new Map());
    expect(t!.ratio!.estimate).toBeCloseTo(1, 6);
  });

  it('a side without CPU samples is "not run", not a median over the runs that happen to have one', () => {
    const [t] = evaluateTargets([{ variant: 'own', reference: 'peer', metric: 'cpu', min: 1 }], [...runs, run('peer', 10), run('peer', null)], 1, new Map());
    expect(t).toMatchObject({ status: 'not run', ratio: null });
    expect(t!.note).toContain('no CPU sample');
  });

  it('the schema accepts metric "cpu" and nothing unknown', () => {
    const target = { variant: 'server=own', reference: 'baseline', min: 1.5 };
    expect(validateScenario({ ...direct, matrix: {}, targets: [{ ...target, metric: 'cpu' }] }).ok).toBe(true);
    const bad = validateScenario({ ...direct, matrix: {}, targets: [{ ...target, metric: 'cpu-time' }] });
    expect(bad.ok ? [] : bad.errors).toEqual(['/targets/0/metric: must be one of "throughput", "p99", "cpu"']);
  });
});

describe('the engine scenarios', () => {
  it('name their targets after variants the matrix produces once the own engine is registered', async () => {
    const registered = await loadRegisteredVariants();
    for (const name of ['engines-proxy', 'engines-direct']) {
      const { scenario } = loadScenario(name);
      const ids = (await expandMatrix(scenario, { ...registered, server: ['node-http', 'own'] })).map((v) => v.id);
      expect(scenario.targets!.length, name).toBeGreaterThan(0);
      for (const t of scenario.targets!) {
        expect(t.metric).toBe('cpu');
        expect(ids, name).toContain(t.variant);
        expect(ids, name).toContain(t.reference);
      }
      expect(ids).toContain(scenario.baselineVariant);
    }
    const proxy = await expandMatrix(loadScenario('engines-proxy').scenario, { ...registered, server: ['node-http', 'own'] });
    expect(proxy.map((v) => v.id)).toEqual(['server=node-http', 'server=own', 'peer=nginx', 'peer=haproxy', 'peer=caddy', 'peer=floor']);
  });
});

describe('--build on a scenario with a matrix (before/after of one engine change)', () => {
  it('prefixes gateway ids with the build: the reference with the first, targets with the last; peers stay', async () => {
    const registered = await loadRegisteredVariants();
    const s = withBuildDimension(loadScenario('engines-proxy').scenario, ['revert:abc1234', 'current']);
    expect(s.baselineVariant).toBe('build=revert:abc1234,server=node-http');
    expect(s.targets!.map((t) => [t.variant, t.reference])).toEqual([
      ['build=current,server=own', 'peer=nginx'],
      ['build=current,server=own', 'build=current,server=node-http'],
    ]);
    const ids = (await expandMatrix(s, { ...registered, server: ['node-http', 'own'] })).map((v) => v.id);
    for (const id of [s.baselineVariant!, ...s.targets!.flatMap((t) => [t.variant, t.reference])]) expect(ids).toContain(id);
    const direct = withBuildDimension(loadScenario('engines-direct').scenario, ['a1b2c3d', 'current']);
    expect(direct.baselineVariant).toBe('baseline');
    expect(direct.targets![0]).toMatchObject({ variant: 'build=current,server=own', reference: 'baseline' });
  });
});

describe('engines-direct end to end (1 repetition × 1 s per variant)', () => {
  let out: string;
  let run: ScenarioRun;

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'engines-scenario-'));
    run = await runScenario({ scenario: 'engines-direct', repetitions: 1, durationS: 1, warmupS: 0.3, outDir: out, progress: false });
  }, 90_000);

  afterAll(() => {
    if (out !== undefined) rmSync(out, { recursive: true, force: true });
  });

  it('ran the bare server and every registered engine, each with CPU µs per request', async () => {
    const registered = await loadRegisteredVariants();
    expect(run.results.runs.map((r) => r.variant)).toEqual(['baseline', ...registered.server.map((e) => `server=${e}`)]);
    for (const v of run.results.summary.variants) {
      expect(v.cpuUsPerRequest?.estimate, v.variant).toBeGreaterThan(0);
    }
    for (const r of run.results.runs) expect(r.errors, r.variant).toBe(0);
  });

  it('judges the cpu target when the own engine ran, says "not run" when it is not registered', () => {
    const parsed = JSON.parse(readFileSync(join(run.dir, 'results.json'), 'utf8')) as Results;
    expect(validateResults(parsed)).toEqual([]);
    const t = parsed.targets![0]!;
    const own = parsed.summary.variants.find((v) => v.variant === 'server=own');
    if (own === undefined) {
      expect(t).toMatchObject({ status: 'not run', note: 'no runs of server=own' });
    } else {
      const base = parsed.summary.variants.find((v) => v.variant === 'baseline')!;
      expect(t.ratio!.estimate).toBeCloseTo(base.cpuUsPerRequest!.estimate / own.cpuUsPerRequest!.estimate, 6);
    }
    const md = readFileSync(join(run.dir, 'report.md'), 'utf8');
    expect(md).toContain('CPU efficiency');
  });
});
