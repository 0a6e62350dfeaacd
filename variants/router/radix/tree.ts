/**
 * Character-level radix tree (find-my-way style): static text is stored on compressed edges and compared
 * with charCodeAt; dynamic segments (plain param, pattern segment) and the trailing wildcard hang off the
 * node that sits at a segment start. Lookup is a depth-first walk in the shared priority order
 * static > pattern segments > plain param > wildcard, backtracking when a branch dead-ends.
 * Used by the `radix` variant (all routes) and the `hybrid` variant (dynamic routes only).
 */
import { EMPTY_PARAMS, type RouteMatch } from '../../../core/contracts/router.js';
import {
  comparePatternSegments,
  decodeParam,
  makeParamsBuilder,
  SEG_PARAM,
  SEG_PATTERN,
  SEG_STATIC,
  type ParamsBuilder,
  type ParsedRoute,
  type PatternSegment,
} from '../shared/route-pattern.js';

/**
 * Params from walk positions: value i is path.slice(s[i], e[i]), or v[i] when s[i] < 0 (pattern-segment groups,
 * already strings). Slicing only here means abandoned branches of the walk never allocate.
 */
type PositionalBuilder = (s: readonly number[], e: readonly number[], v: readonly string[], path: string) => Record<string, string>;

function makePositionalBuilder(names: readonly string[]): PositionalBuilder {
  const fields = names.map((n, i) => `${JSON.stringify(n)}: decode(s[${i}] < 0 ? v[${i}] : path.slice(s[${i}], e[${i}]), path)`).join(', ');
  return new Function('decode', `return function buildParamsAt(s, e, v, path) { return { ${fields} }; };`)(decodeParam) as PositionalBuilder;
}

export class Leaf<T> {
  /** precomputed result for routes without params (returned as-is, no allocation) */
  readonly fixed: RouteMatch<T> | null;
  /** params from a list of raw values (segment-trie) */
  readonly build: ParamsBuilder;
  /** params from walk positions (radix) */
  readonly buildAt: PositionalBuilder;

  constructor(
    readonly value: T,
    readonly names: readonly string[],
  ) {
    this.fixed = names.length === 0 ? { value, params: EMPTY_PARAMS } : null;
    this.build = makeParamsBuilder(names);
    this.buildAt = makePositionalBuilder(names);
  }
}

/** Scratch state of one walk (find is synchronous and never re-entered, so one per tree is enough). */
class Captures {
  readonly s: number[] = [];
  readonly e: number[] = [];
  readonly v: string[] = [];
}

class PatternEdge<T> {
  constructor(
    readonly seg: PatternSegment,
    readonly node: RadixNode<T>,
  ) {}
}

class RadixNode<T> {
  /** first char code of each static child, parallel to `statics` (scanned linearly: fan-out is small) */
  codes: number[] = [];
  statics: RadixNode<T>[] = [];
  /** pattern segments starting here, in priority order */
  patterns: PatternEdge<T>[] | null = null;
  /** plain `:param` child */
  param: RadixNode<T> | null = null;
  wildcard: Leaf<T> | null = null;
  leaf: Leaf<T> | null = null;

  constructor(public prefix: string) {}
}

export class RadixTree<T> {
  private readonly root = new RadixNode<T>('');
  private readonly caps = new Captures();
  size = 0;

  insert(route: ParsedRoute, value: T): void {
    const segs = route.segments;
    let node = this.root;
    let text = '/';
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!;
      const last = i === segs.length - 1;
      if (seg.kind === SEG_STATIC) {
        text += last ? seg.text : seg.text + '/';
        continue;
      }
      node = insertStatic(node, text);
      text = last ? '' : '/';
      if (seg.kind === SEG_PARAM) {
        if (node.param === null) node.param = new RadixNode<T>('');
        node = node.param;
      } else if (seg.kind === SEG_PATTERN) {
        node = patternChild(node, seg);
      } else {
        node.wildcard = new Leaf(value, route.paramNames);
        this.size++;
        return;
      }
    }
    node = insertStatic(node, text);
    node.leaf = new Leaf(value, route.paramNames);
    this.size++;
  }

  /** Matches a query-less path. */
  find(path: string): RouteMatch<T> | null {
    const caps = this.caps;
    const leaf = walk(this.root, path, 0, path.length, caps, 0);
    if (leaf === null) return null;
    return leaf.fixed !== null ? leaf.fixed : { value: leaf.value, params: leaf.buildAt(caps.s, caps.e, caps.v, path) };
  }
}

function insertStatic<T>(start: RadixNode<T>, text: string): RadixNode<T> {
  let node = start;
  while (text.length > 0) {
    const idx = node.codes.indexOf(text.charCodeAt(0));
    if (idx === -1) {
      const child = new RadixNode<T>(text);
      node.codes.push(text.charCodeAt(0));
      node.statics.push(child);
      return child;
    }
    let child = node.statics[idx]!; // codes and statics are parallel
    const p = child.prefix;
    let common = 1;
    const max = Math.min(p.length, text.length);
    while (common < max && p.charCodeAt(common) === text.charCodeAt(common)) common++;
    if (common < p.length) {
      const mid = new RadixNode<T>(p.slice(0, common));
      child.prefix = p.slice(common);
      mid.codes.push(child.prefix.charCodeAt(0));
      mid.statics.push(child);
      node.statics[idx] = mid;
      child = mid;
    }
    text = text.slice(common);
    node = child;
  }
  return node;
}

function patternChild<T>(node: RadixNode<T>, seg: PatternSegment): RadixNode<T> {
  const list = node.patterns ?? (node.patterns = []);
  for (const e of list) if (e.seg.shape === seg.shape) return e.node;
  const edge = new PatternEdge<T>(seg, new RadixNode<T>(''));
  list.push(edge);
  list.sort((a, b) => comparePatternSegments(a.seg, b.seg));
  return edge.node;
}

/**
 * Depth-first match from `node`, whose own prefix ends at `pos`. Captures go to index n..; a returned leaf's
 * captures are [0..leaf.names.length) (writes of abandoned branches sit beyond them or are overwritten by the
 * successful branch).
 */
function walk<T>(node: RadixNode<T>, path: string, pos: number, len: number, caps: Captures, n: number): Leaf<T> | null {
  // Loops instead of recursing whenever the branch taken is the node's last alternative (tail position):
  // most nodes on a path have nothing to backtrack to, and a call per node is the walk's main cost.
  for (;;) {
    const last = node.patterns === null && node.param === null && node.wildcard === null;
    let next: RadixNode<T> | null = null;
    let nextPos = 0;
    if (pos === len) {
      if (node.leaf !== null) return node.leaf;
    } else {
      const codes = node.codes;
      const c = path.charCodeAt(pos);
      for (let k = 0; k < codes.length; k++) {
        if (codes[k] !== c) continue;
        const child = node.statics[k]!;
        const p = child.prefix;
        const pl = p.length;
        if (pos + pl <= len) {
          let j = 1;
          if (pl > 24) {
            // long edges: the native comparison beats a JS loop
            j = path.startsWith(p, pos) ? pl : 0;
          } else {
            while (j < pl && p.charCodeAt(j) === path.charCodeAt(pos + j)) j++;
          }
          if (j === pl) {
            next = child;
            nextPos = pos + pl;
          }
        }
        break; // at most one static child per first char
      }
    }
    if (next !== null) {
      if (last) {
        node = next;
        pos = nextPos;
        continue;
      }
      const r = walk(next, path, nextPos, len, caps, n);
      if (r !== null) return r;
    } else if (last) {
      return null;
    }
    const patterns = node.patterns;
    const param = node.param;
    if (patterns !== null || param !== null) {
      let end = path.indexOf('/', pos);
      if (end === -1) end = len;
      if (patterns !== null) {
        const segText = path.slice(pos, end);
        for (let k = 0; k < patterns.length; k++) {
          const e = patterns[k]!;
          const m = e.seg.regex.exec(segText);
          if (m === null) continue;
          const groups = e.seg.groups;
          for (let g = 0; g < groups.length; g++) {
            caps.s[n + g] = -1;
            caps.v[n + g] = m[groups[g]!] ?? '';
          }
          const r = walk(e.node, path, end, len, caps, n + groups.length);
          if (r !== null) return r;
        }
      }
      if (param !== null && end > pos) {
        caps.s[n] = pos;
        caps.e[n] = end;
        if (node.wildcard === null) {
          node = param;
          pos = end;
          n++;
          continue;
        }
        const r = walk(param, path, end, len, caps, n + 1);
        if (r !== null) return r;
      }
    }
    if (node.wildcard !== null) {
      caps.s[n] = pos;
      caps.e[n] = len;
      return node.wildcard;
    }
    return null;
  }
}
