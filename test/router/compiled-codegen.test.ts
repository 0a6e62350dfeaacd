/**
 * The `compiled` router generates JavaScript from route tables. No route text may ever become code: these
 * tests register hostile patterns (quotes, backslashes, `${}`, newlines, comment ends, U+2028/U+2029, regex
 * constraints full of the same) and check that (1) they match exactly like `linear`, (2) nothing ran, and
 * (3) the generated source contains no route text at all — only the generator's fixed string literals.
 */
import { describe, expect, it } from 'vitest';
import { compiledSources, createRouter } from '../../variants/router/compiled/index.js';
import { routerVariants } from '../../variants/router/index.js';

const MARK = 'Zq7';

const HOSTILE_TEXT = [
  `'`,
  `"`,
  '`',
  '\\',
  '${globalThis.pwned=1}',
  "');globalThis.pwned=1;('",
  '";globalThis.pwned=1;//',
  '\n',
  '\r\n',
  '\u2028',
  '\u2029',
  '</script>',
  '\u0000',
  '}}}}',
  '\\u0027',
  'é€😀',
];

/** Route patterns (static, param, pattern segment, wildcard, constraint) built around each hostile text. */
function hostileRoutes(): [string, string][] {
  const out: [string, string][] = [];
  HOSTILE_TEXT.forEach((h, i) => {
    const t = `${MARK}${h}${i}`;
    out.push([`/s/${t}`, `static ${i}`]);
    out.push([`/s/${t}/:id`, `param ${i}`]);
    out.push([`/p/${i}/${t}:id`, `pattern ${i}`]);
    out.push([`/w/${t}/*`, `wild ${i}`]);
    out.push([`/r/${i}/:id(${MARK}[*/'"\\\\]${h.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&').replace(/\//g, '\\/')})`, `regex ${i}`]);
    out.push([`/long/${t}${'x'.repeat(20)}/:id`, `long ${i}`]);
  });
  out.push([`/c/:id(${MARK}['"\\\\\`]\\$\\{x\\}|\\*\\/)`, 'constraint']);
  return out;
}

function requests(): string[] {
  const out: string[] = [];
  HOSTILE_TEXT.forEach((h, i) => {
    const t = `${MARK}${h}${i}`;
    out.push(`/r/${i}/${MARK}*${h}`, `/r/${i}/${MARK}'${h}`, `/r/${i}/${MARK}x${h}`);
    out.push(`/s/${t}`, `/s/${t}/42`, `/p/${i}/${t}7`, `/w/${t}/a/b`, `/long/${t}${'x'.repeat(20)}/9`, `/s/${t}x`, `/s/${MARK}${i}`);
  });
  out.push(`/c/${MARK}'`, `/c/${MARK}"`, `/c/${MARK}\\`, `/c/*/`, `/c/${MARK}\${x}`, '/c/nope');
  return out;
}

const outcome = (fn: () => { value: string; params: Record<string, string> } | null) => {
  try {
    const m = fn();
    return m === null ? null : { value: m.value, params: { ...m.params } };
  } catch (err) {
    return { error: (err as Error).name };
  }
};

describe('compiled router: route text never becomes code', () => {
  it('hostile patterns match exactly like linear and run nothing', () => {
    const compiled = createRouter<string>();
    const linear = routerVariants.linear!<string>();
    for (const [p, v] of hostileRoutes()) {
      compiled.add('GET', p, v);
      linear.add('GET', p, v);
    }
    for (const path of requests()) {
      expect(
        outcome(() => compiled.find('GET', path)),
        JSON.stringify(path),
      ).toEqual(outcome(() => linear.find('GET', path)));
    }
    // the statics and params really matched (the comparison above is not vacuous)
    expect(compiled.find('GET', `/s/${MARK}'0`)?.value).toBe('static 0');
    const nl = HOSTILE_TEXT.indexOf('\n');
    const ls = HOSTILE_TEXT.indexOf('\u2028');
    expect(compiled.find('GET', `/s/${MARK}\n${nl}/1`)).toEqual({ value: `param ${nl}`, params: { id: '1' } });
    expect(compiled.find('GET', `/w/${MARK}\u2028${ls}/x`)).toEqual({ value: `wild ${ls}`, params: { '*': 'x' } });
    expect(compiled.find('GET', `/r/0/${MARK}*'`)).toEqual({ value: 'regex 0', params: { id: `${MARK}*'` } });
    expect((globalThis as { pwned?: unknown }).pwned).toBeUndefined();
  });

  it('the generated source holds no route text but identifier-only param names', () => {
    const router = createRouter<string>();
    for (const [p, v] of hostileRoutes()) router.add('GET', p, v);
    router.add('POST', '/a/:x/b', `${MARK}'value`);
    const sources = compiledSources(router)!;
    expect(Object.keys(sources).sort()).toEqual(['GET', 'POST']);
    for (const { source } of Object.values(sources)) {
      expect(source).not.toContain(MARK);
      expect(source).not.toMatch(/[`\u2028\u2029\r]|\/\*|\\/);
      // every single-quoted literal is one of the fixed fragments of codegen.ts
      const literals = new Set(source.match(/'[^'\n]*'/g) ?? []);
      for (const l of literals) expect(["'use strict'", "'/'", "'?'", "'%'", "''"]).toContain(l);
      // double quotes only around param-name keys, which the parser and the generator both limit to [A-Za-z0-9_] or '*'
      for (const l of source.match(/"[^"\n]*"/g) ?? []) expect(l).toMatch(/^"(?:[A-Za-z0-9_]+|\*)"$/);
      expect(source.replace(/"(?:[A-Za-z0-9_]+|\*)"/g, '')).not.toContain('"');
      // only ASCII: a non-ASCII char could only have come from a route
      expect(source).toMatch(/^[\n\x20-\x7e]*$/);
    }
  });

  it('the two-char prefix reject never hides a match behind a query or a short path', () => {
    const compiled = createRouter<string>();
    const linear = routerVariants.linear!<string>();
    for (const p of ['/a', '/ab/:x', '/b/c', '/cd', '/e/*', '/fg/:y/h']) {
      compiled.add('GET', p, p);
      linear.add('GET', p, p);
    }
    const paths = ['/a', '/a?x', '/a/', '/ab', '/ab?', '/ab/1', '/ab/1?y', '/b/c?', '/b?c', '/cd?x=1', '/c', '/cx', '/e/', '/e?', '/e/x?y'];
    for (const p of [...paths, '/fg/1/h?z', '/x', '/x?', '/?', '/', '', '?a', 'a/b', '/%61', '/zz/a/b']) {
      expect(
        outcome(() => compiled.find('GET', p)),
        p,
      ).toEqual(outcome(() => linear.find('GET', p)));
    }
    expect(compiled.find('GET', '/ab/1?y')?.params).toEqual({ x: '1' });
  });

  it('routes added after compilation are compiled in on the next lookup', () => {
    const router = createRouter<string>();
    router.add('GET', '/a/:id', 'a');
    expect(router.find('GET', '/b/1')).toBeNull();
    const before = compiledSources(router)!.GET!.source;
    router.add('GET', '/b/:id', 'b');
    expect(router.find('GET', '/b/1')).toEqual({ value: 'b', params: { id: '1' } });
    expect(compiledSources(router)!.GET!.source).not.toBe(before);
  });

  it('a 2,000-route table compiled anyway is split into several functions and agrees with linear', () => {
    const compiled = createRouter<string>({ codeBudgetChars: Infinity });
    const walked = createRouter<string>();
    const linear = routerVariants.linear!<string>();
    const paths: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const svc = `svc${i % 40}`;
      const kind = i % 4;
      const p = kind === 0 ? `/${svc}/items/list${i}` : kind === 1 ? `/${svc}/items/:id/sub${i}` : kind === 2 ? `/${svc}/v${i}/:a/:b` : `/${svc}/assets${i}/*`;
      compiled.add('GET', p, `r${i}`);
      walked.add('GET', p, `r${i}`);
      linear.add('GET', p, `r${i}`);
      paths.push(p.replace(/:\w+/g, `x${i}`).replace('*', 'a/b.css'));
    }
    for (const p of [...paths, '/svc1/items/list9999', '/svc1/items/5/sub9999', '/nope', '/svc3/v3/a']) {
      const expected = outcome(() => linear.find('GET', p));
      expect(
        outcome(() => compiled.find('GET', p)),
        p,
      ).toEqual(expected);
      expect(
        outcome(() => walked.find('GET', p)),
        `${p} (tree walk)`,
      ).toEqual(expected);
    }
    expect(compiledSources(compiled)!.GET!.source.match(/^function f\d+\(/gm)?.length ?? 0).toBeGreaterThan(1);
    // by default a table this size is over the code budget: its generated code would not pay off (index.ts)
    expect(compiledSources(compiled)!.GET!.interpreted).toBe(false);
    expect(compiledSources(walked)!.GET!.interpreted).toBe(true);
  });
});
