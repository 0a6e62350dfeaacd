import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseScenario, ScenarioError, validateScenario } from '../../scenarios/schema.js';

const base = {
  name: 'x',
  description: 'd',
  mode: 'direct',
  routes: [{ path: '/a', methods: ['GET'], response: { status: 200, body: 'a' } }],
  traffic: [{ weight: 1, method: 'GET', path: '/a' }],
  matrix: { router: ['hybrid'] },
  load: { connections: 4, durationS: 1 },
};

function errors(over: Record<string, unknown>): string[] {
  const r = validateScenario({ ...base, ...over });
  return r.ok ? [] : r.errors;
}

describe('scenario schema', () => {
  it('accepts a minimal scenario and applies defaults', () => {
    const r = validateScenario(base);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.scenario.load.pipelining).toBe(1);
    expect(r.scenario.repetitions).toBe(5);
    expect(r.scenario.warmupS).toBe(2);
    expect(r.scenario.includeBaseline).toBe(false);
    expect(r.scenario.seed).toBe(1);
    expect(r.scenario.upstreamStub).toEqual({ bodyBytes: 256, delayMs: 0 });
  });

  it('does not mutate its input', () => {
    const input = structuredClone(base);
    validateScenario(input);
    expect(input).toEqual(base);
  });

  it.each([
    [{ load: { connections: 0, durationS: 1 } }, ['/load/connections: must be >= 1']],
    [{ load: { connections: 1.5, durationS: 1 } }, ['/load/connections: must be integer']],
    [{ load: { connections: 1 } }, ['/load: must have exactly one of "durationS", "amount"']],
    [{ load: { connections: 1, durationS: 1, amount: 10 } }, ['/load: must have exactly one of "durationS", "amount"']],
    [{ load: { connections: 1, durationS: 0 } }, ['/load/durationS: must be > 0']],
    [{ load: { connections: 1, durationS: 1, pipelining: 0 } }, ['/load/pipelining: must be >= 1']],
    [{ traffic: [] }, ['/traffic: must NOT have fewer than 1 items']],
    [{ traffic: [{ weight: 0, method: 'GET', path: '/a' }] }, ['/traffic/0/weight: must be > 0']],
    [{ traffic: [{ weight: 1, method: 'get', path: '/a' }] }, ['/traffic/0/method: must match pattern "^[A-Z]+$"']],
    [{ traffic: [{ weight: 1, method: 'GET', path: 'a' }] }, ['/traffic/0/path: must match pattern "^/"']],
    [{ traffic: [{ weight: 1, fromRoutes: false }] }, ['/traffic/0/fromRoutes: must be true']],
    [{ traffic: [{ weight: 1, method: 'GET', path: '/a', extra: 1 }] }, ['/traffic/0: must NOT have additional property "extra"']],
    [{ mode: 'mirror' }, ['/mode: must be one of "direct", "proxy"']],
    [{ routeTable: 'github-api' }, ['/: must have exactly one of "routes", "routeTable"']],
    [{ routes: undefined }, ['/: must have exactly one of "routes", "routeTable"']],
    [{ matrix: { router: 'fast' } }, ['/matrix/router: must be a list of variant names or "all"']],
    [{ matrix: { router: ['Radix'] } }, ['/matrix/router/0: must match pattern "^[a-z0-9][a-z0-9-]*$"']],
    [{ matrix: { workers: [-1] } }, ['/matrix/workers/0: must be >= 0']],
    [{ matrix: { plugins: [1, 1] } }, ['/matrix/plugins: must NOT have duplicate items (items ## 1 and 0 are identical)']],
    [{ matrix: { gpu: ['x'] } }, ['/matrix: must NOT have additional property "gpu"']],
    [{ repetitions: 0 }, ['/repetitions: must be >= 1']],
    [{ warmupS: -1 }, ['/warmupS: must be >= 0']],
    [{ name: 'Bad Name' }, ['/name: must match pattern "^[a-z0-9][a-z0-9-]*$"']],
    [{ description: undefined }, ['/: must have required property "description"']],
    [{ routes: [{ path: '/a', methods: ['GET'], response: { status: 99 } }] }, ['/routes/0/response/status: must be >= 100']],
    [{ routes: [{ path: '/a', methods: ['GET'] }] }, ['/routes/0: must have "response" in direct mode']],
    [{ routes: undefined, routeTable: 'github-api' }, ['/routeResponse: is required in direct mode with a routeTable']],
  ])('%j → %j', (over, expected) => {
    expect(errors(over as Record<string, unknown>)).toEqual(expected);
  });

  it('a pluginSet in the matrix must name an entry of pluginSets', () => {
    expect(errors({ matrix: { pluginSet: ['none', 'cors'] }, pluginSets: { none: [] } })).toEqual(['/matrix/pluginSet/1: no plugin set "cors" in /pluginSets']);
    expect(errors({ matrix: { pluginSet: ['none'] }, pluginSets: { none: [{ options: {} }] } })).toEqual([
      '/pluginSets/none/0: must have required property "name"',
    ]);
    expect(errors({ matrix: { pluginSet: ['none'] }, pluginSets: { none: [] } })).toEqual([]);
  });

  it('build specs are current, a revision, or revert:<revision>', () => {
    expect(errors({ matrix: { build: ['current', 'abc1234', 'revert:abc1234'] } })).toEqual([]);
    expect(errors({ matrix: { build: ['main'] } })).toEqual(['/matrix/build/0: must match pattern "^(current|[0-9a-f]{7,40}|revert:[0-9a-f]{7,40})$"']);
  });

  it('reports every problem at once', () => {
    const e = errors({ load: { connections: 0, durationS: -1 }, repetitions: 0 });
    expect(e).toContain('/load/connections: must be >= 1');
    expect(e).toContain('/load/durationS: must be > 0');
    expect(e).toContain('/repetitions: must be >= 1');
  });

  it('proxy mode allows routes without a response (they go to the upstream stub)', () => {
    expect(errors({ mode: 'proxy', routes: [{ path: '/a', methods: ['GET'] }] })).toEqual([]);
  });

  it('rejects non-objects without throwing', () => {
    expect(validateScenario(null)).toEqual({ ok: false, errors: ['/: must be object'] });
    expect(validateScenario([1])).toEqual({ ok: false, errors: ['/: must be object'] });
  });

  it('parseScenario throws a ScenarioError listing the errors', () => {
    expect(() => parseScenario({ ...base, repetitions: 0 }, 'f.json')).toThrow(ScenarioError);
    expect(() => parseScenario({ ...base, repetitions: 0 }, 'f.json')).toThrow(/f\.json[\s\S]*\/repetitions: must be >= 1/);
  });

  it('every shipped scenario is valid and named after its file', () => {
    const dir = join(import.meta.dirname, '../../scenarios');
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files).toContain('smoke.json');
    for (const f of files) {
      const r = validateScenario(JSON.parse(readFileSync(join(dir, f), 'utf8')));
      expect(r.ok ? [] : r.errors, f).toEqual([]);
      if (r.ok) expect(r.scenario.name).toBe(f.replace(/\.json$/, ''));
    }
  });
});
