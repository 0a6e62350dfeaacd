import { describe, expect, it } from 'vitest';
import { unsafeRegexReason } from '../../core/config/regex-safety.js';
import { validateConfig } from '../../core/config/validator.js';
import { configWarnings } from '../../core/config/warnings.js';

/** Config validation of `hosts`, `match`, `redirect` and the regex `rewrite`: each problem names its JSON path. */
function errorsOf(route: Record<string, unknown>, extra: Record<string, unknown> = {}): string[] {
  const r = validateConfig({
    routes: [
      { path: '/x', response: { body: '' } },
      { path: '/y', ...route },
    ],
    ...extra,
  });
  return r.ok ? [] : r.errors;
}

describe('regexes that would backtrack catastrophically', () => {
  const refused = [
    '(a+)+',
    '(a*)*b',
    '(a?){2,}a{2}',
    '(?:\\d{1,3})+$',
    '(a|ab)*c',
    '(\\w|_)+x',
    '\\d+\\d+x',
    '.*a.*b',
    '(x+x+)+y',
    '(a|)*',
    'a(?=b)',
    '(a)\\1',
  ];
  for (const source of refused) {
    it(`refuses ${source}`, () => {
      expect(unsafeRegexReason(source)).not.toBeNull();
    });
  }

  const accepted = [
    '.*Chrome.*',
    '^Mozilla/.*Chrome/.*$',
    '[a-z]+\\.[a-z]+',
    'v[0-9]+',
    '(ab|cd)*',
    '\\d+-\\d+',
    'beta|canary',
    '[0-9a-f]{8}-[0-9a-f]{4}',
    '(?<id>[^/]+)',
  ];
  for (const source of accepted) {
    it(`accepts ${source}`, () => {
      expect(unsafeRegexReason(source)).toBeNull();
    });
  }

  it('names the JSON path and the rule in the config error', () => {
    expect(errorsOf({ response: { body: '' }, match: { headers: [{ name: 'x', regex: '(a+)+' }] } })).toEqual([
      '/routes/1/match/headers/0/regex: refused: nested repetition: a repeated group whose body can itself match a varying number of times or nothing (e.g. "(a+)+")',
    ]);
    expect(errorsOf({ response: { body: '' }, match: { query: [{ name: 'q', regex: '\\d+\\d+' }] } })[0]).toMatch(
      /^\/routes\/1\/match\/query\/0\/regex: refused: two unbounded/,
    );
    expect(errorsOf({ upstream: 'u', rewrite: { regex: '/(a|ab)*', replacement: '/' } }, { upstreams: { u: { targets: ['http://127.0.0.1:1'] } } })[0]).toMatch(
      /^\/routes\/1\/rewrite\/regex: refused: a repeated alternation/,
    );
    expect(errorsOf({ response: { body: '' }, match: { headers: [{ name: 'x', regex: '(' }] } })[0]).toMatch(
      /^\/routes\/1\/match\/headers\/0\/regex: refused: invalid regular expression/,
    );
  });
});

describe('route selection config', () => {
  it('checks hosts', () => {
    expect(errorsOf({ response: { body: '' }, hosts: ['ok.example.com', '*.ok.test', '[::1]', 'a.*.b', 'h:80', 'sp ace', '[nope]', 'x.'] })).toEqual([
      '/routes/1/hosts/3: "a.*.b": a wildcard may only be the whole first label ("*.example.com")',
      '/routes/1/hosts/4: "h:80": no port (routes match the host whatever the port)',
      '/routes/1/hosts/5: "sp ace" is not a host name',
      '/routes/1/hosts/6: "[nope]" is not a bracketed IPv6 address',
    ]);
  });

  it('wants exactly one test per condition and a header name that is a token', () => {
    expect(
      errorsOf({ response: { body: '' }, match: { headers: [{ name: 'x' }, { name: 'y', value: '1', present: true }, { name: 'a b', value: '' }] } }),
    ).toEqual([
      '/routes/1/match/headers/0: must have exactly one of "value", "regex", "present" (found none)',
      '/routes/1/match/headers/1: must have exactly one of "value", "regex", "present" (found value, present)',
      '/routes/1/match/headers/2/name: "a b" is not an HTTP header name',
    ]);
  });

  it('takes redirect as the route kind, one of path or prefix', () => {
    expect(errorsOf({ redirect: { path: '/a', prefix: '/b' } })).toEqual([
      '/routes/1/redirect: "path" and "prefix" are exclusive (replace the whole path, or its prefix)',
    ]);
    expect(errorsOf({ redirect: { status: 304 } })[0]).toBe('/routes/1/redirect/status: must be one of 301, 302, 303, 307, 308');
    expect(errorsOf({ redirect: {}, response: { body: '' } })[0]).toBe(
      '/routes/1: must have exactly one of "response", "upstream", "backends", "handler", "redirect" (found response, redirect)',
    );
    const ok = validateConfig({ routes: [{ path: '/r', redirect: { scheme: 'https' } }] });
    expect(ok.ok && ok.value.routes[0]!.redirect).toEqual({ scheme: 'https', status: 302 });
  });

  it('checks a regex rewrite: its shape and the groups its replacement names', () => {
    const up = { upstreams: { u: { targets: ['http://127.0.0.1:1'] } } };
    expect(errorsOf({ upstream: 'u', rewrite: { regex: '/(.*)', replacement: '/v/$2' } }, up)).toEqual([
      '/routes/1/rewrite/replacement: "$2": the regex has 1 capture group(s)',
    ]);
    expect(errorsOf({ upstream: 'u', rewrite: { regex: '/(.*)', replacement: '/v/$<n>' } }, up)).toEqual([
      '/routes/1/rewrite/replacement: "$<n>" names no group of the regex',
    ]);
    expect(errorsOf({ upstream: 'u', rewrite: { regex: '/x' } }, up)[0]).toBe(
      '/routes/1/rewrite: must be a path starting with "/" (naming :params and *) or { regex, replacement } with a replacement starting with "/"',
    );
    expect(errorsOf({ upstream: 'u', rewrite: '/items/:id' }, up)).toEqual([]);
  });

  it('lets routes share a method and path when their hosts or conditions differ; a plain duplicate stays an error', () => {
    expect(errorsOf({ response: { body: '' }, path: '/x', hosts: ['a.test'] })).toEqual([]);
    expect(errorsOf({ response: { body: '' }, path: '/x', match: { query: [{ name: 'q', present: true }] } })).toEqual([]);
    expect(errorsOf({ response: { body: '' }, path: '/x' })).toEqual(['/routes/1/path: invalid route pattern "/x": duplicate route for method *']);
    // the same shape under other param names, for another host or another condition: each keeps its own names
    const r = validateConfig({
      routes: [
        { path: '/u/:id', hosts: ['a.test'], response: { body: '' } },
        { path: '/u/:name', hosts: ['b.test'], response: { body: '' } },
        { path: '/u/:user', hosts: ['a.test'], match: { query: [{ name: 'q', present: true }] }, response: { body: '' } },
      ],
    });
    expect(r.ok ? [] : r.errors).toEqual([]);
    // a pattern the router refuses is named once, whichever check found it
    const bad = validateConfig({
      routes: [
        { path: '/a', hosts: ['h.test'], response: { body: '' } },
        { path: '/b/*/c', response: { body: '' } },
      ],
    });
    expect(bad.ok ? [] : bad.errors).toHaveLength(1);
    expect(bad.ok ? '' : bad.errors[0]).toMatch(/^\/routes\/1\/path: invalid route pattern "\/b\/\*\/c"/);
  });

  it('warns about a route that can never win', () => {
    const r = validateConfig({
      routes: [
        { path: '/a', hosts: ['h.test'], response: { body: '1' } },
        { path: '/a', hosts: ['H.test.'], response: { body: '2' } },
        { path: '/a', hosts: ['h.test', 'i.test'], response: { body: '3' } },
      ],
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(configWarnings(r.value).filter((w) => w.startsWith('/routes'))).toEqual([
      '/routes/1: can never win: /routes/0 matches the same hosts, methods and path whenever it does, and comes first',
    ]);
  });
});
