/**
 * Runs that guard themselves: verify before timing (a contestant answering differently is reported, not timed),
 * the drift guard (a control that drifts between its first and last repetition leaves the run without verdicts,
 * and the report says why), and the environment a results.json records (kernel, CPU governor). Real processes:
 * the gateway, the bare server, real HTTP servers on ephemeral ports.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type RequestListener } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerSpec, checkAnswers, type ExpectedAnswer } from '../../scripts/scenario/answer-check.js';
import { checkDrift, driftControl } from '../../scripts/scenario/drift.js';
import { cpuGovernor } from '../../scripts/scenario/environment.js';
import { validateResults, type Results } from '../../scripts/scenario/results.js';
import { runScenario, type ScenarioRun } from '../../scripts/scenario/runner.js';
import { verdictTerminalTable } from '../../scripts/scenario/terminal.js';

async function serve(handler: RequestListener): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const PING: ExpectedAnswer = { request: { method: 'GET', path: '/ping' }, status: 200, body: Buffer.from('pong') };

describe('verify before timing: the answer check', () => {
  it('reports a contestant answering 500, with the request and what came back', async () => {
    const broken = await serve((_req, res) => {
      res.writeHead(500).end('oops');
    });
    try {
      const check = await checkAnswers('broken', broken.port, answerSpec([PING]));
      expect(check).toMatchObject({ variant: 'broken', requests: 1, identical: false });
      expect(check.mismatch).toBe('GET /ping: status 500, expected 200 (body "oops")');
    } finally {
      await broken.close();
    }
  });

  it('compares body bytes, and the named headers against the first contestant that answered correctly', async () => {
    const good = await serve((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('pong'));
    const otherType = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('pong'));
    const longer = await serve((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('pong!'));
    try {
      const spec = answerSpec([PING], ['Content-Type']);
      expect(await checkAnswers('good', good.port, spec)).toEqual({ variant: 'good', requests: 1, identical: true, headers: ['content-type'] });
      const typed = await checkAnswers('other', otherType.port, spec);
      expect(typed.mismatch).toBe('GET /ping: header content-type: "application/json", the others sent "text/plain"');
      const body = await checkAnswers('longer', longer.port, spec);
      expect(body.mismatch).toBe('GET /ping: body of 5 bytes "pong!", expected 4 bytes "pong"');
    } finally {
      await Promise.all([good.close(), otherType.close(), longer.close()]);
    }
  });
});

/** A tiny direct-mode scenario file (baseline + gateway answering /ping), with extra fields merged in. */
function scenarioFile(dir: string, name: string, extra: Record<string, unknown>): string {
  const file = join(dir, `${name}.json`);
  const scenario = {
    name,
    description: `guards test: ${name}`,
    mode: 'direct',
    routes: [{ path: '/ping', methods: ['GET'], response: { status: 200, headers: { 'content-type': 'text/plain' }, body: 'pong' } }],
    traffic: [{ weight: 1, method: 'GET', path: '/ping' }],
    matrix: {},
    includeBaseline: true,
    baselineVariant: 'baseline',
    verify: { headers: ['content-type'] },
    load: { connections: 4, pipelining: 1, durationS: 0.5 },
    warmupS: 0,
    repetitions: 1,
    seed: 1,
    ...extra,
  };
  writeFileSync(file, JSON.stringify(scenario));
  return file;
}

/**
 * Runs the tiny scenario in a fresh temp dir with the gateway loading one plugin module (`source`) as `name`;
 * `source` may mention DIR, replaced by the temp dir. The caller removes `dir`.
 */
async function runWithPlugin(name: string, source: string, extra: Record<string, unknown>): Promise<{ dir: string; run: ScenarioRun }> {
  const dir = mkdtempSync(join(tmpdir(), `guards-${name}-`));
  const plugins = join(dir, 'plugins');
  mkdirSync(plugins);
  writeFileSync(join(plugins, `${name}.mjs`), source.replaceAll('DIR', JSON.stringify(dir).slice(1, -1)));
  const file = scenarioFile(dir, `guards-${name}`, { gateway: { pluginDirs: [plugins], plugins: [{ name }] }, repetitions: 2, ...extra });
  return { dir, run: await runScenario({ scenario: file, outDir: join(dir, 'out'), progress: false }) };
}

describe('verify before timing, end to end: a gateway whose plugin fails every request', () => {
  let dir: string;
  let run: ScenarioRun;

  beforeAll(async () => {
    // a hook that throws costs its request a 500 (docs/plugins.md): this gateway answers every request with 500
    ({ dir, run } = await runWithPlugin(
      'answer-500',
      "export default { name: 'answer-500', version: '1.0.0', init: () => ({ preHandler() { throw new Error('broken on purpose'); } }) };\n",
      {},
    ));
  }, 120_000);

  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('reports the 500 and does not time that contestant; the others are timed', () => {
    const r = run.results;
    expect(r.runs.map((x) => x.variant)).toEqual(['baseline', 'baseline']);
    const check = r.answerChecks!.find((c) => c.variant === 'gateway')!;
    expect(check.identical).toBe(false);
    expect(check.mismatch).toMatch(/^GET \/ping: status 500, expected 200/);
    expect(r.answerChecks!.find((c) => c.variant === 'baseline')!.identical).toBe(true);
    expect(r.skipped).toEqual([{ variant: 'gateway', reason: `answered differently: ${check.mismatch}` }]);
    expect(validateResults(JSON.parse(readFileSync(join(run.dir, 'results.json'), 'utf8')))).toEqual([]);
  });

  it('records the kernel and the CPU governor (null where not exposed) beside node, CPU, load and commit', () => {
    const e = run.results.environment;
    expect(e.kernel).toMatch(/^Linux \d+\.\d+/);
    expect(e.cpuGovernor === null || typeof e.cpuGovernor === 'string').toBe(true);
    expect('cpuGovernor' in e).toBe(true);
    expect(readFileSync(join(run.dir, 'report.md'), 'utf8')).toContain('| CPU frequency governor |');
  });

  it('says so in the report and the terminal', () => {
    const md = readFileSync(join(run.dir, 'report.md'), 'utf8');
    expect(md).toContain('**`gateway` answered differently, not timed**: GET /ping: status 500');
    expect(md).toContain('gateway skipped: answered differently');
    expect(verdictTerminalTable(run.results)).toMatch(/^NOT TIMED: gateway answered differently: GET \/ping: status 500/m);
  });
});

describe('the drift guard', () => {
  it("names the control: the scenario's, else the bare server, else nginx; none without them", () => {
    expect(driftControl([{ id: 'baseline' }, { id: 'peer=nginx' }])).toBe('baseline');
    expect(driftControl([{ id: 'gateway' }, { id: 'peer=nginx' }])).toBe('peer=nginx');
    expect(driftControl([{ id: 'gateway' }, { id: 'peer=nginx' }], 'gateway')).toBe('gateway');
    expect(driftControl([{ id: 'gateway' }])).toBeNull();
  });

  it('compares first and last repetition against the limit', () => {
    expect(checkDrift('baseline', 'req/s', [1000, 1200, 950], 0.1)).toMatchObject({ change: 0.05, exceeded: false });
    const drifted = checkDrift('baseline', 'req/s', [1000, 990, 700], 0.1)!;
    expect(drifted).toMatchObject({ first: 1000, last: 700, exceeded: true });
    expect(drifted.change).toBeCloseTo(0.3, 9);
    expect(drifted.note).toBe(
      'no verdicts: the control drifted, `baseline` req/s 1,000 in its first repetition, 700 in its last (30.0% change, limit 10.0%); ' +
        'the machine changed during the run, so differences between variants cannot be told from it. Re-run on a quieter machine.',
    );
    expect(checkDrift('baseline', 'req/s', [1000], 0.1)).toBeNull();
    // a control with no capacity at all, first and last, did not drift
    expect(checkDrift('baseline', 'capacity (req/s)', [0, 0], 0.15)).toMatchObject({ change: 0, exceeded: false });
    expect(checkDrift('baseline', 'capacity (req/s)', [0, 500], 0.15)!.exceeded).toBe(true);
  });

  describe('end to end: a control made to drift mid-run gets no verdict', () => {
    let dir: string;
    let run: ScenarioRun;

    beforeAll(async () => {
      // the control: a gateway that, from its second start on, spins 5 ms of CPU per request (≤ 200 req/s);
      // its first start answers at full speed. The start count lives in a file, as every repetition is a new process.
      ({ dir, run } = await runWithPlugin(
        'slows-down',
        [
          "import { existsSync, readFileSync, writeFileSync } from 'node:fs';",
          "const file = 'DIR/starts';",
          'const starts = (existsSync(file) ? Number(readFileSync(file, "utf8")) : 0) + 1;',
          'writeFileSync(file, String(starts));',
          'const spin = () => { const end = performance.now() + 5; while (performance.now() < end); };',
          "export default { name: 'slows-down', version: '1.0.0', init: () => (starts > 1 ? { preHandler: spin } : {}) };",
          '',
        ].join('\n'),
        { drift: { control: 'gateway', limit: 0.1 }, baselineVariant: 'gateway', load: { connections: 4, pipelining: 1, durationS: 1 } },
      ));
    }, 120_000);

    afterAll(() => {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });

    it('records the drift and prints the numbers without verdicts, saying why', () => {
      const r = run.results;
      const [first, last] = r.runs.filter((x) => x.variant === 'gateway').map((x) => x.rps);
      expect(last!).toBeLessThan(250);
      expect(r.drift).toMatchObject({ control: 'gateway', metric: 'req/s', exceeded: true, limit: 0.1 });
      expect(r.drift!.first).toBeCloseTo(first!, 6);
      const md = readFileSync(join(run.dir, 'report.md'), 'utf8');
      expect(md).toContain('- drift guard: **no verdicts: the control drifted, `gateway` req/s');
      // the numbers stay: the baseline's req/s with its interval over both repetitions
      expect(md).toMatch(/\| `baseline` \| [\d,]+ \[[\d,]+ – [\d,]+\] \|/);
      expect(md).toContain('no verdict (control drifted)');
      expect(md).not.toMatch(/\*\*(faster|slower|less CPU|more CPU)\*\*/);
      const terminal = verdictTerminalTable(r);
      expect(terminal).toMatch(/^no verdicts: the control drifted, gateway req\/s/m);
      expect(terminal).not.toMatch(/\b(faster|slower)\b/);
      expect(validateResults(JSON.parse(readFileSync(join(run.dir, 'results.json'), 'utf8')))).toEqual([]);
    });
  });
});

describe('environment recorded in results.json', () => {
  it('the CPU governor when cpufreq exposes it, null when not', () => {
    const sysfs = mkdtempSync(join(tmpdir(), 'fake-sysfs-'));
    try {
      expect(cpuGovernor(sysfs)).toBeNull();
      for (const [cpu, gov] of [
        ['cpu0', 'performance'],
        ['cpu1', 'powersave'],
        ['cpu2', 'performance'],
      ] as const) {
        mkdirSync(join(sysfs, cpu, 'cpufreq'), { recursive: true });
        writeFileSync(join(sysfs, cpu, 'cpufreq', 'scaling_governor'), `${gov}\n`);
      }
      mkdirSync(join(sysfs, 'cpufreq'));
      expect(cpuGovernor(sysfs)).toBe('performance/powersave');
      expect(cpuGovernor(join(sysfs, 'missing'))).toBeNull();
    } finally {
      rmSync(sysfs, { recursive: true, force: true });
    }
  });

  it('older reports, written before kernel and governor were recorded, stay valid', () => {
    const older = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'reports', 'latest', 'latency', 'results.json'), 'utf8')) as Results;
    expect(older.environment.kernel).toBeUndefined();
    expect(validateResults(older)).toEqual([]);
  });
});
