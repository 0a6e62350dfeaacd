import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../scenarios/schema.js';
import { readDiagnostics } from '../../scripts/scenario/diagnostics.js';
import { buildGatewayConfig, deepMerge } from '../../scripts/scenario/gateway-config.js';
import { canonicalJson, loadScenario } from '../../scripts/scenario/load-scenario.js';
import { createRng } from '../../scripts/scenario/stats.js';
import {
  buildAnswerTable,
  buildRequests,
  compilePattern,
  expandMix,
  fillTemplate,
  NOT_FOUND_ANSWER,
  ReferenceMatcher,
  routeToTemplate,
  staticAnswer,
} from '../../scripts/scenario/traffic.js';
import { expandMatrix, filterVariants, parseOnly, schedule } from '../../scripts/scenario/variants.js';

describe('traffic templates', () => {
  it('fills each kind', () => {
    const rng = createRng(1);
    const s = fillTemplate('/a/{x}/{n:int}/{h:hex}/{u:uuid}', rng);
    const m = /^\/a\/([a-z0-9]{8})\/(\d+)\/([0-9a-f]{16})\/([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12})$/.exec(s);
    expect(m, s).not.toBeNull();
    expect(Number(m![2])).toBeGreaterThanOrEqual(1);
    expect(Number(m![2])).toBeLessThanOrEqual(1_000_000);
  });

  it('route pattern → template', () => {
    expect(routeToTemplate('/repos/:owner/:repo')).toBe('/repos/{owner}/{repo}');
    expect(routeToTemplate('/orders/:id(\\d+)')).toBe('/orders/{id:int}');
    expect(routeToTemplate('/repos/:owner/:repo/contents/*')).toBe('/repos/{owner}/{repo}/contents/{rest}');
  });

  it('compiles patterns like the router syntax', () => {
    expect(compilePattern('/flights/:from-:to').exec('/flights/LHR-JFK')?.slice(1)).toEqual(['LHR', 'JFK']);
    expect(compilePattern('/orders/:id(\\d+)').test('/orders/12')).toBe(true);
    expect(compilePattern('/orders/:id(\\d+)').test('/orders/x')).toBe(false);
    expect(compilePattern('/api/*').exec('/api/a/b')?.[1]).toBe('a/b');
    expect(compilePattern('/a.b').test('/aXb')).toBe(false);
  });
});

describe('request cycle', () => {
  const mix = [
    { weight: 60, method: 'GET', path: '/s' },
    { weight: 30, method: 'GET', path: '/u/{id:int}' },
    { weight: 10, method: 'POST', path: '/o', body: { item: '{item}' } },
  ];

  it('follows the weights exactly and is deterministic per seed', () => {
    const reqs = buildRequests(mix, 1000, 7);
    expect(reqs).toHaveLength(1000);
    expect(reqs.filter((r) => r.path === '/s')).toHaveLength(600);
    expect(reqs.filter((r) => r.path.startsWith('/u/'))).toHaveLength(300);
    expect(reqs.filter((r) => r.method === 'POST')).toHaveLength(100);
    expect(buildRequests(mix, 1000, 7)).toEqual(reqs);
    expect(buildRequests(mix, 1000, 8)).not.toEqual(reqs);
    // shuffled: the first 100 are not all the same entry
    expect(new Set(reqs.slice(0, 100).map((r) => r.method + r.path.slice(0, 2))).size).toBeGreaterThan(1);
  });

  it('serialises JSON bodies with a content-type and fills templates inside them', () => {
    const post = buildRequests(mix, 100, 1).find((r) => r.method === 'POST')!;
    expect(post.headers).toEqual({ 'content-type': 'application/json' });
    expect(JSON.parse(post.body!).item).toMatch(/^[a-z0-9]{8}$/);
  });

  it('largest remainder keeps the total exact with awkward weights', () => {
    const reqs = buildRequests(
      [
        { weight: 1, method: 'GET', path: '/a' },
        { weight: 1, method: 'GET', path: '/b' },
        { weight: 1, method: 'GET', path: '/c' },
      ],
      100,
      1,
    );
    expect(reqs).toHaveLength(100);
    const counts = ['/a', '/b', '/c'].map((p) => reqs.filter((r) => r.path === p).length).sort();
    expect(counts).toEqual([33, 33, 34]);
  });

  it('fromRoutes expands every route with its method and shares the weight', () => {
    const s = parseScenario({
      name: 'x',
      description: 'd',
      mode: 'direct',
      routes: [
        { path: '/a/:id', methods: ['GET'], response: { status: 200 } },
        { path: '/b', methods: ['DELETE'], response: { status: 204 } },
      ],
      traffic: [
        { weight: 80, fromRoutes: true },
        { weight: 20, method: 'GET', path: '/miss' },
      ],
      matrix: {},
      load: { connections: 1, durationS: 1 },
    });
    const expanded = expandMix(
      s,
      s.routes!.map((r) => ({ path: r.path, methods: r.methods, response: r.response! })),
    );
    expect(expanded).toEqual([
      { weight: 40, method: 'GET', path: '/a/{id}' },
      { weight: 40, method: 'DELETE', path: '/b' },
      { weight: 20, method: 'GET', path: '/miss' },
    ]);
  });
});

describe('answers the baseline serves', () => {
  const routes = [
    { path: '/users/list', methods: ['GET'], response: { status: 200, body: 'list' } },
    { path: '/users/:id', methods: ['GET'], response: { status: 200, body: { id: 1 } } },
    { path: '/any', methods: ['*'], response: { status: 202, headers: { 'X-A': 'b' } } },
    { path: '/proxy/*', methods: ['GET'] },
  ];

  it('static beats param, methods and HEAD→GET are honoured', () => {
    const m = new ReferenceMatcher(routes);
    expect(m.match('GET', '/users/list')).toBe(routes[0]);
    expect(m.match('GET', '/users/7?x=1')).toBe(routes[1]);
    expect(m.match('HEAD', '/users/7')).toBe(routes[1]);
    expect(m.match('POST', '/users/7')).toBeNull();
    expect(m.match('PATCH', '/any')).toBe(routes[2]);
  });

  it('builds one answer per distinct request: static bytes, proxy, or the gateway 404', () => {
    const table = buildAnswerTable(
      [
        { method: 'GET', path: '/users/list' },
        { method: 'GET', path: '/users/3' },
        { method: 'GET', path: '/users/3' },
        { method: 'GET', path: '/proxy/x' },
        { method: 'GET', path: '/nope' },
      ],
      routes,
    );
    expect(Object.keys(table)).toHaveLength(4);
    expect(table['GET /users/list']).toEqual({ kind: 'static', status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'list' });
    expect(table['GET /users/3']).toEqual({ kind: 'static', status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"id":1}' });
    expect(table['GET /proxy/x']).toEqual({ kind: 'proxy' });
    expect(table['GET /nope']).toBe(NOT_FOUND_ANSWER);
    expect(staticAnswer({ status: 202, headers: { 'X-A': 'b' } })).toEqual({ kind: 'static', status: 202, headers: { 'x-a': 'b' }, body: '' });
    expect(staticAnswer({ status: 200, body: null })).toEqual({
      kind: 'static',
      status: 200,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: 'null',
    });
    expect(staticAnswer({ status: 200, headers: { 'Content-Type': 'x/y' }, body: [1] }).headers).toEqual({ 'content-type': 'x/y' });
  });
});

describe('variant matrix', () => {
  const s = parseScenario({
    name: 'x',
    description: 'd',
    mode: 'direct',
    routes: [{ path: '/a', methods: ['GET'], response: { status: 200 } }],
    traffic: [{ weight: 1, method: 'GET', path: '/a' }],
    matrix: { router: 'all', workers: [0, 2] },
    includeBaseline: true,
    load: { connections: 1, durationS: 1 },
  });
  const registry = { router: ['hybrid', 'radix'], pool: ['stack'], metrics: ['ring'], upstream: ['agent'], server: ['node-http'] };

  it('expands the cartesian product in file order, baseline first, "all" from the registry', async () => {
    const vs = await expandMatrix(s, registry);
    expect(vs.map((v) => v.id)).toEqual(['baseline', 'router=hybrid,workers=0', 'router=hybrid,workers=2', 'router=radix,workers=0', 'router=radix,workers=2']);
    expect(vs[2]).toEqual({ id: 'router=hybrid,workers=2', kind: 'gateway', router: 'hybrid', workers: 2 });
  });

  it('--only filters by dimension and keeps the reference baseline', async () => {
    const vs = await expandMatrix(s, registry);
    expect(filterVariants(vs, parseOnly(['router=radix']), 'baseline').map((v) => v.id)).toEqual([
      'baseline',
      'router=radix,workers=0',
      'router=radix,workers=2',
    ]);
    expect(filterVariants(vs, parseOnly(['router=radix', 'workers=2'])).map((v) => v.id)).toEqual(['router=radix,workers=2']);
    expect(filterVariants(vs, parseOnly(['baseline router=hybrid,radix workers=0'])).map((v) => v.id)).toEqual([
      'baseline',
      'router=hybrid,workers=0',
      'router=radix,workers=0',
    ]);
    expect(() => parseOnly(['colour=red'])).toThrow(/unknown dimension "colour"/);
    expect(() => filterVariants(vs, parseOnly(['router=nope']))).toThrow(/filtered out every variant/);
  });

  it('schedules repetitions interleaved: A B C A B C', () => {
    const a = { id: 'a', kind: 'gateway' as const };
    const b = { id: 'b', kind: 'gateway' as const };
    expect(schedule([a, b], 3).map((x) => `${x.variant.id}${x.repetition}`)).toEqual(['a0', 'b0', 'a1', 'b1', 'a2', 'b2']);
  });
});

describe('gateway config for a variant', () => {
  it('puts ports, routes, variants and N no-op plugins into the config; scenario tuning merges underneath', () => {
    const s = parseScenario({
      name: 'x',
      description: 'd',
      mode: 'proxy',
      gateway: { server: { keepAliveTimeoutMs: 1234, port: 1 }, upstreams: { stub: { keepAlive: { maxSockets: 8 } } } },
      routes: [
        { path: '/api/*', methods: ['*'] },
        { path: '/s', methods: ['GET'], response: { status: 200, body: 'x' } },
      ],
      traffic: [{ weight: 1, method: 'GET', path: '/a' }],
      matrix: {},
      load: { connections: 1, durationS: 1 },
    });
    const cfg = buildGatewayConfig(
      s,
      s.routes!,
      { id: 'v', kind: 'gateway', router: 'radix', plugins: 3, workers: 2 },
      { port: 5000, adminPort: 5001, upstreamPort: 5002 },
      '/tmp/p',
    );
    expect(cfg.server).toEqual({ keepAliveTimeoutMs: 1234, host: '127.0.0.1', port: 5000, workers: 2 });
    expect(cfg.admin).toEqual({ enabled: true, host: '127.0.0.1', port: 5001 });
    expect(cfg.variants).toEqual({ router: 'radix' });
    expect(cfg.upstreams).toEqual({ stub: { keepAlive: { maxSockets: 8 }, targets: ['http://127.0.0.1:5002'] } });
    expect(cfg.routes).toEqual([
      { path: '/api/*', methods: ['*'], upstream: 'stub' },
      { path: '/s', methods: ['GET'], response: { status: 200, headers: {}, body: 'x' } },
    ]);
    expect(cfg.pluginDirs).toEqual(['/tmp/p']);
    expect((cfg.plugins as Array<{ name: string }>).map((p) => p.name)).toEqual(['noop-1', 'noop-2', 'noop-3']);
    expect(deepMerge({ a: { b: 1, c: [1] } }, { a: { c: [2] } })).toEqual({ a: { b: 1, c: [2] } });
  });

  it('routeOptions merge a named set into every proxied route, with stub-mirror on the second stub', () => {
    const s = parseScenario({
      name: 'x',
      description: 'd',
      mode: 'proxy',
      routes: [
        { path: '/api/*', methods: ['*'] },
        { path: '/s', methods: ['GET'], response: { status: 200, body: 'x' } },
      ],
      traffic: [{ weight: 1, method: 'GET', path: '/a' }],
      matrix: { routeOptions: ['off', 'mirror'] },
      routeOptionSets: { off: {}, mirror: { mirror: { upstream: 'stub-mirror', percent: 50 } } },
      load: { connections: 1, durationS: 1 },
    });
    const variant = { id: 'routeOptions=mirror', kind: 'gateway' as const, routeOptions: 'mirror' };
    const cfg = buildGatewayConfig(s, s.routes!, variant, { port: 5000, adminPort: 5001, upstreamPort: 5002, mirrorPort: 5003 }, '/tmp/p');
    expect(cfg.routes).toEqual([
      { path: '/api/*', methods: ['*'], upstream: 'stub', mirror: { upstream: 'stub-mirror', percent: 50 } },
      { path: '/s', methods: ['GET'], response: { status: 200, headers: {}, body: 'x' } },
    ]);
    expect(cfg.upstreams).toEqual({ stub: { targets: ['http://127.0.0.1:5002'] }, 'stub-mirror': { targets: ['http://127.0.0.1:5003'] } });
    expect(() => parseScenario({ ...s, matrix: { routeOptions: ['nope'] } } as unknown as Record<string, unknown>)).toThrow(
      '/matrix/routeOptions/0: no route options "nope" in /routeOptionSets',
    );
  });
});

describe('scenario files', () => {
  it('routers resolves the github-api route table with the static routeResponse', () => {
    const l = loadScenario('routers');
    expect(l.routes.length).toBeGreaterThan(100);
    expect(l.routes[0]!.response).toEqual({ status: 200, headers: { 'content-type': 'application/json' }, body: { ok: true } });
    expect(l.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(loadScenario('routers').hash).toBe(l.hash);
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] })).toBe('{"a":[{"c":2,"d":1}],"b":1}');
  });
});

describe('diagnostics reader', () => {
  it('aggregates only the interval lines inside the window', () => {
    const dir = mkdtempSync(join(tmpdir(), 'diag-'));
    try {
      const line = (pid: number, t: number, gcMs: number, p99: number) =>
        JSON.stringify({ t, pid, gcCount: 1, gcMs, eldMeanMs: 0.5, eldP99Ms: p99, eldMaxMs: p99 + 1, eldCount: 10 });
      writeFileSync(join(dir, '1.ndjson'), [line(1, 1000, 100, 50), line(1, 2250, 2, 1), line(1, 2500, 3, 4), line(1, 9000, 100, 99)].join('\n') + '\n{"trunc');
      writeFileSync(join(dir, '2.ndjson'), `${line(2, 2500, 5, 2)}\n`);
      const d = readDiagnostics(dir, 2000, 3000)!;
      expect(d.gcPauseMs).toBe(10);
      expect(d.gcCount).toBe(3);
      expect(d.gcPauseMsPerS).toBe(10);
      expect(d.eventLoopDelayP99Ms).toBe(4);
      expect(d.eventLoopDelayMaxMs).toBe(5);
      expect(d.processes).toBe(2);
      expect(readDiagnostics(dir, 50_000, 60_000)).toBeNull();
      expect(readFileSync(join(dir, '1.ndjson'), 'utf8')).toContain('trunc');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
