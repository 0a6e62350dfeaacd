/**
 * Property test: on random route tables (small alphabet so static/param/wildcard routes collide) and random
 * request paths, every own variant answers exactly like `linear` (value, params, or the thrown error).
 * Reference adapters are excluded: their documented semantic differences are covered by the skip lists.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Router } from '../../core/contracts/router.js';
import { createRouter as createCompiledRouter } from '../../variants/router/compiled/index.js';
import { referenceRouters, routerVariants } from '../../variants/router/index.js';
import { parseRoutePattern } from '../../variants/router/shared/route-pattern.js';

// few literals and several overlapping pattern shapes, so routes compete for the same segments
const SEGMENT_KINDS = ['a', 'b', '', 'x.json', ':P', ':P-:Q', ':P.json', ':P(\\d+)', 'v:P', '*'] as const;
const PATH_SEGMENTS = ['a', 'b', '', '1', '12', 'a-b', 'v1-2', '1-2.json', 'x.json', 'v1', 'a%20b', '%2F', '%zz', 'A'];

const routeArb = fc.record({
  method: fc.constantFrom('GET', 'POST', '*'),
  segments: fc.array(fc.constantFrom(...SEGMENT_KINDS), { minLength: 1, maxLength: 4 }),
  names: fc.constantFrom('p', 'r'),
});

function routePattern(r: { segments: readonly string[]; names: string }): string | null {
  const star = r.segments.indexOf('*');
  if (star !== -1 && star !== r.segments.length - 1) return null;
  return '/' + r.segments.map((s, i) => s.replace('P', `${r.names}${i}`).replace('Q', `${r.names}${i}b`)).join('/');
}

const requestArb = fc.record({
  method: fc.constantFrom('GET', 'POST', 'HEAD', 'PUT'),
  /** request derived from route #routeIdx (so it nearly matches) unless `random` */
  random: fc.boolean(),
  routeIdx: fc.nat(),
  keep: fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
  fills: fc.array(fc.constantFrom(...PATH_SEGMENTS), { minLength: 6, maxLength: 6 }),
  tail: fc.array(fc.constantFrom(...PATH_SEGMENTS), { maxLength: 3 }),
  query: fc.constantFrom('', '', '?q=1', '?'),
});

type Req = typeof requestArb extends fc.Arbitrary<infer R> ? R : never;

/** A path that exercises the route's own shape: literal text kept or replaced, params filled randomly. */
function requestPath(q: Req, routes: { segments: readonly string[] }[]): string {
  if (q.random || routes.length === 0) return '/' + q.fills.slice(0, 1 + (q.routeIdx % 5)).join('/') + q.query;
  const segs = routes[q.routeIdx % routes.length]!.segments;
  const out: string[] = [];
  segs.forEach((s, i) => {
    // fills and keep are generated with exactly 6 entries
    const fill = q.fills[i % 6]!;
    const keep = q.keep[i % 6]!;
    if (s === '*') out.push(...q.tail);
    else if (!s.includes(':')) out.push(keep ? s : fill);
    else if (s === ':P-:Q') out.push(keep ? `${fill}-${q.fills[(i + 1) % 6]!}` : fill);
    else if (s === ':P.json') out.push(keep ? fill + '.json' : fill);
    else if (s === 'v:P') out.push(keep ? 'v' + fill : fill);
    else if (s === ':P(\\d+)') out.push(keep ? '12' : fill);
    else out.push(fill);
  });
  return '/' + out.join('/') + q.query;
}

type Outcome = { value: string; params: Record<string, string> } | null | { error: string };

function outcome(fn: () => { value: string; params: Record<string, string> } | null): Outcome {
  try {
    const m = fn();
    return m === null ? null : { value: m.value, params: { ...m.params } };
  } catch (err) {
    return { error: (err as Error).name };
  }
}

const own: Record<string, <T>() => Router<T>> = {};
for (const [name, create] of Object.entries(routerVariants)) if (name !== 'linear' && !referenceRouters.includes(name)) own[name] = create;
// `compiled` with every table over its code budget: the tree walk that serves large tables
own['compiled (over its code budget)'] = <T>() => createCompiledRouter<T>({ codeBudgetChars: 0 });

describe('router variants agree with linear on random tables', () => {
  for (const [name, create] of Object.entries(own)) {
    it(name, () => {
      fc.assert(
        fc.property(fc.array(routeArb, { minLength: 1, maxLength: 12 }), fc.array(requestArb, { minLength: 1, maxLength: 25 }), (routes, requests) => {
          const reference = routerVariants.linear!<string>();
          const candidate = create<string>();
          const seen = new Set<string>();
          routes.forEach((r, i) => {
            const pattern = routePattern(r);
            if (pattern === null) return;
            const key = r.method + ' ' + parseRoutePattern(pattern).key;
            if (seen.has(key)) return; // duplicates are rejected by design; covered by the conformance suite
            seen.add(key);
            reference.add(r.method, pattern, `${i}:${r.method} ${pattern}`);
            candidate.add(r.method, pattern, `${i}:${r.method} ${pattern}`);
          });
          for (const q of requests) {
            const path = requestPath(q, routes);
            expect(
              outcome(() => candidate.find(q.method, path)),
              `${q.method} ${path}`,
            ).toEqual(outcome(() => reference.find(q.method, path)));
          }
        }),
        { numRuns: 200 },
      );
    });
  }

  it('the generator really produces matches, misses and backtracking (sanity)', () => {
    const r = routerVariants.linear!<string>();
    r.add('GET', '/a/:p0', 'param');
    r.add('GET', '/a/b/x.json', 'static');
    r.add('GET', '/a/*', 'wild');
    expect(r.find('GET', '/a/b')?.value).toBe('param');
    expect(r.find('GET', '/a/b/1')?.value).toBe('wild');
  });
});
