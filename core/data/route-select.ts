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
 * Routes are split into three host tiers (exact names, wildcard suffixes, no hosts), one router each. A tier's
 * router holds one leaf per method and path shape, mapping each host of the tier to its routes there in order 3-4.
 * A request is looked up in the exact tier under its host, then in the wildcard tier under its host minus the first
 * label, then among the routes without hosts; in each, the router's leaf gives the best path, and the first of the
 * host's routes there whose conditions hold wins. When none does (or the host has none there), the next-best path
 * is found in a copy of the tier without that leaf (built on first need, then kept): the answer is the one a scan of
 * every route, filtered and sorted by the rules, gives (test/router/route-select.test.ts checks it).
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

/**
 * A request's header fields as received (name, value, name, value, …: `req.rawHeaders`). Read directly: node:http
 * builds `req.headers` on first access, and a request on the static fast path never pays for it otherwise.
 */
export type RawHeaders = readonly string[];

interface Leaf<T> {
  /** sorted by conditions (more first), then config order */
  readonly candidates: readonly SelectEntry<T>[];
  /**
   * per candidate, its param names when they differ from those of the path the router holds for this shape (routes
   * of one shape may name their params otherwise); null when they are the same
   */
  readonly renames: ReadonlyArray<Rename | null>;
}

interface Rename {
  readonly from: readonly string[];
  readonly to: readonly string[];
}

/** A router leaf of a tier: one method and path shape, with each host key's own routes there. */
interface TierLeaf<T> {
  readonly byKey: Map<string, Leaf<T>>;
  /** the shape's key in `excluded` sets */
  readonly key: string;
}

/** A route in a tier, under the host keys it is registered for ('' in the tier of routes without hosts). */
interface TierEntry<T> {
  readonly entry: SelectEntry<T>;
  readonly keys: readonly string[];
}

/** A request host's keys in the tiers, and whether the tiers have routes for them. */
interface HostKeys {
  readonly host: string;
  /** the host without its first label ('' when it has one label) */
  readonly suffix: string;
  readonly inExact: boolean;
  readonly inWildcard: boolean;
}

/** Distinct Host values remembered before the cache starts over. */
const MAX_CACHED_HOSTS = 4096;

/** Fallback tables built on demand, across one selector: past this many, they are built for the request and dropped. */
const MAX_KEPT_FALLBACKS = 1024;

/** `:name` → `:`: two paths with the same shape are one router entry, whatever their params are called. */
function shapeOf(path: string): string {
  return path.replace(/:[A-Za-z0-9_]+/g, ':');
}

function paramNames(path: string): string[] {
  const names = [...path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
  if (path.endsWith('*')) names.push('*');
  return names;
}

/**
 * One host tier (exact names, wildcard suffixes, or no hosts): all its routes in one router whatever their host,
 * one leaf per method and path shape holding each host's routes there. One router per tier, not per host: 10,000
 * hosts with the same paths are one router whose leaves look the host up in a map.
 */
class TierTable<T> {
  private readonly router: Router<TierLeaf<T>>;
  /** host keys with at least one route in this tier: a request for another host skips the router */
  readonly keys = new Set<string>();
  private readonly fallbacks = new Map<TierLeaf<T>, TierTable<T>>();

  constructor(
    private readonly entries: readonly TierEntry<T>[],
    private readonly factory: RouterFactory,
    private readonly owner: RouteSelector<T>,
    /** method-and-shape leaves left out: this table is another's fallback */
    private readonly excluded: ReadonlySet<string>,
  ) {
    this.router = factory<TierLeaf<T>>();
    const byShape = new Map<string, { method: string; path: string; byKey: Map<string, SelectEntry<T>[]> }>();
    for (const { entry: e, keys } of entries) {
      for (const m of e.methods) {
        const key = `${m} ${shapeOf(e.path)}`;
        if (excluded.has(key)) continue;
        let at = byShape.get(key);
        if (at === undefined) byShape.set(key, (at = { method: m, path: e.path, byKey: new Map() }));
        for (const k of keys) {
          this.keys.add(k);
          const list = at.byKey.get(k);
          if (list === undefined) at.byKey.set(k, [e]);
          else if (!list.includes(e)) list.push(e);
        }
      }
    }
    for (const [key, { method, path, byKey }] of byShape) {
      const registered = paramNames(path);
      const leaf: TierLeaf<T> = { byKey: new Map(), key };
      for (const [k, list] of byKey) {
        list.sort(byPrecedence);
        const renames = list.map((e) => {
          const own = paramNames(e.path);
          return own.every((n, i) => n === registered[i]) ? null : { from: registered, to: own };
        });
        leaf.byKey.set(k, { candidates: list, renames });
      }
      try {
        this.router.add(method, path, leaf);
      } catch (err) {
        if (owner.problems === null) throw err;
        const first = [...byKey.values()].flat().sort(byPrecedence)[0]!;
        owner.problems(first.index, err as Error);
      }
    }
  }

  find(method: string, url: string, headers: RawHeaders, hostKey: string, out: RouteMatch<T>): boolean {
    const m = this.router.find(method, url);
    if (m === null) return false;
    const leaf = m.value.byKey.get(hostKey);
    if (leaf !== undefined) {
      const candidates = leaf.candidates;
      for (let i = 0; i < candidates.length; i++) {
        const c = candidates[i]!;
        if (c.conditions.length === 0 || conditionsHold(c.conditions, url, headers)) {
          out.value = c.value;
          const rename = leaf.renames[i] ?? null;
          out.params = rename === null ? m.params : renamed(m.params, rename);
          return true;
        }
      }
    }
    return this.fallback(m.value).find(method, url, headers, hostKey, out);
  }

  /** The best route of this tier for the host registered for `method` on a path matching `url`, conditions aside (the 405 probe). */
  probe(method: string, url: string, hostKey: string): T | null {
    const m = this.router.find(method, url);
    if (m === null) return null;
    const leaf = m.value.byKey.get(hostKey);
    return leaf !== undefined ? leaf.candidates[0]!.value : this.fallback(m.value).probe(method, url, hostKey);
  }

  /** The tier without `leaf`'s method and shape: where the next-best path is when it had nothing for the request. */
  private fallback(leaf: TierLeaf<T>): TierTable<T> {
    const kept = this.fallbacks.get(leaf);
    if (kept !== undefined) return kept;
    const excluded = new Set(this.excluded);
    excluded.add(leaf.key);
    const table = new TierTable(this.entries, this.factory, this.owner, excluded);
    if (this.owner.keptFallbacks < MAX_KEPT_FALLBACKS) {
      this.owner.keptFallbacks++;
      this.fallbacks.set(leaf, table);
    }
    return table;
  }
}

/** The router's params under the names another route of the same shape gives them (same positions). */
function renamed(params: Record<string, string>, names: Rename): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < names.to.length; i++) out[names.to[i]!] = params[names.from[i]!]!;
  return out;
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
function hostOf(headers: RawHeaders): string {
  return rawHeader(headers, 'host') ?? rawHeader(headers, ':authority') ?? '';
}

/** The value of the field named `lower` (lower case) in `raw`, repeated fields joined with ", "; undefined when absent. */
export function rawHeader(raw: RawHeaders, lower: string): string | undefined {
  let out: string | undefined;
  const n = lower.length;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== n || !sameLowerCase(name, lower)) continue;
    out = out === undefined ? raw[i + 1]! : `${out}, ${raw[i + 1]!}`;
  }
  return out;
}

function sameLowerCase(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

export class RouteSelector<T> {
  /** fallback tables kept so far (bounded by MAX_KEPT_FALLBACKS) */
  keptFallbacks = 0;
  /** where a route the router refuses is reported; null: the error is thrown */
  readonly problems: ((index: number, err: Error) => void) | null;
  private readonly exact: TierTable<T> | null;
  /** keyed by the suffix after `*.` */
  private readonly wildcard: TierTable<T> | null;
  private readonly anyHost: TierTable<T> | null;
  /** one reused answer: find's caller reads it before the next find (every caller is synchronous) */
  private readonly out: RouteMatch<T> = { value: undefined as T, params: {} };
  /**
   * Host header as sent → its keys: one hash of the header per request instead of lower-casing, cutting the port
   * and the first label, and hashing each piece. Bounded: cleared when full (clients send few distinct values).
   */
  private readonly hostKeys = new Map<string, HostKeys>();

  /**
   * Throws RoutePatternError for what a router refuses (a path it cannot parse); with `problems`, reports it there
   * with the route's index instead.
   */
  constructor(entries: readonly SelectEntry<T>[], factory: RouterFactory, problems: ((index: number, err: Error) => void) | null = null) {
    this.problems = problems;
    const exact: TierEntry<T>[] = [];
    const wildcard: TierEntry<T>[] = [];
    const any: TierEntry<T>[] = [];
    for (const e of entries) {
      if (e.hosts.length === 0) {
        any.push({ entry: e, keys: [''] });
        continue;
      }
      const names = [...new Set(e.hosts)];
      const exactKeys = names.filter((h) => !h.startsWith('*.'));
      const suffixes = names.filter((h) => h.startsWith('*.')).map((h) => h.slice(2));
      if (exactKeys.length > 0) exact.push({ entry: e, keys: exactKeys });
      if (suffixes.length > 0) wildcard.push({ entry: e, keys: suffixes });
    }
    this.exact = exact.length > 0 ? new TierTable(exact, factory, this, new Set()) : null;
    this.wildcard = wildcard.length > 0 ? new TierTable(wildcard, factory, this, new Set()) : null;
    this.anyHost = any.length > 0 ? new TierTable(any, factory, this, new Set()) : null;
  }

  /** The winning route for a request, or null. The returned object is reused by the next call. */
  find(method: string, url: string, headers: RawHeaders): RouteMatch<T> | null {
    const raw = hostOf(headers);
    let keys = this.hostKeys.get(raw);
    if (keys === undefined) keys = this.keysOf(raw);
    const out = this.out;
    const exact = this.exact;
    if (exact !== null && keys.inExact && exact.find(method, url, headers, keys.host, out)) return out;
    const wildcard = this.wildcard;
    if (wildcard !== null && keys.inWildcard && wildcard.find(method, url, headers, keys.suffix, out)) return out;
    if (this.anyHost !== null && this.anyHost.find(method, url, headers, '', out)) return out;
    return null;
  }

  private keysOf(raw: string): HostKeys {
    const host = raw === '' ? '' : requestHostKey(raw);
    const dot = host.indexOf('.');
    const suffix = dot === -1 ? '' : host.slice(dot + 1);
    const keys: HostKeys = {
      host,
      suffix,
      inExact: this.exact !== null && this.exact.keys.has(host),
      inWildcard: dot !== -1 && this.wildcard !== null && this.wildcard.keys.has(suffix),
    };
    if (this.hostKeys.size >= MAX_CACHED_HOSTS) this.hostKeys.clear();
    this.hostKeys.set(raw, keys);
    return keys;
  }

  /** The best route of the request's host tiers registered for `method` on `url`, conditions aside (the 405 probe). */
  probe(method: string, url: string, headers: RawHeaders): T | null {
    const keys = this.keysOf(hostOf(headers));
    const tiers: Array<[TierTable<T> | null, string, boolean]> = [
      [this.exact, keys.host, keys.inExact],
      [this.wildcard, keys.suffix, keys.inWildcard],
      [this.anyHost, '', true],
    ];
    for (const [tier, key, has] of tiers) {
      if (tier === null || !has) continue;
      const found = tier.probe(method, url, key);
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
export function conditionsHold(conditions: readonly Condition[], url: string, headers: RawHeaders): boolean {
  for (let i = 0; i < conditions.length; i++) {
    const c = conditions[i]!;
    let v: string | undefined;
    if (c.source === Source.Header) {
      v = rawHeader(headers, c.name);
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
