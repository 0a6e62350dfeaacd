/**
 * Code generator of the `compiled` router: turns one method's route table into one JavaScript matcher.
 *
 * Safety: no route text can become code. The source is assembled only from
 *   - fixed code fragments written in this file,
 *   - identifiers the generator makes up from counters (k12, s3, e3, f2 …),
 *   - integers it computes itself (char codes from charCodeAt, offsets, lengths), emitted through int(),
 *     which throws on anything that is not a safe integer.
 *   - param names as object-literal keys, and only after key() re-checked them against [A-Za-z0-9_]+ or '*'
 *     (see key() for why a literal key and not a constant).
 * Every other route-derived string (static route paths, literal text, values, regexes) is handed to the
 * generated code as a closure-captured constant `kN` (an argument of the factory function) and referenced by
 * that generated name. So a pattern full of quotes, backslashes, `${}`, newlines, comment ends or U+2028/U+2029
 * cannot change the code: at most it changes the value of a constant. test/router/compiled-codegen.test.ts
 * checks this.
 *
 * Shape of the generated matcher (`match(path)`, path = raw request target):
 *   1. static routes: `switch (len)` on the target length, then (when several share a length) a switch on
 *      the char code that best tells them apart, then `path === kN` → the precomputed match (no allocation,
 *      no hashing of the fresh string, no scan for '?': a static route never contains '?').
 *   2. only when that misses: `indexOf('?')`; with a query, the query-less path is tried against the statics.
 *   3. dynamic routes: a segment tree laid out as nested blocks, in the shared priority order
 *      static segment > pattern segments > plain param > wildcard; backtracking is the fall-through from a
 *      failed block to the next alternative. Static segments are inline `charCodeAt(pos) === code` chains
 *      (`startsWith(kN, pos)` from 16 chars on), first chars dispatched with a switch; param bounds live in
 *      locals and are sliced + decoded only at the leaf that matched.
 *   Subtrees that would make a function too big for V8's optimising compiler become functions of their own.
 */
import type { RouteMatch } from '../../../core/contracts/router.js';
import { EMPTY_PARAMS } from '../../../core/contracts/router.js';
import { comparePatternSegments, decodeParam, SEG_PARAM, SEG_PATTERN, SEG_STATIC, type ParsedRoute, type PatternSegment } from '../shared/route-pattern.js';

/** Static segments at least this long are compared with one native startsWith instead of a charCodeAt chain. */
const LONG_LITERAL = 16;
/** A subtree body longer than this (lines) becomes a function of its own … */
const SPLIT_LINES = 200;
/** … and so does any subtree that would grow the enclosing function past this. */
const FUNCTION_LINES = 600;
/** Static routes sharing one length are compared one by one up to this count, else dispatched on a char first. */
const CHAIN_MAX = 4;
/** More static routes than this: the static switch is a function of its own, not inlined in match(). */
const INLINE_STATICS_MAX = 300;

export type Matcher<T> = (path: string) => RouteMatch<T> | null;

export interface CompiledTable<T> {
  match: Matcher<T>;
  /** generated source, for size reports and the injection tests */
  source: string;
  constants: number;
}

interface Leaf<T> {
  value: T;
  names: readonly string[];
}

class Node<T> {
  /** static segment text → child */
  readonly statics = new Map<string, Node<T>>();
  readonly patterns: { seg: PatternSegment; node: Node<T> }[] = [];
  param: Node<T> | null = null;
  wildcard: Leaf<T> | null = null;
  leaf: Leaf<T> | null = null;
}

/** A capture on the way to a leaf: a [start, end) range of the path (locals or expressions), or a string local. */
type Slot = { range: true; s: string; e: string } | { range: false; v: string };

/** Emits a number computed by this file; anything but a safe integer is a generator bug and must not reach the source. */
function int(n: number): string {
  if (!Number.isSafeInteger(n)) throw new Error(`compiled router: non-integer ${String(n)} in generated code`);
  return String(n);
}

/** The char position with the most distinct values among same-length paths (the later one on ties). */
function bestPosition(paths: string[], len: number): number {
  let best = len - 1;
  let bestCount = 0;
  for (let i = len - 1; i >= 0; i--) {
    const n = new Set(paths.map((p) => p.charCodeAt(i))).size;
    if (n > bestCount) {
      best = i;
      bestCount = n;
    }
  }
  return best;
}

/**
 * A param name as a property key of the params object literal. The one piece of route text that reaches the
 * source: a literal key gives every route's params object a fixed shape built in one allocation, while a
 * computed key `{ [k3]: v }` from a constant made V8 define each property at run time (measured: 2.3× the
 * ns/op with traffic spread over the GitHub table). The parser only accepts names of [A-Za-z0-9_] (and '*' for
 * the wildcard); this check repeats that right where the text is emitted, so nothing else can ever get through.
 */
function key(name: string): string {
  if (!/^(?:[A-Za-z0-9_]+|\*)$/.test(name)) throw new Error(`compiled router: refusing to emit param name ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** Position expression `base + off`; base is '' (the constant 0) or a generated local name. */
function pos(base: string, off: number): string {
  if (base === '') return int(off);
  return off === 0 ? base : `${base} + ${int(off)}`;
}

class Generator<T> {
  private readonly constNames: string[] = [];
  private readonly constValues: unknown[] = [];
  private readonly functions: string[] = [];
  private uid = 0;

  constructor() {
    this.konst(decodeParam); // k0: the decoder
  }

  /** A route-derived value as a closure constant; returns its generated name. */
  konst(value: unknown): string {
    const name = `k${int(this.constNames.length)}`;
    this.constNames.push(name);
    this.constValues.push(value);
    return name;
  }

  local(prefix: 's' | 'e' | 'm' | 't' | 'v' | 'r'): string {
    return prefix + int(this.uid++);
  }

  build(statics: Map<string, RouteMatch<T>>, root: Node<T>): CompiledTable<T> {
    const staticLines = this.staticSwitch(statics);
    const dynLines: string[] = [];
    this.nodeBody(root, '', 0, [], dynLines, dynLines);
    const inlineStatics = statics.size <= INLINE_STATICS_MAX;
    const out: string[] = ["'use strict';"];
    out.push(...this.functions);
    if (!inlineStatics) out.push('function statics(path, len) {', ...staticLines, '  return null;', '}');
    const staticCall = inlineStatics ? staticLines : ['  { const r = statics(path, len); if (r !== null) return r; }'];
    out.push(
      'return function match(path) {',
      '  let len = path.length;',
      ...(statics.size > 0 ? staticCall : []),
      ...this.rejectByPrefix(statics, root),
      "  const q = path.indexOf('?');",
      '  if (q !== -1) {',
      '    path = path.slice(0, q);',
      '    len = q;',
      ...(statics.size > 0 ? staticCall.map((l) => '  ' + l) : []),
      '  }',
      ...dynLines,
      '  return null;',
      '};',
    );
    const source = out.join('\n');

    const factory = new Function(...this.constNames, source) as (...values: unknown[]) => Matcher<T>;
    return { match: factory(...this.constValues), source, constants: this.constNames.length };
  }

  /**
   * Misses without a scan for '?': when no route starts with a param or wildcard, the first two chars after the
   * leading '/' must begin some route's first segment (or be '?', where a query starts). Those chars are the
   * same in the query-less path, so a target failing this test can never match, query or not.
   */
  private rejectByPrefix(statics: Map<string, RouteMatch<T>>, root: Node<T>): string[] {
    if (root.param !== null || root.patterns.length > 0 || root.wildcard !== null || root.leaf !== null) return [];
    const firsts: string[] = [...root.statics.keys()];
    for (const p of statics.keys()) firsts.push(p.slice(1).split('/')[0]!);
    if (firsts.length === 0 || firsts.some((t) => t.length === 0)) return []; // '/' or '//…': not worth it
    const second = new Map<number, { codes: Set<number>; end: boolean }>();
    for (const t of firsts) {
      const e = second.get(t.charCodeAt(0)) ?? { codes: new Set<number>(), end: false };
      if (t.length === 1) {
        e.end = true;
        e.codes.add(47);
      } else e.codes.add(t.charCodeAt(1));
      second.set(t.charCodeAt(0), e);
    }
    const lines = ['  if (path.charCodeAt(0) !== 47) return null;', '  switch (path.charCodeAt(1)) {', '    case 63: break;'];
    for (const [c1, { codes, end }] of [...second].sort((a, b) => a[0] - b[0])) {
      const ok = [63, ...codes].map((c) => `c2 !== ${int(c)}`).join(' && ');
      lines.push(`    case ${int(c1)}: { const c2 = path.charCodeAt(2); if (${ok}${end ? ' && len !== 2' : ''}) return null; break; }`);
    }
    lines.push('    default: return null;', '  }');
    return lines;
  }

  private staticSwitch(statics: Map<string, RouteMatch<T>>): string[] {
    const byLength = new Map<number, [string, RouteMatch<T>][]>();
    for (const [path, m] of statics) {
      const list = byLength.get(path.length) ?? [];
      list.push([path, m]);
      byLength.set(path.length, list);
    }
    const lines = ['  switch (len) {'];
    for (const [len, list] of [...byLength].sort((a, b) => a[0] - b[0])) {
      lines.push(`    case ${int(len)}: {`);
      if (list.length <= CHAIN_MAX) {
        // one inline char test first (the last char, or the one telling the candidates apart): a miss then costs no
        // string comparison call
        const at =
          list.length === 1
            ? len - 1
            : bestPosition(
                list.map(([p]) => p),
                len,
              );
        for (const [p, m] of list) {
          const pre = len > 1 ? `path.charCodeAt(${int(at)}) === ${int(p.charCodeAt(at))} && ` : '';
          lines.push(`      if (${pre}path === ${this.konst(p)}) return ${this.konst(m)};`);
        }
      } else {
        const best = bestPosition(
          list.map(([p]) => p),
          len,
        );
        const groups = new Map<number, [string, RouteMatch<T>][]>();
        for (const e of list) {
          const c = e[0].charCodeAt(best);
          groups.set(c, [...(groups.get(c) ?? []), e]);
        }
        lines.push(`      switch (path.charCodeAt(${int(best)})) {`);
        for (const [c, g] of groups) {
          lines.push(`        case ${int(c)}:`);
          for (const [p, m] of g) lines.push(`          if (path === ${this.konst(p)}) return ${this.konst(m)};`);
          lines.push('          break;');
        }
        lines.push('      }');
      }
      lines.push('      break;', '    }');
    }
    lines.push('  }');
    return lines;
  }

  /**
   * Code for `node`, whose consumed text ends at `base + off`. `fn` is the line list of the function the code
   * ends up in (to bound its size), `out` where this body's lines go.
   */
  private nodeBody(node: Node<T>, base: string, off: number, slots: Slot[], out: string[], fn: string[]): void {
    const at = pos(base, off);
    if (node.leaf !== null) out.push(`if (len === ${at}) ${this.leaf(node.leaf, slots)}`);
    const hasChildren = node.statics.size > 0 || node.patterns.length > 0 || node.param !== null || node.wildcard !== null;
    if (!hasChildren) return;
    out.push(`if (path.charCodeAt(${at}) === 47) {`);
    const seg = off + 1; // the next segment starts after the '/'
    const segAt = pos(base, seg);

    // static segments: at most one can match, so a failed one falls through to the dynamic alternatives
    if (node.statics.size > 0) this.staticTrie([...node.statics], 0, base, seg, slots, out, fn);

    if (node.patterns.length > 0 || node.param !== null) {
      const e = this.local('e');
      out.push(`let ${e} = path.indexOf('/', ${segAt});`, `if (${e} === -1) ${e} = len;`);
      if (node.patterns.length > 0) {
        const t = this.local('t');
        out.push(`const ${t} = path.slice(${segAt}, ${e});`);
        for (const { seg: p, node: child } of node.patterns) {
          const m = this.local('m');
          out.push(`const ${m} = ${this.konst(p.regex)}.exec(${t});`, `if (${m} !== null) {`);
          const extra: Slot[] = [];
          for (const g of p.groups) {
            const v = this.local('v');
            out.push(`const ${v} = ${m}[${int(g)}] ?? '';`);
            extra.push({ range: false, v });
          }
          this.subtree(child, e, 0, [...slots, ...extra], out, fn);
          out.push('}');
        }
      }
      if (node.param !== null) {
        const s = this.local('s');
        out.push(`if (${e} > ${segAt}) {`, `const ${s} = ${segAt};`);
        this.subtree(node.param, e, 0, [...slots, { range: true, s, e }], out, fn);
        out.push('}');
      }
    }

    if (node.wildcard !== null) out.push(this.leaf(node.wildcard, [...slots, { range: true, s: segAt, e: 'len' }]));
    out.push('}');
  }

  /**
   * The static children of a node as a char trie: texts sharing a prefix compare it once. `depth` chars of every
   * text in `list` are already matched. A text ending at `depth` needs no boundary check here: its body starts
   * with `len === pos` or `charCodeAt(pos) === 47`, and a longer text needs a non-'/' char there.
   */
  private staticTrie(list: [string, Node<T>][], depth: number, base: string, seg: number, slots: Slot[], out: string[], fn: string[]): void {
    for (const [text, child] of list) if (text.length === depth) this.subtree(child, base, seg + depth, slots, out, fn);
    const rest = list.filter(([text]) => text.length > depth);
    if (rest.length === 0) return;
    if (rest.length === 1) {
      const [text, child] = rest[0]!;
      const cond = this.literalCondition(text, base, seg, depth);
      out.push(`if (${cond}) {`);
      this.subtree(child, base, seg + text.length, slots, out, fn);
      out.push('}');
      return;
    }
    const groups = new Map<number, [string, Node<T>][]>();
    for (const e of rest) {
      const c = e[0].charCodeAt(depth);
      groups.set(c, [...(groups.get(c) ?? []), e]);
    }
    const at = pos(base, seg + depth);
    if (groups.size === 1) {
      const [c, g] = groups.entries().next().value!;
      out.push(`if (path.charCodeAt(${at}) === ${int(c)}) {`);
      this.staticTrie(g, depth + 1, base, seg, slots, out, fn);
      out.push('}');
      return;
    }
    out.push(`switch (path.charCodeAt(${at})) {`);
    for (const [c, g] of groups) {
      out.push(`case ${int(c)}: {`);
      this.staticTrie(g, depth + 1, base, seg, slots, out, fn);
      out.push('break;', '}');
    }
    out.push('}');
  }

  /** Inline when small, else a function of its own called with the locals the subtree reads. */
  private subtree(node: Node<T>, base: string, off: number, slots: Slot[], out: string[], fn: string[]): void {
    const body: string[] = [];
    this.nodeBody(node, base, off, slots, body, fn);
    if (body.length <= SPLIT_LINES && fn.length + body.length <= FUNCTION_LINES) {
      out.push(...body);
      return;
    }
    const own = body;
    const args = ['path', 'len'];
    if (base !== '') args.push(base);
    for (const s of slots) {
      if (s.range) {
        for (const x of [s.s, s.e]) if (/^[se]\d+$/.test(x) && !args.includes(x)) args.push(x);
      } else args.push(s.v);
    }
    const name = `f${int(this.functions.length)}`;
    this.functions.push([`function ${name}(${args.join(', ')}) {`, ...own, 'return null;', '}'].join('\n'));
    const r = this.local('r');
    out.push(`{ const ${r} = ${name}(${args.join(', ')}); if (${r} !== null) return ${r}; }`);
  }

  /** `path` holds `text` at `base + off` (chars before `skip` already checked by a switch); '' when nothing is left to check. */
  private literalCondition(text: string, base: string, off: number, skip: number): string {
    if (text.length >= LONG_LITERAL) return `path.startsWith(${this.konst(text)}, ${pos(base, off)})`;
    const checks: string[] = [];
    for (let i = skip; i < text.length; i++) checks.push(`path.charCodeAt(${pos(base, off + i)}) === ${int(text.charCodeAt(i))}`);
    return checks.join(' && ');
  }

  private leaf(leaf: Leaf<T>, slots: Slot[]): string {
    if (leaf.names.length !== slots.length) throw new Error('compiled router: captures do not line up with param names');
    if (slots.length === 0) return `return ${this.konst({ value: leaf.value, params: EMPTY_PARAMS } satisfies RouteMatch<T>)};`;
    const ranges = slots.filter((s) => s.range).length;
    // several ranges: one '%' scan from the first one on (usually none: the raw slices are the values) instead of
    // one per value; a '%' in static text in between only sends values through the decoder, which keeps them as-is
    const first = slots.find((s) => s.range);
    const shared = ranges >= 2 && first !== undefined && first.range;
    const fields = slots.map((s, i) => {
      if (!s.range) return `${key(leaf.names[i]!)}: k0(${s.v}, path)`;
      const raw = `path.slice(${s.s}, ${s.e})`;
      return `${key(leaf.names[i]!)}: ${shared ? `pc ? ${raw} : k0(${raw}, path)` : `k0(${raw}, path)`}`;
    });
    const params = `{ value: ${this.konst(leaf.value)}, params: { ${fields.join(', ')} } }`;
    return shared ? `{ const pc = path.indexOf('%', ${first.s}) === -1; return ${params}; }` : `return ${params};`;
  }
}

/** Route table of one method; compiled on first lookup after a change. */
export class RouteTable<T> {
  readonly statics = new Map<string, RouteMatch<T>>();
  /** dynamic routes in insertion order, for the interpreted fallback (interpreted.ts) */
  readonly dynamic: Array<readonly [ParsedRoute, T]> = [];
  private readonly root = new Node<T>();
  private compiled: CompiledTable<T> | null = null;

  add(route: ParsedRoute, value: T): void {
    this.compiled = null;
    if (route.isStatic) {
      this.statics.set(route.pattern, { value, params: EMPTY_PARAMS });
      return;
    }
    this.dynamic.push([route, value]);
    let node = this.root;
    const segs = route.segments;
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!;
      if (seg.kind === SEG_STATIC) {
        let child = node.statics.get(seg.text);
        if (child === undefined) node.statics.set(seg.text, (child = new Node<T>()));
        node = child;
      } else if (seg.kind === SEG_PARAM) {
        node = node.param ??= new Node<T>();
      } else if (seg.kind === SEG_PATTERN) {
        let edge = node.patterns.find((e) => e.seg.shape === seg.shape);
        if (edge === undefined) {
          edge = { seg, node: new Node<T>() };
          node.patterns.push(edge);
          node.patterns.sort((a, b) => comparePatternSegments(a.seg, b.seg));
        }
        node = edge.node;
      } else {
        node.wildcard = { value, names: route.paramNames };
        return;
      }
    }
    node.leaf = { value, names: route.paramNames };
  }

  compile(): CompiledTable<T> {
    return (this.compiled ??= new Generator<T>().build(this.statics, this.root));
  }
}
