/**
 * `linear`: the reference. Every route is compiled to its own matcher and kept in a list sorted by
 * compareRoutes (lexicographic segment priority), so the first route that matches is the one the tree
 * routers' depth-first walk finds. Deliberately simple and independent of the tree code: the property
 * tests compare every other variant against it.
 */
import { EMPTY_PARAMS, type RouteMatch, type Router } from '../../../core/contracts/router.js';
import { MethodRouter } from '../shared/method-router.js';
import { compareRoutes, decodeParam, SEG_PARAM, SEG_PATTERN, SEG_STATIC, type ParsedRoute } from '../shared/route-pattern.js';

interface Compiled<T> {
  readonly route: ParsedRoute;
  readonly value: T;
}

/** Returns the raw param values of `route` on `path`, or null. */
function matchRoute(route: ParsedRoute, path: string): string[] | null {
  if (path.charCodeAt(0) !== 47) return null;
  const values: string[] = [];
  let pos = 1; // start of the current segment
  const segs = route.segments;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    if (pos > path.length) return null; // the path has fewer segments than the route
    if (seg.kind !== SEG_STATIC && seg.kind !== SEG_PARAM && seg.kind !== SEG_PATTERN) {
      values.push(path.slice(pos));
      return values;
    }
    let end = path.indexOf('/', pos);
    if (end === -1) end = path.length;
    const text = path.slice(pos, end);
    if (seg.kind === SEG_STATIC) {
      if (text !== seg.text) return null;
    } else if (seg.kind === SEG_PARAM) {
      if (text.length === 0) return null;
      values.push(text);
    } else {
      const m = seg.regex.exec(text);
      if (m === null) return null;
      for (const g of seg.groups) values.push(m[g] ?? '');
    }
    pos = end + 1;
  }
  // every path segment must have been consumed: pos is one past the end exactly when it was the last one
  return pos === path.length + 1 ? values : null;
}

class LinearRouter<T> extends MethodRouter<T, Compiled<T>[]> {
  protected createTable(): Compiled<T>[] {
    return [];
  }

  protected insert(list: Compiled<T>[], route: ParsedRoute, value: T): void {
    list.push({ route, value });
    // Array.prototype.sort is stable; ties only happen for routes that can never match the same path
    list.sort((a, b) => compareRoutes(a.route, b.route));
  }

  protected lookup(list: Compiled<T>[], path: string): RouteMatch<T> | null {
    for (const c of list) {
      const values = matchRoute(c.route, path);
      if (values === null) continue;
      const names = c.route.paramNames;
      if (names.length === 0) return { value: c.value, params: EMPTY_PARAMS };
      const params: Record<string, string> = {};
      for (let i = 0; i < names.length; i++) params[names[i]!] = decodeParam(values[i]!, path); // one value per name
      return { value: c.value, params };
    }
    return null;
  }
}

export function createRouter<T>(): Router<T> {
  return new LinearRouter<T>();
}
