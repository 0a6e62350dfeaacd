/**
 * `regex`: all routes of a method compiled into ONE anchored RegExp, alternatives in compareRoutes order
 * (JS alternation is ordered, so the first alternative that matches is the highest-priority route).
 * Each alternative is wrapped in its own capture group; that group captures the whole path, and no param
 * group can (params never contain the leading '/'), so `match.indexOf(path, 1)` finds the route.
 */
import { EMPTY_PARAMS, type RouteMatch, type Router } from '../../../core/contracts/router.js';
import { MethodRouter } from '../shared/method-router.js';
import {
  compareRoutes,
  escapeRegExp,
  makeParamsBuilder,
  SEG_PARAM,
  SEG_PATTERN,
  SEG_STATIC,
  type ParamsBuilder,
  type ParsedRoute,
} from '../shared/route-pattern.js';

interface Entry<T> {
  readonly route: ParsedRoute;
  readonly value: T;
  readonly build: ParamsBuilder;
  /** absolute group indexes of the params, filled when the combined regex is built */
  groups: number[];
}

class Table<T> {
  entries: Entry<T>[] = [];
  regex: RegExp | null = null;
  /** route entry by the index of its wrapping group */
  byGroup: (Entry<T> | undefined)[] = [];
  readonly vals: string[] = [];

  compile(): RegExp {
    this.entries.sort((a, b) => compareRoutes(a.route, b.route));
    let source = '';
    let group = 1;
    this.byGroup = [];
    for (const e of this.entries) {
      this.byGroup[group] = e;
      const { body, groups, count } = routeBody(e.route, group + 1);
      e.groups = groups;
      source += (source.length === 0 ? '' : '|') + '(' + body + ')';
      group += 1 + count;
    }
    this.regex = new RegExp('^(?:' + (source.length === 0 ? '(?!)' : source) + ')$');
    return this.regex;
  }

  match(path: string): RouteMatch<T> | null {
    const re = this.regex ?? this.compile();
    const m = re.exec(path);
    if (m === null) return null;
    const e = this.byGroup[m.indexOf(path, 1)] as Entry<T>;
    const groups = e.groups;
    if (groups.length === 0) return { value: e.value, params: EMPTY_PARAMS };
    const vals = this.vals;
    for (let i = 0; i < groups.length; i++) vals[i] = m[groups[i]!] ?? '';
    return { value: e.value, params: e.build(vals, path) };
  }
}

/**
 * Regex body of one route, its param groups (absolute, starting at `first`) and its total group count.
 * After a segment holding a regex constraint, a lookbehind pins the number of '/' consumed so far, so a
 * constraint can never swallow a '/' (every other variant applies constraints to one segment's text).
 */
function routeBody(route: ParsedRoute, first: number): { body: string; groups: number[]; count: number } {
  let body = '';
  let group = first;
  const groups: number[] = [];
  const segs = route.segments;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    body += '/';
    if (seg.kind === SEG_STATIC) {
      body += escapeRegExp(seg.text);
    } else if (seg.kind === SEG_PARAM) {
      body += '([^/]+)';
      groups.push(group++);
    } else if (seg.kind === SEG_PATTERN) {
      body += seg.body;
      for (const g of seg.groups) groups.push(group + g - 1);
      group += (new RegExp(seg.body + '|').exec('') as RegExpExecArray).length - 1;
      if (seg.constrainedCount > 0) body += `(?<=^(?:/[^/]*){${i + 1}})`;
    } else {
      body += '([\\s\\S]*)';
      groups.push(group++);
    }
  }
  return { body, groups, count: group - first };
}

class RegexRouter<T> extends MethodRouter<T, Table<T>> {
  protected createTable(): Table<T> {
    return new Table<T>();
  }

  protected insert(table: Table<T>, route: ParsedRoute, value: T): void {
    table.entries.push({ route, value, build: makeParamsBuilder(route.paramNames), groups: [] });
    table.regex = null; // rebuilt lazily on the next find
  }

  protected lookup(table: Table<T>, path: string): RouteMatch<T> | null {
    return table.match(path);
  }
}

export function createRouter<T>(): Router<T> {
  return new RegexRouter<T>();
}
