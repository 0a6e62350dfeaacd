/**
 * Route selection above the router (core/data/route-select.ts): a property test against a plain reference that
 * filters every route and sorts the survivors by the precedence rules, on random route tables whose hosts, methods,
 * paths and conditions collide; and the helpers' edge cases.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileRouteRegex } from '../../core/config/regex-safety.js';
import type { MatchCondition, RouteConfig } from '../../core/config/types.js';
import { neverWinning, queryValue, rawHeader, requestHostKey, RouteSelector, selectEntry } from '../../core/data/route-select.js';
import { routerVariants } from '../../variants/router/index.js';
import { compareRoutes, parseRoutePattern } from '../../variants/router/shared/route-pattern.js';

const HOSTS = ['a.test', 'b.test', '*.test', 'x.a.test', '*.a.test', 'A.Test.'] as const;
// same shapes under other param names (`:id`, `:name`) share one router entry across hosts
const PATHS = ['/u/me', '/u/:id', '/u/:name', '/u/*', '/*', '/v/:id', '/u/:id/x', '/u/:name/x', '/u/:id(\\d+)'] as const;
const METHODS = [['GET'], ['POST'], ['*'], ['GET', 'POST'], ['HEAD']] as const;
const CONDITIONS: Array<{ where: 'headers' | 'query'; c: MatchCondition }> = [
  { where: 'headers', c: { name: 'x-a', value: '1' } },
  { where: 'headers', c: { name: 'X-A', regex: '[0-9]' } },
  { where: 'headers', c: { name: 'x-b', present: true } },
  { where: 'headers', c: { name: 'x-b', present: false } },
  { where: 'query', c: { name: 'q', value: '1' } },
  { where: 'query', c: { name: 'q', regex: '\\d+' } },
];

const routeArb = fc.record({
  hosts: fc.subarray([...HOSTS], { maxLength: 2 }),
  path: fc.constantFrom(...PATHS),
  methods: fc.constantFrom(...METHODS),
  conditions: fc.subarray(
    CONDITIONS.map((_, i) => i),
    { maxLength: 3 },
  ),
});

const requestArb = fc.record({
  host: fc.constantFrom('a.test', 'b.test', 'x.a.test', 'y.a.test', 'c.test', 'A.TEST:81', 'deep.x.a.test', 'other'),
  method: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT'),
  path: fc.constantFrom('/u/me', '/u/7', '/u/abc', '/u/7/x', '/v/1', '/w', '/u/a/b', '/'),
  xa: fc.constantFrom(undefined, '1', '2', 'z'),
  xb: fc.constantFrom(undefined, ''),
  q: fc.constantFrom('', '?q=1', '?q=12', '?q=z', '?r=1&q=1'),
});

type RouteSpec = typeof routeArb extends fc.Arbitrary<infer R> ? R : never;
type RequestSpec = typeof requestArb extends fc.Arbitrary<infer R> ? R : never;

function toConfig(r: RouteSpec): RouteConfig {
  const match: { headers?: MatchCondition[]; query?: MatchCondition[] } = {};
  for (const i of r.conditions) {
    const { where, c } = CONDITIONS[i]!;
    (match[where] ??= []).push(c);
  }
  return { path: r.path, methods: [...r.methods], plugins: [], response: { status: 200, headers: {}, body: '' }, hosts: [...r.hosts], match };
}

// ---- the plain reference: filter every route, sort by the rules ----

function hostTier(patterns: readonly string[], requestHost: string): number {
  if (patterns.length === 0) return 2;
  const host = requestHost.toLowerCase().replace(/:\d*$/, '').replace(/\.$/, '');
  const names = patterns.map((p) => p.toLowerCase().replace(/\.$/, ''));
  if (names.includes(host)) return 0;
  const firstDot = host.indexOf('.');
  if (firstDot !== -1 && names.includes(`*${host.slice(firstDot)}`)) return 1;
  return -1;
}

/** The router's method order: exact method, then `*`, then GET for HEAD; -1 when none applies. */
function methodTier(methods: readonly string[], method: string): number {
  if (methods.includes(method)) return 0;
  if (methods.includes('*')) return 1;
  if (method === 'HEAD' && methods.includes('GET')) return 2;
  return -1;
}

function pathMatches(pattern: string, path: string): boolean {
  const r = routerVariants.linear!<true>();
  r.add('GET', pattern, true);
  return r.find('GET', path) !== null;
}

function conditionHolds(c: MatchCondition, where: 'headers' | 'query', req: RequestSpec): boolean {
  const v = where === 'headers' ? (c.name.toLowerCase() === 'x-a' ? req.xa : req.xb) : (new URLSearchParams(req.q).get(c.name) ?? undefined);
  if (c.present !== undefined) return c.present === (v !== undefined);
  if (v === undefined) return false;
  if (c.value !== undefined) return v === c.value;
  return new RegExp(`^(?:${c.regex!})$`).test(v);
}

/** The params the winning route's own pattern gives the path. */
function paramsOf(pattern: string, path: string): Record<string, string> {
  const r = routerVariants.linear!<true>();
  r.add('GET', pattern, true);
  return { ...r.find('GET', path)!.params };
}

function reference(routes: RouteSpec[], req: RequestSpec): number | null {
  const survivors = routes
    .map((r, index) => ({ r, index, host: hostTier(r.hosts, req.host), method: methodTier(r.methods, req.method), parsed: parseRoutePattern(r.path) }))
    .filter((x) => x.host !== -1 && x.method !== -1 && pathMatches(x.r.path, req.path))
    .filter((x) => x.r.conditions.every((i) => conditionHolds(CONDITIONS[i]!.c, CONDITIONS[i]!.where, req)));
  survivors.sort(
    (a, b) => a.host - b.host || a.method - b.method || compareRoutes(a.parsed, b.parsed) || b.r.conditions.length - a.r.conditions.length || a.index - b.index,
  );
  return survivors[0]?.index ?? null;
}

/** Raw header fields as a server engine gives them; names in the case clients happen to send. */
function rawOf(headers: Record<string, string>): string[] {
  return Object.entries(headers).flat();
}

function headersOf(req: RequestSpec): string[] {
  const h: Record<string, string> = { Host: req.host };
  if (req.xa !== undefined) h['X-A'] = req.xa;
  if (req.xb !== undefined) h['x-b'] = req.xb;
  return rawOf(h);
}

describe('route selection against the reference (filter every route, sort by the rules)', () => {
  for (const variant of ['hybrid', 'linear', 'radix']) {
    it(`agrees on random tables (${variant} router)`, () => {
      fc.assert(
        fc.property(fc.array(routeArb, { minLength: 1, maxLength: 8 }), fc.array(requestArb, { minLength: 1, maxLength: 10 }), (specs, requests) => {
          const entries = specs.map((s, i) => selectEntry(toConfig(s), i, i));
          const selector = new RouteSelector(entries, routerVariants[variant]!);
          for (const req of requests) {
            const got = selector.find(req.method, req.path + req.q, headersOf(req));
            const want = reference(specs, req);
            expect(got === null ? null : got.value, JSON.stringify(req)).toBe(want);
            if (got !== null && want !== null) expect({ ...got.params }).toEqual(paramsOf(specs[want]!.path, req.path));
          }
        }),
        { numRuns: 300 },
      );
    });
  }
});

describe('precedence rows (README)', () => {
  const route = (over: Partial<RouteConfig>): RouteConfig => ({
    path: '/x',
    methods: ['GET'],
    plugins: [],
    response: { status: 200, headers: {}, body: '' },
    ...over,
  });
  const pick = (configs: RouteConfig[], host: string, path = '/x', headers: Record<string, string> = {}): number | null => {
    const s = new RouteSelector(
      configs.map((c, i) => selectEntry(c, i, i)),
      routerVariants.hybrid!,
    );
    return s.find('GET', path, rawOf({ host, ...headers }))?.value ?? null;
  };

  it('exact host over wildcard host over none', () => {
    const rs = [route({}), route({ hosts: ['*.e.com'] }), route({ hosts: ['a.e.com'] })];
    expect(pick(rs, 'a.e.com')).toBe(2);
    expect(pick(rs, 'b.e.com')).toBe(1);
    expect(pick(rs, 'e.com')).toBe(0);
  });

  it('then the method: exact over * over GET for HEAD', () => {
    const s = new RouteSelector(
      [route({ methods: ['GET'] }), route({ methods: ['*'] }), route({ path: '/y', methods: ['GET'] }), route({ path: '/y', methods: ['HEAD'] })].map((c, i) =>
        selectEntry(c, i, i),
      ),
      routerVariants.hybrid!,
    );
    expect(s.find('GET', '/x', rawOf({ host: 'h' }))?.value).toBe(0);
    expect(s.find('POST', '/x', rawOf({ host: 'h' }))?.value).toBe(1);
    expect(s.find('HEAD', '/x', rawOf({ host: 'h' }))?.value).toBe(1);
    expect(s.find('HEAD', '/y', rawOf({ host: 'h' }))?.value).toBe(3);
  });

  it('then the path: static over param over wildcard', () => {
    const rs = [route({ path: '/*' }), route({ path: '/:p' }), route({ path: '/x' })];
    expect(pick(rs, 'h')).toBe(2);
    expect(pick(rs, 'h', '/y')).toBe(1);
    expect(pick(rs, 'h', '/y/z')).toBe(0);
  });

  it('then more match conditions', () => {
    const one = { headers: [{ name: 'a', value: '1' }] };
    const two = {
      headers: [
        { name: 'a', value: '1' },
        { name: 'b', present: true },
      ],
    };
    expect(pick([route({ match: one }), route({ match: two })], 'h', '/x', { a: '1', b: '' })).toBe(1);
  });

  it('then config order', () => {
    const m = { query: [{ name: 'q', present: true }] };
    expect(pick([route({ match: m }), route({ match: { headers: [{ name: 'a', present: true }] } })], 'h', '/x?q', { a: '' })).toBe(0);
  });
});

describe('selection helpers', () => {
  it('reads a header from the raw fields, any case, repeated fields joined', () => {
    expect(rawHeader(['Host', 'a', 'X-Tag', 'one', 'x-tag', 'two'], 'x-tag')).toBe('one, two');
    expect(rawHeader(['Host', 'a'], 'x-tag')).toBeUndefined();
    expect(rawHeader(['X-Tags', 'a'], 'x-tag')).toBeUndefined();
  });

  it('reads the first query value, decoded', () => {
    expect(queryValue('/p?a=1&a=2', 'a')).toBe('1');
    expect(queryValue('/p?x&a=b+c%21', 'a')).toBe('b c!');
    expect(queryValue('/p?x', 'x')).toBe('');
    expect(queryValue('/p?x=%zz', 'x')).toBe('%zz');
    expect(queryValue('/p#a=1', 'a')).toBeUndefined();
    expect(queryValue('/p?b=1#a=1', 'a')).toBeUndefined();
    expect(queryValue('/p', 'a')).toBeUndefined();
  });

  it('keys a request host without port, one trailing dot or case; IPv6 canonical', () => {
    expect(requestHostKey('Example.COM.:8080')).toBe('example.com');
    expect(requestHostKey('[0:0::1]:80')).toBe('[::1]');
    expect(requestHostKey('[::FFFF:127.0.0.1]')).toBe('[::ffff:7f00:1]');
  });

  it('names the routes that can never win and the route in their way', () => {
    const base = { methods: ['GET'], plugins: [], response: { status: 200, headers: {}, body: '' } };
    const configs: RouteConfig[] = [
      { ...base, path: '/a', match: { headers: [{ name: 'x', value: '1' }] } },
      { ...base, path: '/a', match: { headers: [{ name: 'x', value: '1' }] } },
      { ...base, path: '/a', hosts: ['h.test'] },
      { ...base, path: '/a', hosts: ['h.test', 'i.test'] },
      { ...base, path: '/a', hosts: ['h.test'] },
    ];
    expect(neverWinning(configs.map((c, i) => selectEntry(c, i, i)))).toEqual([
      { index: 1, by: 0 },
      { index: 4, by: 2 },
    ]);
  });

  it('runs regexes on the whole value', () => {
    expect(compileRouteRegex('b').test('abc')).toBe(false);
    expect(compileRouteRegex('a.c').test('a\nc')).toBe(true);
  });
});
