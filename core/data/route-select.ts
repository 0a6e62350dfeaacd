import { compileRouteRegex } from '../config/regex-safety.js';
import type { MatchCondition, RouteConfig } from '../config/types.js';
import type { RouteMatch, Router, RouterFactory } from '../contracts/router.js';

/**
 * Route selection by host, method, path and `match` conditions, as a layer above the path-only router family.
 *
 * Precedence between routes that all match a request (docs/routing.md):
 *   1. exact host > wildcard host (`*.example.com`) > no `hosts`
 *   2. the router's own order: exact method > `*` > GET for HEAD; then static > param > wildcard per segment
 *   3. more `match` conditions
 *   4. config order
 *
 * Routes are split into host buckets, one router each (hosts sharing the same routes share one). A bucket's router
 * holds one leaf per method and path, listing the routes registered there in order 3-4. A request is looked up in
 * its exact-host bucket, then its wildcard bucket, then the bucket of routes without hosts; in each, the router's
 * leaf gives the best path, and the first of its routes whose conditions hold wins. When none holds, the next-best
 * path is found in a copy of the bucket without that leaf (built on first need, then kept): the answer is the one a
 * scan of every route, filtered and sorted by the rules, gives (test/router/route-select.test.ts checks it).
 *
 * A config with no `hosts` and no `match` anywhere never builds this: the runtime keeps its single router.
 */

export const enum Source {
  Header = 0,
  Query = 1,
}

export const enum Test {
  Value = 0,
  Regex = 1,
  Present = 2,
  Absent = 3,
}

export interface Condition {
  readonly source: Source;
  /** header names lower-cased; query names as written */
  readonly name: string;
  readonly test: Test;
  readonly value: string;
  readonly regex: RegExp | null;
}

/** A route as the selector sees it: what it matches on, and the value handed back when it wins. */
export interface SelectEntry<T> {
  readonly value: T;
  readonly index: number;
  readonly path: string;
  readonly methods: readonly string[];
  /** normalised host patterns (see normalizeHostPattern); empty = any host */
  readonly hosts: readonly string[];
  readonly conditions: readonly Condition[];
}

/** A request's header map (names lower-case), as node:http and the own engine give it. */
export type RequestHeaders = Record<string, string | string[] | undefined>;

interface Leaf<T> {
  /** sorted by conditions (more first), then config order */
  readonly candidates: readonly SelectEntry<T>[];
  /** the first candidate has no conditions: it always wins */
  readonly unconditional: boolean;
}

/** Fallback tables built on demand, across one selector: past this many, they are built for the request and dropped. */
const MAX_KEPT_FALLBACKS = 1024;

/** One host bucket: its routes in one router, one leaf per method and path. */
class PathTable<T> {
  private readonly router: Router<Leaf<T>>;
  private readonly leafKeys = new Map<Leaf<T>, string>();
  private readonly fallbacks = new Map<Leaf<T>, PathTable<T>>();

  constructor(
    private readonly entries: readonly SelectEntry<T>[],
    private readonly factory: RouterFactory,
    private readonly owner: RouteSelector<T>,
    /** method-and-path leaves left out: this table is another's fallback */
    private readonly excluded: ReadonlySet<string>,
  ) {
    this.router = factory<Leaf<T>>();
    const byKey = new Map<string, { method: string; path: string; list: SelectEntry<T>[] }>();
    for (const e of entries) {
      for (const m of e.methods) {
        const key = `${m} ${e.path}`;
        if (excluded.has(key)) continue;
        const at = byKey.get(key);
        if (at === undefined) byKey.set(key, { method: m, path: e.path, list: [e] });
        else at.list.push(e);
      }
    }
    for (const [key, { method, path, list }] of byKey) {
      list.sort(byPrecedence);
      const leaf: Leaf<T> = { candidates: list, unconditional: list[0]!.conditions.length === 0 };
      try {
        this.router.add(method, path, leaf);
      } catch (err) {
        if (owner.problems === null) throw err;
        owner.problems(list[0]!.index, err as Error);
        continue;
      }
      this.leafKeys.set(leaf, key);
    }
  }

  find(method: string, url: string, headers: RequestHeaders, out: RouteMatch<T>): boolean {
    const m = this.router.find(method, url);
    if (m === null) return false;
    const leaf = m.value;
    const candidates = leaf.candidates;
    if (leaf.unconditional && candidates.length === 1) {
      out.value = candidates[0]!.value;
      out.params = m.params;
      return true;
    }
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      if (c.conditions.length === 0 || conditionsHold(c.conditions, url, headers)) {
        out.value = c.value;
        out.params = m.params;
        return true;
      }
    }
    return this.fallback(leaf).find(method, url, headers, out);
  }

  /** The best route of this bucket registered for `method` on a path matching `url`, conditions aside (the 405 probe). */
  probe(method: string, url: string): T | null {
    const m = this.router.find(method, url);
    return m === null ? null : m.value.candidates[0]!.value;
  }

  /** The bucket without `leaf`'s method and path: where the next-best path is when none of the leaf's routes held. */
  private fallback(leaf: Leaf<T>): PathTable<T> {
    const kept = this.fallbacks.get(leaf);
    if (kept !== undefined) return kept;
    const excluded = new Set(this.excluded);
    excluded.add(this.leafKeys.get(leaf)!);
    const table = new PathTable(this.entries, this.factory, this.owner, excluded);
    if (this.owner.keptFallbacks < MAX_KEPT_FALLBACKS) {
      this.owner.keptFallbacks++;
      this.fallbacks.set(leaf, table);
    }
    return table;
  }
}

/** A route's `hosts` entry as a bucket key: lower case, one trailing dot dropped, IPv6 literal canonical. */
export function normalizeHostPattern(pattern: string): string {
  let h = pattern.toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h.startsWith('[')) return canonicalIpv6(h);
  return h;
}

function canonicalIpv6(bracketed: string): string {
  try {
    return new URL(`http://${bracketed}/`).hostname;
  } catch {
    return bracketed;
  }
}

/**
 * The host a request names, as a bucket key: the Host header (or HTTP/2 :authority) without port and one trailing
 * dot, lower case. The value was validated before routing (limits.ts), so it is `uri-host [":" port]`.
 */
export function requestHostKey(raw: string): string {
  let h = raw;
  if (h.charCodeAt(0) === 91 /* [ */) {
    const end = h.indexOf(']');
    return canonicalIpv6(h.slice(0, end + 1).toLowerCase());
  }
  const colon = h.indexOf(':');
  if (colon !== -1) h = h.slice(0, colon);
  if (h.charCodeAt(h.length - 1) === 46 /* . */) h = h.slice(0, -1);
  return h.toLowerCase();
}

/** Host header of a request: HTTP/1 `host`, else HTTP/2 `:authority`; '' when neither is there (HTTP/1.0). */
function hostOf(headers: RequestHeaders): string {
  const h = headers.host ?? headers[':authority'];
  return typeof h === 'string' ? h : '';
}

export class RouteSelector<T> {
  /** fallback tables kept so far (bounded by MAX_KEPT_FALLBACKS) */
  keptFallbacks = 0;
  /** where a route the router refuses is reported; null: the error is thrown */
  readonly problems: ((index: number, err: Error) => void) | null;
  private readonly exact = new Map<string, PathTable<T>>();
  /** keyed by the suffix after `*.` */
  private readonly wildcard = new Map<string, PathTable<T>>();
  private readonly anyHost: PathTable<T> | null;
  /** one reused answer: find's caller reads it before the next find (every caller is synchronous) */
  private readonly out: RouteMatch<T> = { value: undefined as T, params: {} };
  private lastHostRaw = '';
  private lastHost = '';

  /**
   * Throws RoutePatternError for what a router refuses (a path it cannot parse, or two routes with the same method,
   * path shape and host bucket but different param names, or the same conditions-free duplicate).
   */
  constructor(entries: readonly SelectEntry<T>[], factory: RouterFactory, problems: ((index: number, err: Error) => void) | null = null) {
    this.problems = problems;
    const exactLists = new Map<string, SelectEntry<T>[]>();
    const wildcardLists = new Map<string, SelectEntry<T>[]>();
    const anyList: SelectEntry<T>[] = [];
    for (const e of entries) {
      if (e.hosts.length === 0) anyList.push(e);
      for (const h of new Set(e.hosts)) {
        const [map, key] = h.startsWith('*.') ? [wildcardLists, h.slice(2)] : [exactLists, h];
        const list = map.get(key);
        if (list === undefined) map.set(key, [e]);
        else list.push(e);
      }
    }
    // hosts listed by the same routes share one table: 1,000 names on one route are one router, not 1,000
    const shared = new Map<string, PathTable<T>>();
    const tableFor = (list: SelectEntry<T>[]): PathTable<T> => {
      const signature = list.map((e) => e.index).join(',');
      let t = shared.get(signature);
      if (t === undefined) {
        t = new PathTable(list, factory, this, new Set());
        shared.set(signature, t);
      }
      return t;
    };
    for (const [host, list] of exactLists) this.exact.set(host, tableFor(list));
    for (const [suffix, list] of wildcardLists) this.wildcard.set(suffix, tableFor(list));
    this.anyHost = anyList.length > 0 ? new PathTable(anyList, factory, this, new Set()) : null;
  }

  /** The winning route for a request, or null. The returned object is reused by the next call. */
  find(method: string, url: string, headers: RequestHeaders): RouteMatch<T> | null {
    const raw = hostOf(headers);
    let host: string;
    if (raw === this.lastHostRaw) host = this.lastHost;
    else {
      host = raw === '' ? '' : requestHostKey(raw);
      this.lastHostRaw = raw;
      this.lastHost = host;
    }
    const out = this.out;
    if (this.exact.size > 0) {
      const t = this.exact.get(host);
      if (t !== undefined && t.find(method, url, headers, out)) return out;
    }
    if (this.wildcard.size > 0) {
      const dot = host.indexOf('.');
      if (dot !== -1) {
        const t = this.wildcard.get(host.slice(dot + 1));
        if (t !== undefined && t.find(method, url, headers, out)) return out;
      }
    }
    if (this.anyHost !== null && this.anyHost.find(method, url, headers, out)) return out;
    return null;
  }

  /** The best route of the request's host buckets registered for `method` on `url`, conditions aside (the 405 probe). */
  probe(method: string, url: string, headers: RequestHeaders): T | null {
    const raw = hostOf(headers);
    const host = raw === '' ? '' : requestHostKey(raw);
    const dot = host.indexOf('.');
    for (const t of [this.exact.get(host), dot === -1 ? undefined : this.wildcard.get(host.slice(dot + 1)), this.anyHost ?? undefined]) {
      const found = t?.probe(method, url) ?? null;
      if (found !== null) return found;
    }
    return null;
  }
}

/** Order 3-4 of the precedence: more conditions first, then config order. */
function byPrecedence<T>(a: SelectEntry<T>, b: SelectEntry<T>): number {
  return b.conditions.length - a.conditions.length || a.index - b.index;
}

/**
 * Routes that can never win: in every host bucket, method and path they are registered for, a route ordered
 * before them holds whenever they do (its conditions are a subset of theirs). Each with the route shadowing it.
 */
export function neverWinning<T>(entries: readonly SelectEntry<T>[]): Array<{ index: number; by: number }> {
  const leaves = new Map<string, SelectEntry<T>[]>();
  for (const e of entries) {
    const buckets = e.hosts.length === 0 ? [''] : [...new Set(e.hosts)];
    for (const b of buckets) {
      for (const m of e.methods) {
        const key = `${b} ${m} ${e.path}`;
        const list = leaves.get(key);
        if (list === undefined) leaves.set(key, [e]);
        else list.push(e);
      }
    }
  }
  const seen = new Map<number, number>();
  const shadowed = new Map<number, { count: number; by: number }>();
  for (const list of leaves.values()) {
    list.sort(byPrecedence);
    const keys = list.map((e) => new Set(e.conditions.map(conditionKey)));
    for (let i = 0; i < list.length; i++) {
      const idx = list[i]!.index;
      seen.set(idx, (seen.get(idx) ?? 0) + 1);
      for (let j = 0; j < i; j++) {
        if ([...keys[j]!].every((k) => keys[i]!.has(k))) {
          const s = shadowed.get(idx);
          shadowed.set(idx, { count: (s?.count ?? 0) + 1, by: s?.by ?? list[j]!.index });
          break;
        }
      }
    }
  }
  const out: Array<{ index: number; by: number }> = [];
  for (const [index, s] of shadowed) if (s.count === seen.get(index)) out.push({ index, by: s.by });
  return out.sort((a, b) => a.index - b.index);
}

function conditionKey(c: Condition): string {
  return `${c.source}\u0000${c.name}\u0000${c.test}\u0000${c.value}\u0000${c.regex?.source ?? ''}`;
}

/** Whether every condition holds for the request. */
export function conditionsHold(conditions: readonly Condition[], url: string, headers: RequestHeaders): boolean {
  for (let i = 0; i < conditions.length; i++) {
    const c = conditions[i]!;
    let v: string | undefined;
    if (c.source === Source.Header) {
      const h = headers[c.name];
      v = h === undefined ? undefined : typeof h === 'string' ? h : h.join(', ');
    } else v = queryValue(url, c.name);
    switch (c.test) {
      case Test.Present:
        if (v === undefined) return false;
        break;
      case Test.Absent:
        if (v !== undefined) return false;
        break;
      case Test.Value:
        if (v !== c.value) return false;
        break;
      case Test.Regex:
        if (v === undefined || !c.regex!.test(v)) return false;
        break;
    }
  }
  return true;
}

/**
 * The first value of query parameter `name` in `url`, percent-decoded (`+` read as a space, as forms send it);
 * undefined when absent. A value with a broken percent-encoding is compared as written.
 */
export function queryValue(url: string, name: string): string | undefined {
  const q = url.indexOf('?');
  if (q === -1) return undefined;
  let hash = url.indexOf('#', q);
  if (hash === -1) hash = url.length;
  let start = q + 1;
  while (start <= hash) {
    let end = url.indexOf('&', start);
    if (end === -1 || end > hash) end = hash;
    const eq = url.indexOf('=', start);
    const nameEnd = eq !== -1 && eq < end ? eq : end;
    if (decodeQueryPart(url.slice(start, nameEnd)) === name) return nameEnd === end ? '' : decodeQueryPart(url.slice(nameEnd + 1, end));
    start = end + 1;
  }
  return undefined;
}

function decodeQueryPart(s: string): string {
  if (s.indexOf('%') === -1 && s.indexOf('+') === -1) return s;
  const spaced = s.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
}

/** A route's `match` as conditions (regexes compiled here: validation refused the unsafe ones). */
export function compileConditions(route: RouteConfig): Condition[] {
  const out: Condition[] = [];
  const add = (source: Source, list: readonly MatchCondition[] | undefined): void => {
    for (const m of list ?? []) {
      const name = source === Source.Header ? m.name.toLowerCase() : m.name;
      if (m.regex !== undefined) out.push({ source, name, test: Test.Regex, value: '', regex: compileRouteRegex(m.regex) });
      else if (m.value !== undefined) out.push({ source, name, test: Test.Value, value: m.value, regex: null });
      else out.push({ source, name, test: m.present === false ? Test.Absent : Test.Present, value: '', regex: null });
    }
  };
  add(Source.Header, route.match?.headers);
  add(Source.Query, route.match?.query);
  return out;
}

/** Whether a config needs the selector at all: any route with hosts or match conditions. */
export function needsSelector(routes: readonly RouteConfig[]): boolean {
  return routes.some((r) => (r.hosts !== undefined && r.hosts.length > 0) || compileConditionsCount(r) > 0);
}

function compileConditionsCount(r: RouteConfig): number {
  return (r.match?.headers?.length ?? 0) + (r.match?.query?.length ?? 0);
}

/** The selector's view of a route config. */
export function selectEntry<T>(route: RouteConfig, index: number, value: T, methods: readonly string[] = route.methods): SelectEntry<T> {
  return {
    value,
    index,
    path: route.path,
    methods,
    hosts: (route.hosts ?? []).map(normalizeHostPattern),
    conditions: compileConditions(route),
  };
}
