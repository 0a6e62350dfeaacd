/**
 * Character-level radix tree (find-my-way style): static text is stored on compressed edges and compared
 * with charCodeAt; dynamic segments (plain param, pattern segment) and the trailing wildcard hang off the
 * node that sits at a segment start. Lookup is a depth-first walk in the shared priority order
 * static > pattern segments > plain param > wildcard, backtracking when a branch dead-ends.
 * Used by the `radix` variant (all routes) and the `hybrid` variant (dynamic routes only).
 */
import type { RouteMatch } from '../../../core/router.js';
import {
  comparePatternSegments,
  makeParamsBuilder,
  SEG_PARAM,
  SEG_PATTERN,
  SEG_STATIC,
  type ParamsBuilder,
  type ParsedRoute,
  type PatternSegment,
} from '../../../core/route-pattern.js';

/** Shared by every param-less match: static matches must not allocate. Frozen so no caller can leak state into it. */
export const EMPTY_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

export class Leaf<T> {
  /** precomputed result for routes without params (returned as-is, no allocation) */
  readonly fixed: RouteMatch<T> | null;
  readonly build: ParamsBuilder;

  constructor(
    readonly value: T,
    readonly names: readonly string[],
  ) {
    this.fixed = names.length === 0 ? { value, params: EMPTY_PARAMS } : null;
    this.build = makeParamsBuilder(names);
  }
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
  /** scratch param values of the walk in progress (find is synchronous and never re-entered) */
  private readonly vals: string[] = [];
  size = 0;

  insert(route: ParsedRoute, value: T): void {
    const segs = route.segments;
    let node = this.root;
    let text = '/';
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i];
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
    const vals = this.vals;
    const leaf = walk(this.root, path, 0, path.length, vals, 0);
    if (leaf === null) return null;
    return leaf.fixed !== null ? leaf.fixed : { value: leaf.value, params: leaf.build(vals, path) };
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
    let child = node.statics[idx];
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
 * Depth-first match from `node`, whose own prefix ends at `pos`. Param values go to vals[n..]; a returned
 * leaf's values are vals[0..leaf.names.length) (later writes of abandoned branches sit beyond them or
 * are overwritten by the successful branch).
 */
function walk<T>(node: RadixNode<T>, path: string, pos: number, len: number, vals: string[], n: number): Leaf<T> | null {
  if (pos === len) {
    if (node.leaf !== null) return node.leaf;
  } else {
    const codes = node.codes;
    const c = path.charCodeAt(pos);
    for (let k = 0; k < codes.length; k++) {
      if (codes[k] !== c) continue;
      const child = node.statics[k];
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
          const r = walk(child, path, pos + pl, len, vals, n);
          if (r !== null) return r;
        }
      }
      break; // at most one static child per first char
    }
  }
  const patterns = node.patterns;
  if (patterns !== null || node.param !== null) {
    let end = path.indexOf('/', pos);
    if (end === -1) end = len;
    if (patterns !== null) {
      const segText = path.slice(pos, end);
      for (let k = 0; k < patterns.length; k++) {
        const e = patterns[k];
        const m = e.seg.regex.exec(segText);
        if (m === null) continue;
        const groups = e.seg.groups;
        for (let g = 0; g < groups.length; g++) vals[n + g] = m[groups[g]] ?? '';
        const r = walk(e.node, path, end, len, vals, n + groups.length);
        if (r !== null) return r;
      }
    }
    if (node.param !== null && end > pos) {
      vals[n] = path.slice(pos, end);
      const r = walk(node.param, path, end, len, vals, n + 1);
      if (r !== null) return r;
    }
  }
  if (node.wildcard !== null) {
    vals[n] = path.slice(pos);
    return node.wildcard;
  }
  return null;
}
