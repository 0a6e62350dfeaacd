/**
 * The ONE conformance table every router variant must pass (pattern of Hono's src/router/common.case.test.ts).
 * A reference adapter may list cases it cannot express in `unsupported` (case name → reason): those are
 * reported as skipped with the reason in the title, and a companion test checks that they really fail,
 * so a skip list can neither hide a case silently nor go stale.
 */
import { describe, expect, it } from 'vitest';
import { MalformedPathError, RoutePatternError, type Router, type RouterFactory } from '../../core/contracts/router.js';

type Expect = { value: string; params?: Record<string, string> } | null | 'malformed';

export interface Check {
  method?: string;
  path: string;
  expect: Expect;
}

export interface RouterCase {
  name: string;
  /** [method, pattern, value] added in order */
  routes?: [string, string, string][];
  checks?: Check[];
  /** [method, pattern] that `add` must reject with RoutePatternError */
  invalid?: [string, string][];
  /** extra assertions */
  run?: (router: Router<string>) => void;
}

const get = (path: string, expect: Expect): Check => ({ path, expect });
const on = (method: string, path: string, expect: Expect): Check => ({ method, path, expect });
const hit = (value: string, params: Record<string, string> = {}) => ({ value, params });

export const cases: RouterCase[] = [
  {
    name: 'static routes',
    routes: [
      ['GET', '/', 'root'],
      ['GET', '/users/list', 'list'],
      ['GET', '/users/list/all', 'all'],
      ['GET', '/user', 'user'],
    ],
    checks: [
      get('/', hit('root')),
      get('/users/list', hit('list')),
      get('/users/list/all', hit('all')),
      get('/user', hit('user')),
      get('/users', null),
      get('/users/lis', null),
      get('/users/listx', null),
      get('/users/list/al', null),
    ],
  },
  {
    name: 'targets that are not origin-form paths never match',
    routes: [
      ['GET', '/', 'root'],
      ['GET', '/*', 'all'],
    ],
    checks: [get('', null), get('*', null), get('?x=1', null), get('http://example.test/', null)],
  },
  {
    name: 'named params',
    routes: [
      ['GET', '/users/:id', 'user'],
      ['GET', '/users/:id/posts/:postId', 'post'],
    ],
    checks: [
      get('/users/42', hit('user', { id: '42' })),
      get('/users/42/posts/7', hit('post', { id: '42', postId: '7' })),
      get('/users/', null), // a plain param never matches an empty segment
      get('/users/42/posts', null),
      get('/users/42/posts/', null),
    ],
  },
  {
    name: 'different param names at the same position',
    routes: [
      ['GET', '/u/:id/a', 'a'],
      ['GET', '/u/:name/b', 'b'],
    ],
    checks: [get('/u/1/a', hit('a', { id: '1' })), get('/u/2/b', hit('b', { name: '2' }))],
  },
  {
    name: 'several params in one segment',
    routes: [['GET', '/flights/:from-:to', 'flight']],
    checks: [
      get('/flights/SFO-LAX', hit('flight', { from: 'SFO', to: 'LAX' })),
      // a param ends at the next literal character
      get('/flights/SFO-LAX-JFK', hit('flight', { from: 'SFO', to: 'LAX-JFK' })),
      get('/flights/SFO', null),
      get('/flights/-LAX', null),
      get('/flights/SFO-', null),
    ],
  },
  {
    name: 'params with literal text in the segment',
    routes: [
      ['GET', '/files/:name.:ext', 'name.ext'],
      ['GET', '/files/:name.json', 'json'],
      ['GET', '/v:version/info', 'version'],
    ],
    checks: [
      get('/files/data.json', hit('json', { name: 'data' })), // more literal text is more specific
      get('/files/a.tar.gz', hit('name.ext', { name: 'a', ext: 'tar.gz' })),
      get('/files/noext', null),
      get('/v2/info', hit('version', { version: '2' })),
      get('/v/info', null),
    ],
  },
  {
    name: 'regex params match the whole value',
    routes: [
      ['GET', '/r/:id(\\d+)', 'num'],
      ['GET', '/img/:size(small|large)/:file', 'img'],
    ],
    checks: [
      get('/r/123', hit('num', { id: '123' })),
      get('/r/12a', null),
      get('/r/a12', null),
      get('/img/small/a.png', hit('img', { size: 'small', file: 'a.png' })),
      get('/img/smaller/a.png', null),
      get('/img/medium/a.png', null),
    ],
  },
  {
    name: 'regex param non-match falls back to another route',
    routes: [
      ['GET', '/orders/:id(\\d+)', 'by-id'],
      ['GET', '/orders/:slug', 'by-slug'],
      ['GET', '/n/:id(\\d+)/edit', 'edit'],
      ['GET', '/n/:slug/view', 'view'],
    ],
    checks: [
      get('/orders/123', hit('by-id', { id: '123' })),
      get('/orders/abc', hit('by-slug', { slug: 'abc' })),
      get('/orders/12a', hit('by-slug', { slug: '12a' })),
      get('/n/12/edit', hit('edit', { id: '12' })),
      get('/n/12/view', hit('view', { slug: '12' })), // regex branch dead-ends deeper: backtrack
    ],
  },
  {
    name: 'regex params in a multi-param segment',
    routes: [['GET', '/date/:y(\\d{4})-:m(\\d{2})', 'date']],
    checks: [get('/date/2024-05', hit('date', { y: '2024', m: '05' })), get('/date/24-05', null), get('/date/2024-5', null)],
  },
  {
    name: 'regex constraints test the raw (still encoded) text',
    routes: [['GET', '/c/:id(\\d+)', 'num']],
    checks: [get('/c/%31', null), get('/c/1', hit('num', { id: '1' }))],
  },
  {
    name: 'regex constraint containing a capture group',
    routes: [['GET', '/g/:v(a(b|c)d)/:rest', 'g']],
    checks: [get('/g/abd/x', hit('g', { v: 'abd', rest: 'x' })), get('/g/aed/x', null)],
  },
  {
    name: 'wildcard captures the rest, possibly empty',
    routes: [['GET', '/static/*', 'static']],
    checks: [
      get('/static/app.js', hit('static', { '*': 'app.js' })),
      get('/static/js/vendor/app.js', hit('static', { '*': 'js/vendor/app.js' })),
      get('/static/', hit('static', { '*': '' })),
      get('/static', null),
      get('/staticx/a', null),
    ],
  },
  {
    name: 'root wildcard',
    routes: [['GET', '/*', 'all']],
    checks: [get('/', hit('all', { '*': '' })), get('/anything/deep/x', hit('all', { '*': 'anything/deep/x' }))],
  },
  {
    name: 'wildcard after a param',
    routes: [['GET', '/u/:id/*', 'rest']],
    checks: [get('/u/1/a/b', hit('rest', { id: '1', '*': 'a/b' })), get('/u/1/', hit('rest', { id: '1', '*': '' }))],
  },
  {
    name: 'priority static > param > wildcard with backtracking',
    routes: [
      ['GET', '/a/*', 'wild'],
      ['GET', '/a/:x/d', 'param'],
      ['GET', '/a/b/c', 'static'],
    ],
    checks: [
      get('/a/b/c', hit('static')),
      get('/a/b/d', hit('param', { x: 'b' })),
      get('/a/z/d', hit('param', { x: 'z' })),
      get('/a/b/e', hit('wild', { '*': 'b/e' })),
      get('/a/b', hit('wild', { '*': 'b' })),
      get('/a/b/c/d', hit('wild', { '*': 'b/c/d' })),
    ],
  },
  {
    name: 'deep backtracking across several params',
    routes: [
      ['GET', '/x/:a/:b/end', 'ab-end'],
      ['GET', '/x/:a/static/other', 'static-other'],
      ['GET', '/x/*', 'wild'],
    ],
    checks: [
      get('/x/1/static/end', hit('ab-end', { a: '1', b: 'static' })),
      get('/x/1/static/other', hit('static-other', { a: '1' })),
      get('/x/1/2/3', hit('wild', { '*': '1/2/3' })),
    ],
  },
  {
    name: 'static beats param at the same segment',
    routes: [
      ['GET', '/users/:id', 'param'],
      ['GET', '/users/me', 'me'],
    ],
    checks: [get('/users/me', hit('me')), get('/users/mee', hit('param', { id: 'mee' })), get('/users/m', hit('param', { id: 'm' }))],
  },
  {
    name: 'pattern segment beats plain param, plain param beats wildcard',
    routes: [
      ['GET', '/p/*', 'wild'],
      ['GET', '/p/:a', 'plain'],
      ['GET', '/p/:a.txt', 'txt'],
    ],
    checks: [get('/p/x.txt', hit('txt', { a: 'x' })), get('/p/x', hit('plain', { a: 'x' })), get('/p/x/y', hit('wild', { '*': 'x/y' }))],
  },
  {
    name: 'methods are matched exactly',
    routes: [
      ['GET', '/r', 'get'],
      ['POST', '/r', 'post'],
      ['PUT', '/r/:id', 'put'],
    ],
    checks: [
      on('GET', '/r', hit('get')),
      on('POST', '/r', hit('post')),
      on('DELETE', '/r', null),
      on('PUT', '/r/1', hit('put', { id: '1' })),
      on('GET', '/r/1', null),
      on('get', '/r', null), // methods are case-sensitive tokens
    ],
  },
  {
    name: "'*' routes match any method, after the exact method",
    routes: [
      ['*', '/any', 'any'],
      ['GET', '/both', 'get-both'],
      ['*', '/both', 'any-both'],
      ['GET', '/m/:id', 'get-param'],
      ['*', '/m/static', 'any-static'],
    ],
    checks: [
      on('POST', '/any', hit('any')),
      on('GET', '/any', hit('any')),
      on('GET', '/both', hit('get-both')),
      on('PATCH', '/both', hit('any-both')),
      // the exact method's tree is searched completely before '*'
      on('GET', '/m/static', hit('get-param', { id: 'static' })),
      on('POST', '/m/static', hit('any-static')),
    ],
  },
  {
    name: 'non-standard methods',
    routes: [
      ['PURGE', '/cache', 'purge'],
      ['FOO', '/x', 'foo'],
    ],
    checks: [on('PURGE', '/cache', hit('purge')), on('FOO', '/x', hit('foo')), on('BAR', '/x', null)],
  },
  {
    name: 'HEAD falls back to GET',
    routes: [
      ['GET', '/h', 'get'],
      ['GET', '/h/:id', 'get-id'],
    ],
    checks: [on('HEAD', '/h', hit('get')), on('HEAD', '/h/1', hit('get-id', { id: '1' })), on('HEAD', '/nope', null)],
  },
  {
    name: 'exact HEAD route wins over GET',
    routes: [
      ['GET', '/h', 'get'],
      ['HEAD', '/h', 'head'],
    ],
    checks: [on('HEAD', '/h', hit('head')), on('GET', '/h', hit('get'))],
  },
  {
    name: "HEAD tries '*' before GET",
    routes: [
      ['GET', '/o', 'get'],
      ['*', '/o', 'any'],
    ],
    checks: [on('HEAD', '/o', hit('any'))],
  },
  {
    name: '404 and method mismatch both return null',
    routes: [['GET', '/only', 'only']],
    checks: [on('POST', '/only', null), on('GET', '/nothing', null), on('OPTIONS', '/only', null)],
  },
  {
    name: 'trailing slash is significant',
    routes: [
      ['GET', '/t', 't'],
      ['GET', '/d/', 'd'],
      ['GET', '/users/:id', 'user'],
    ],
    checks: [get('/t', hit('t')), get('/t/', null), get('/d/', hit('d')), get('/d', null), get('/users/1/', null)],
  },
  {
    name: 'empty segments are literal',
    routes: [
      ['GET', '/a//b', 'double'],
      ['GET', '/e/:x/f', 'param'],
      ['GET', '/w/*', 'wild'],
      ['GET', '/', 'root'],
    ],
    checks: [get('/a//b', hit('double')), get('/a/b', null), get('/e//f', null), get('/w//x', hit('wild', { '*': '/x' })), get('//', null)],
  },
  {
    name: 'params are percent-decoded',
    routes: [
      ['GET', '/p/:name', 'param'],
      ['GET', '/w/*', 'wild'],
    ],
    checks: [
      get('/p/a%20b', hit('param', { name: 'a b' })),
      get('/p/a%2Fb', hit('param', { name: 'a/b' })), // %2F is not a separator
      get('/p/caf%C3%A9', hit('param', { name: 'café' })),
      get('/p/%F0%9F%98%80', hit('param', { name: '😀' })),
      get('/p/a+b', hit('param', { name: 'a+b' })),
      get('/p/100%25', hit('param', { name: '100%' })),
      get('/w/x%2Fy/z%3F', hit('wild', { '*': 'x/y/z?' })),
    ],
  },
  {
    name: 'multi-param segments are split on the raw text, then decoded',
    routes: [['GET', '/m/:a-:b', 'multi']],
    checks: [get('/m/a%2Db-c', hit('multi', { a: 'a-b', b: 'c' })), get('/m/x-%20', hit('multi', { a: 'x', b: ' ' }))],
  },
  {
    name: 'static text is matched on the raw path',
    routes: [
      ['GET', '/users/list', 'list'],
      ['GET', '/users/:id', 'param'],
    ],
    checks: [get('/users/%6Cist', hit('param', { id: 'list' }))],
  },
  {
    name: 'malformed percent-encoding in a param throws MalformedPathError',
    routes: [
      ['GET', '/p/:name', 'param'],
      ['GET', '/w/*', 'wild'],
    ],
    checks: [
      get('/p/%E0%A4%A', 'malformed'),
      get('/p/%zz', 'malformed'),
      get('/p/%', 'malformed'),
      get('/w/a/%C3', 'malformed'),
      on('HEAD', '/p/%zz', 'malformed'),
    ],
    run: (router) => {
      try {
        router.find('GET', '/p/%zz');
      } catch (err) {
        expect((err as MalformedPathError).statusCode).toBe(400);
      }
    },
  },
  {
    name: 'malformed encoding outside any param is not an error',
    routes: [['GET', '/s', 's']],
    checks: [get('/s%zz', null), get('/x/%zz', null)],
  },
  {
    name: 'query string is ignored',
    routes: [
      ['GET', '/q', 'q'],
      ['GET', '/q/:id', 'id'],
    ],
    checks: [
      get('/q?x=1', hit('q')),
      get('/q?', hit('q')),
      get('/q/5?a=b&c=%zz', hit('id', { id: '5' })),
      get('/q/5?next=/q/6', hit('id', { id: '5' })),
      get('/q/?x', null),
    ],
  },
  {
    name: 'matching is case-sensitive',
    routes: [['GET', '/Users/:id', 'users']],
    checks: [get('/Users/AbC', hit('users', { id: 'AbC' })), get('/users/1', null), get('/USERS/1', null)],
  },
  {
    name: 'Object.prototype names as routes and params',
    routes: [
      ['GET', '/constructor', 'constructor'],
      ['GET', '/__proto__', 'proto'],
      ['GET', '/toString', 'toString'],
      ['GET', '/hasOwnProperty/:id', 'hop'],
      ['GET', '/x/:constructor', 'param-constructor'],
      ['GET', '/y/:toString/:valueOf', 'param-methods'],
    ],
    checks: [
      get('/constructor', hit('constructor')),
      get('/__proto__', hit('proto')),
      get('/toString', hit('toString')),
      get('/valueOf', null),
      get('/__defineGetter__', null),
      get('/hasOwnProperty/1', hit('hop', { id: '1' })),
      get('/x/1', hit('param-constructor', { constructor: '1' })),
      get('/y/a/b', hit('param-methods', { toString: 'a', valueOf: 'b' })),
      on('constructor', '/constructor', null),
      on('__proto__', '/__proto__', null),
    ],
    run: (router) => {
      const before = Object.getOwnPropertyNames(Object.prototype).sort();
      router.find('GET', '/__proto__');
      router.find('GET', '/x/__proto__');
      router.find('__proto__', '/x/1');
      expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(before);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.getPrototypeOf({})).toBe(Object.prototype);
      const m = router.find('GET', '/x/1');
      for (const k in m!.params) expect(Object.hasOwn(m!.params, k), `inherited enumerable key ${k}`).toBe(true);
    },
  },
  {
    name: 'Object.prototype names as methods',
    routes: [
      ['toString', '/m', 'to-string-method'],
      ['__proto__', '/m', 'proto-method'],
    ],
    checks: [on('toString', '/m', hit('to-string-method')), on('__proto__', '/m', hit('proto-method')), on('valueOf', '/m', null)],
  },
  {
    name: 'very long paths (10k characters)',
    run: (router) => {
      // compared via booleans/lengths: a failing diff of 10k-char strings would drown the report
      const big = 'a'.repeat(10_000);
      router.add('GET', '/long/:id', 'long');
      router.add('GET', '/files/*', 'files');
      router.add('GET', '/s/' + big, 'static');
      const long = router.find('GET', '/long/' + big);
      expect(long?.value).toBe('long');
      expect(long?.params.id === big, 'param is the whole 10k segment').toBe(true);
      const deep = 'seg/'.repeat(2_500) + 'end';
      const files = router.find('GET', '/files/' + deep);
      expect(files?.value).toBe('files');
      expect(files?.params['*'] === deep, 'wildcard is the whole 10k tail').toBe(true);
      expect(router.find('GET', '/s/' + big)?.value).toBe('static');
      expect(router.find('GET', '/s/' + big + 'b')).toBeNull();
      expect(router.find('GET', '/nope/' + big)).toBeNull();
    },
  },
  {
    name: 'a 500-route table is found correctly',
    run: (router) => {
      const expected: [string, ReturnType<typeof hit>][] = [];
      for (let i = 0; i < 500; i++) {
        const svc = `svc${i % 50}`;
        const kind = i % 5;
        if (kind === 0) {
          router.add('GET', `/${svc}/items/list${i}`, `r${i}`);
          expected.push([`/${svc}/items/list${i}`, hit(`r${i}`)]);
        } else if (kind === 1) {
          router.add('GET', `/${svc}/items/:id/sub${i}`, `r${i}`);
          expected.push([`/${svc}/items/${i * 7}/sub${i}`, hit(`r${i}`, { id: String(i * 7) })]);
        } else if (kind === 2) {
          router.add('POST', `/${svc}/v${i}/:a/:b`, `r${i}`);
          expected.push([`/${svc}/v${i}/x${i}/y`, hit(`r${i}`, { a: `x${i}`, b: 'y' })]);
        } else if (kind === 3) {
          router.add('GET', `/${svc}/assets${i}/*`, `r${i}`);
          expected.push([`/${svc}/assets${i}/a/b.css`, hit(`r${i}`, { '*': 'a/b.css' })]);
        } else {
          router.add('DELETE', `/${svc}/k${i}/:key`, `r${i}`);
          expected.push([`/${svc}/k${i}/key${i}`, hit(`r${i}`, { key: `key${i}` })]);
        }
      }
      for (let i = 0; i < expected.length; i++) {
        const [path, want] = expected[i]!;
        const kind = i % 5;
        const method = kind === 2 ? 'POST' : kind === 4 ? 'DELETE' : 'GET';
        expect(router.find(method, path), `${method} ${path}`).toEqual(want);
      }
      expect(router.find('GET', '/svc1/items/list999')).toBeNull();
      expect(router.find('GET', '/svc1/items/5/sub999')).toBeNull();
    },
  },
  {
    name: 'invalid patterns are rejected',
    invalid: [
      ['GET', ''],
      ['GET', 'users'],
      ['GET', '/a/:'],
      ['GET', '/a/:-x'],
      ['GET', '/a/:(\\d+)'],
      ['GET', '/a/:id('],
      ['GET', '/a/:id()'],
      ['GET', '/a/:id([)'],
      ['GET', '/a/:id(\\d+'],
      ['GET', '/a/*/b'],
      ['GET', '/a/b*'],
      ['GET', '/a*'],
      ['GET', '/a/:x:y'],
      ['GET', '/a/:x/:x'],
      ['GET', '/a/:__proto__'],
      ['GET', '/a?b=1'],
      ['GET', '/a#b'],
      ['GET', '/a/:id((x)\\1)'],
      ['', '/a'],
    ],
  },
  {
    name: 'duplicate routes are rejected, param names do not matter',
    run: (router) => {
      router.add('GET', '/d/:id', 'first');
      expect(() => router.add('GET', '/d/:name', 'second')).toThrow(RoutePatternError);
      router.add('POST', '/d/:id', 'post'); // another method is another route
      router.add('GET', '/s', 'static');
      expect(() => router.add('GET', '/s', 'again')).toThrow(RoutePatternError);
      expect(router.find('GET', '/d/1')).toEqual(hit('first', { id: '1' }));
      expect(router.find('GET', '/s')).toEqual(hit('static'));
    },
  },
  {
    name: 'routes added after lookups are found',
    run: (router) => {
      router.add('GET', '/late/:id', 'first');
      expect(router.find('GET', '/late/1')).toEqual(hit('first', { id: '1' }));
      expect(router.find('GET', '/late/1/x')).toBeNull();
      router.add('GET', '/late/:id/x', 'second');
      router.add('GET', '/late/static', 'static');
      expect(router.find('GET', '/late/1/x')).toEqual(hit('second', { id: '1' }));
      expect(router.find('GET', '/late/static')).toEqual(hit('static'));
    },
  },
  {
    name: 'a rejected route leaves the router usable',
    run: (router) => {
      expect(() => router.add('GET', '/bad/:id(', 'bad')).toThrow(RoutePatternError);
      router.add('GET', '/bad/:id', 'good');
      expect(router.find('GET', '/bad/1')).toEqual(hit('good', { id: '1' }));
    },
  },
  {
    name: 'every match gets its own params object',
    routes: [['GET', '/f/:id', 'f']],
    run: (router) => {
      const a = router.find('GET', '/f/1');
      const b = router.find('GET', '/f/2');
      expect(a!.params).not.toBe(b!.params);
      expect(a!.params).toEqual({ id: '1' });
      expect(b!.params).toEqual({ id: '2' });
    },
  },
];

function runChecks(router: Router<string>, checks: readonly Check[]): void {
  for (const c of checks) {
    const method = c.method ?? 'GET';
    const label = `${method} ${c.path.length > 80 ? c.path.slice(0, 80) + '…' : c.path}`;
    if (c.expect === 'malformed') {
      expect(() => router.find(method, c.path), label).toThrow(MalformedPathError);
      continue;
    }
    const m = router.find(method, c.path);
    if (c.expect === null) {
      expect(m, label).toBeNull();
    } else {
      expect(m, label).not.toBeNull();
      expect({ value: m!.value, params: { ...m!.params } }, label).toEqual({ value: c.expect.value, params: c.expect.params ?? {} });
    }
  }
}

export function runCase(c: RouterCase, createRouter: RouterFactory): void {
  const router = createRouter<string>();
  for (const [method, pattern, value] of c.routes ?? []) router.add(method, pattern, value);
  runChecks(router, c.checks ?? []);
  for (const [method, pattern] of c.invalid ?? []) {
    expect(() => router.add(method, pattern, 'x'), `${method} ${JSON.stringify(pattern)}`).toThrow(RoutePatternError);
  }
  c.run?.(router);
}

export function runRouterConformance(name: string, createRouter: RouterFactory, unsupported: Record<string, string> = {}): void {
  describe(`router conformance: ${name}`, () => {
    for (const c of cases) {
      const reason = unsupported[c.name];
      if (reason !== undefined) {
        it.skip(`${c.name} — unsupported by ${name}: ${reason}`, () => {});
        it(`[skip-list check] ${c.name} really fails on ${name}`, () => {
          expect(() => runCase(c, createRouter)).toThrow();
        });
      } else {
        it(c.name, () => runCase(c, createRouter));
      }
    }
    it('[skip-list check] every skipped case exists', () => {
      const known = new Set(cases.map((c) => c.name));
      expect(Object.keys(unsupported).filter((k) => !known.has(k))).toEqual([]);
    });
  });
}
