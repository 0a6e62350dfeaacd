/**
 * `segment-trie`: one node per path segment. Static children are found by exact segment text in a Map
 * (a Map, not an object, so `__proto__`/`constructor` segments are ordinary keys), then pattern
 * segments, the plain param, and the wildcard, in the shared priority order with backtracking.
 */
import type { RouteMatch, Router } from '../../../core/contracts/router.js';
import { Leaf } from '../radix/tree.js';
import { MethodRouter } from '../shared/method-router.js';
import { comparePatternSegments, SEG_PARAM, SEG_PATTERN, SEG_STATIC, type ParsedRoute, type PatternSegment } from '../shared/route-pattern.js';

class SegNode<T> {
  statics: Map<string, SegNode<T>> | null = null;
  patterns: { seg: PatternSegment; node: SegNode<T> }[] | null = null;
  param: SegNode<T> | null = null;
  /** route whose last segment is '*' right below this node */
  wildcard: Leaf<T> | null = null;
  /** route ending with this node's segment */
  leaf: Leaf<T> | null = null;
}

class Trie<T> {
  readonly root = new SegNode<T>();
  readonly vals: string[] = [];

  insert(route: ParsedRoute, value: T): void {
    let node = this.root;
    for (const seg of route.segments) {
      if (seg.kind === SEG_STATIC) {
        const map = node.statics ?? (node.statics = new Map());
        let child = map.get(seg.text);
        if (child === undefined) map.set(seg.text, (child = new SegNode<T>()));
        node = child;
      } else if (seg.kind === SEG_PARAM) {
        node = node.param ?? (node.param = new SegNode<T>());
      } else if (seg.kind === SEG_PATTERN) {
        const list = node.patterns ?? (node.patterns = []);
        let entry = list.find((e) => e.seg.shape === seg.shape);
        if (entry === undefined) {
          entry = { seg, node: new SegNode<T>() };
          list.push(entry);
          list.sort((a, b) => comparePatternSegments(a.seg, b.seg));
        }
        node = entry.node;
      } else {
        node.wildcard = new Leaf(value, route.paramNames);
        return;
      }
    }
    node.leaf = new Leaf(value, route.paramNames);
  }

  find(path: string): RouteMatch<T> | null {
    if (path.charCodeAt(0) !== 47) return null;
    const leaf = walk(this.root, path, 1, path.length, this.vals, 0);
    if (leaf === null) return null;
    return leaf.fixed !== null ? leaf.fixed : { value: leaf.value, params: leaf.build(this.vals, path) };
  }
}

/** Matches the segment starting at `pos` (just after a '/') against the children of `node`. */
function walk<T>(node: SegNode<T>, path: string, pos: number, len: number, vals: string[], n: number): Leaf<T> | null {
  let end = path.indexOf('/', pos);
  const last = end === -1;
  if (last) end = len;
  if (node.statics !== null) {
    const child = node.statics.get(path.slice(pos, end));
    if (child !== undefined) {
      const r = last ? child.leaf : walk(child, path, end + 1, len, vals, n);
      if (r !== null) return r;
    }
  }
  if (node.patterns !== null) {
    const text = path.slice(pos, end);
    for (const { seg, node: child } of node.patterns) {
      const m = seg.regex.exec(text);
      if (m === null) continue;
      for (let g = 0; g < seg.groups.length; g++) vals[n + g] = m[seg.groups[g]!] ?? '';
      const next = n + seg.groups.length;
      const r = last ? child.leaf : walk(child, path, end + 1, len, vals, next);
      if (r !== null) return r;
    }
  }
  if (node.param !== null && end > pos) {
    vals[n] = path.slice(pos, end);
    const r = last ? node.param.leaf : walk(node.param, path, end + 1, len, vals, n + 1);
    if (r !== null) return r;
  }
  if (node.wildcard !== null) {
    vals[n] = path.slice(pos);
    return node.wildcard;
  }
  return null;
}

class SegmentTrieRouter<T> extends MethodRouter<T, Trie<T>> {
  protected createTable(): Trie<T> {
    return new Trie<T>();
  }

  protected insert(trie: Trie<T>, route: ParsedRoute, value: T): void {
    trie.insert(route, value);
  }

  protected lookup(trie: Trie<T>, path: string): RouteMatch<T> | null {
    return trie.find(path);
  }
}

export function createRouter<T>(): Router<T> {
  return new SegmentTrieRouter<T>();
}
