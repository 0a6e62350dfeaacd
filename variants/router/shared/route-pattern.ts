/**
 * Shared route-pattern parser and matching helpers for every router variant (see core/contracts/router.ts for
 * the route syntax). It lives with the variants because they are its users; core only sees RoutePatternError
 * and MalformedPathError, which the contract defines. Parsing happens once per `add`; nothing here is on the per-request path except
 * `decodeParam` and `pathOf`.
 *
 * Segment model: a pattern `/a/:b/c-:d(\d+)/*` is split at '/' into segments, each one of
 * - static   `a`                 matched literally against the raw (still percent-encoded) path segment
 * - param    `:b`                one plain param filling the whole segment; its value must be non-empty
 * - pattern  `c-:d(\d+)`         anything else containing a param: literal text, several params, regex
 *                                 constraints. It matches a segment when the anchored segment regex does
 *                                 (plain params are lazy `[^/]+?`, constrained ones are the user's regex,
 *                                 so a constrained param may be empty if its regex allows it)
 * - wildcard `*`                 only as the last segment; takes the rest of the path, '/' included, maybe ""
 *
 * Priority at one segment position (all variants implement exactly this order, with backtracking):
 *   static  >  pattern segments (see compareSegments)  >  plain param  >  wildcard
 * Because a full match is the first one found by a depth-first walk in that order, ordering whole routes
 * lexicographically by their segments (compareRoutes) yields the same winner as any tree walk.
 */
import { MalformedPathError, RoutePatternError } from '../../../core/contracts/router.js';

export const SEG_STATIC = 0;
export const SEG_PATTERN = 1;
export const SEG_PARAM = 2;
export const SEG_WILDCARD = 3;

export interface StaticSegment {
  readonly kind: typeof SEG_STATIC;
  readonly text: string;
}

export interface ParamSegment {
  readonly kind: typeof SEG_PARAM;
  readonly name: string;
}

export interface PatternPart {
  /** literal text when name is null */
  readonly literal: string;
  readonly name: string | null;
  /** regex constraint source (without parens), or null for an unconstrained param */
  readonly constraint: string | null;
}

export interface PatternSegment {
  readonly kind: typeof SEG_PATTERN;
  readonly parts: readonly PatternPart[];
  /** param names in order of appearance */
  readonly names: readonly string[];
  /** anchored regex for the whole segment text (never contains '/') */
  readonly regex: RegExp;
  /** capture group index in `regex` of each entry of `names` (user regexes may contain groups) */
  readonly groups: readonly number[];
  /** unanchored body of `regex`, for variants that embed the segment in a bigger regex */
  readonly body: string;
  /** name-independent identity: two segments with the same shape share a tree node */
  readonly shape: string;
  readonly literalLength: number;
  readonly constrainedCount: number;
}

export interface WildcardSegment {
  readonly kind: typeof SEG_WILDCARD;
}

export type Segment = StaticSegment | ParamSegment | PatternSegment | WildcardSegment;

export interface ParsedRoute {
  readonly pattern: string;
  readonly segments: readonly Segment[];
  /** all param names in path order; a trailing wildcard contributes '*' */
  readonly paramNames: readonly string[];
  /** name-independent identity of the whole route; equal keys for one method = duplicate route */
  readonly key: string;
  readonly isStatic: boolean;
}

const WILDCARD: WildcardSegment = { kind: SEG_WILDCARD };

function isNameChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Index of the ')' closing the '(' at `open`, honouring escapes and character classes; -1 if unclosed. */
function closingParen(s: string, open: number): number {
  let depth = 0;
  let inClass = false;
  for (let i = open; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 92 /* \ */) {
      i++;
      continue;
    }
    if (inClass) {
      if (c === 93 /* ] */) inClass = false;
      continue;
    }
    if (c === 91 /* [ */) inClass = true;
    else if (c === 40 /* ( */) depth++;
    else if (c === 41 /* ) */) {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

function countGroups(source: string): number {
  return (new RegExp(source + '|').exec('') as RegExpExecArray).length - 1;
}

function checkConstraint(pattern: string, re: string): void {
  if (re.length === 0) throw new RoutePatternError(pattern, 'empty regex constraint');
  // Backreferences and named groups would change meaning (or fail) once the regex is embedded next to
  // other params, e.g. in the combined-regex variant.
  if (/\\[1-9]|\\k</.test(re)) throw new RoutePatternError(pattern, 'backreferences are not supported in constraints');
  if (/\(\?<[^=!]/.test(re)) throw new RoutePatternError(pattern, 'named groups are not supported in constraints');
  try {
    new RegExp('^(?:' + re + ')$');
  } catch (err) {
    throw new RoutePatternError(pattern, `invalid regex constraint (${(err as Error).message})`);
  }
}

function parsePatternSegment(pattern: string, text: string, names: string[]): Segment {
  const parts: PatternPart[] = [];
  let i = 0;
  let literal = '';
  let lastWasParam = false;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c !== 58 /* : */) {
      literal += text[i];
      i++;
      continue;
    }
    if (literal.length > 0) {
      parts.push({ literal, name: null, constraint: null });
      literal = '';
    } else if (lastWasParam) {
      throw new RoutePatternError(pattern, 'two params need literal text between them');
    }
    let j = i + 1;
    while (j < text.length && isNameChar(text.charCodeAt(j))) j++;
    const name = text.slice(i + 1, j);
    if (name.length === 0) throw new RoutePatternError(pattern, "':' must be followed by a param name [A-Za-z0-9_]");
    if (name === '__proto__') throw new RoutePatternError(pattern, 'param name __proto__ is reserved');
    if (names.includes(name)) throw new RoutePatternError(pattern, `duplicate param name ${name}`);
    names.push(name);
    let constraint: string | null = null;
    if (text.charCodeAt(j) === 40 /* ( */) {
      const close = closingParen(text, j);
      if (close === -1) throw new RoutePatternError(pattern, 'unclosed regex constraint');
      constraint = text.slice(j + 1, close);
      checkConstraint(pattern, constraint);
      j = close + 1;
    }
    parts.push({ literal: '', name, constraint });
    lastWasParam = true;
    i = j;
    // a constraint directly followed by another ':' is covered by the lastWasParam check above
  }
  if (literal.length > 0) parts.push({ literal, name: null, constraint: null });

  if (parts.length === 1) {
    const only = parts[0]!;
    if (only.name !== null && only.constraint === null) return { kind: SEG_PARAM, name: only.name };
  }

  let body = '';
  let shape = '';
  let group = 1;
  let literalLength = 0;
  let constrainedCount = 0;
  const segNames: string[] = [];
  const groups: number[] = [];
  for (const p of parts) {
    if (p.name === null) {
      body += escapeRegExp(p.literal);
      shape += p.literal.replace(/[\\:(]/g, '\\$&');
      literalLength += p.literal.length;
    } else if (p.constraint === null) {
      body += '([^/]+?)';
      shape += ':';
      segNames.push(p.name);
      groups.push(group);
      group += 1;
    } else {
      body += '(' + p.constraint + ')';
      shape += ':(' + p.constraint + ')';
      segNames.push(p.name);
      groups.push(group);
      group += 1 + countGroups(p.constraint);
      constrainedCount++;
    }
  }
  return {
    kind: SEG_PATTERN,
    parts,
    names: segNames,
    regex: new RegExp('^' + body + '$'),
    groups,
    body,
    shape,
    literalLength,
    constrainedCount,
  };
}

/** Parses and validates a route pattern; throws RoutePatternError. */
export function parseRoutePattern(pattern: string): ParsedRoute {
  if (typeof pattern !== 'string' || pattern.length === 0) throw new RoutePatternError(String(pattern), 'empty pattern');
  if (pattern.charCodeAt(0) !== 47) throw new RoutePatternError(pattern, "must start with '/'");
  const raw = pattern.slice(1).split('/');
  // split() cuts regex constraints that contain '/'; glue the pieces of a still-open '(' back together.
  const texts: string[] = [];
  for (let k = 0; k < raw.length; k++) {
    let t = raw[k]!;
    while (hasOpenConstraint(t) && k + 1 < raw.length) t += '/' + raw[++k]!;
    texts.push(t);
  }
  const segments: Segment[] = [];
  const names: string[] = [];
  let key = '';
  let isStatic = true;
  for (let k = 0; k < texts.length; k++) {
    const t = texts[k]!;
    let seg: Segment;
    if (t.includes(':')) {
      seg = parsePatternSegment(pattern, t, names);
      if (seg.kind === SEG_PATTERN) {
        for (const p of seg.parts) if (p.name === null) checkLiteral(pattern, p.literal);
      }
      isStatic = false;
    } else if (t === '*') {
      if (k !== texts.length - 1) throw new RoutePatternError(pattern, "'*' is only allowed as the last segment");
      seg = WILDCARD;
      names.push('*');
      isStatic = false;
    } else {
      checkLiteral(pattern, t);
      seg = { kind: SEG_STATIC, text: t };
    }
    segments.push(seg);
    // JSON keeps keys unambiguous even when a constraint contains '/'
    key += JSON.stringify(segmentKey(seg)) + ',';
  }
  return { pattern, segments, paramNames: names, key, isStatic };
}

function checkLiteral(pattern: string, text: string): void {
  if (text.includes('*')) throw new RoutePatternError(pattern, "'*' is only allowed as the whole last segment (e.g. /api/*)");
  if (text.includes('?')) throw new RoutePatternError(pattern, "'?' is not allowed (the query string is not part of a route)");
  if (text.includes('#')) throw new RoutePatternError(pattern, "'#' is not allowed");
}

function hasOpenConstraint(t: string): boolean {
  // true when a ':name(' in t has no matching ')' yet
  for (let i = 0; i < t.length; i++) {
    if (t.charCodeAt(i) === 58) {
      let j = i + 1;
      while (j < t.length && isNameChar(t.charCodeAt(j))) j++;
      if (j > i + 1 && t.charCodeAt(j) === 40) {
        const close = closingParen(t, j);
        if (close === -1) return true;
        i = close;
      }
    }
  }
  return false;
}

function segmentKey(seg: Segment): string {
  switch (seg.kind) {
    case SEG_STATIC:
      return 's' + seg.text;
    case SEG_PARAM:
      return 'p';
    case SEG_PATTERN:
      return 'x' + seg.shape;
    default:
      return 'w';
  }
}

/** Rank of a segment kind at one position: lower is tried first. */
export function segmentRank(seg: Segment): number {
  return seg.kind; // SEG_STATIC 0 < SEG_PATTERN 1 < SEG_PARAM 2 < SEG_WILDCARD 3
}

/**
 * Total order of pattern segments sharing a position: more literal text first (it is more specific:
 * `:name.png` before `:name.:ext`), then more regex constraints, then the shape text, so the order never
 * depends on registration order and every variant agrees on it.
 */
export function comparePatternSegments(a: PatternSegment, b: PatternSegment): number {
  if (a.literalLength !== b.literalLength) return b.literalLength - a.literalLength;
  if (a.constrainedCount !== b.constrainedCount) return b.constrainedCount - a.constrainedCount;
  return a.shape < b.shape ? -1 : a.shape > b.shape ? 1 : 0;
}

/** Order of two segments at the same position; 0 means "same tree node". */
export function compareSegments(a: Segment, b: Segment): number {
  if (a.kind !== b.kind) return a.kind - b.kind;
  if (a.kind === SEG_STATIC) {
    // distinct static texts never match the same path segment: any consistent order will do
    const bt = (b as StaticSegment).text;
    return a.text < bt ? -1 : a.text > bt ? 1 : 0;
  }
  if (a.kind === SEG_PATTERN) return comparePatternSegments(a, b as PatternSegment);
  return 0;
}

/**
 * Orders whole routes so that the first route (in this order) matching a path is the one a depth-first
 * tree walk in segment priority order would find. When one route's segments are a prefix of the other's
 * they can never match the same path (segment counts differ), so their relative order is irrelevant.
 */
export function compareRoutes(a: ParsedRoute, b: ParsedRoute): number {
  const n = Math.min(a.segments.length, b.segments.length);
  for (let i = 0; i < n; i++) {
    const c = compareSegments(a.segments[i]!, b.segments[i]!);
    if (c !== 0) return c;
  }
  return a.segments.length - b.segments.length;
}

/** The path part of a request target (the query string is never part of matching). */
export function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/**
 * decodeURIComponent semantics for one param value. The '%' scan keeps the common case (nothing encoded)
 * free of the decoder; the try/catch lives here so callers' hot loops stay optimisable.
 */
export function decodeParam(value: string, path: string): string {
  if (value.indexOf('%') === -1) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    throw new MalformedPathError(path);
  }
}

/** Method lookup order shared by all variants: exact method, then '*' (any), then GET for HEAD. */
export const ANY_METHOD = '*';

/**
 * Builds a params object with a fixed literal shape for one route. Generated once per route so the object
 * gets a stable hidden class (a keyed-store loop over varying names would go megamorphic across routes).
 * Values are read from `values[0..n)`; names are validated identifiers or '*', quoted via JSON.
 */
export type ParamsBuilder = (values: readonly string[], path: string) => Record<string, string>;

export function makeParamsBuilder(names: readonly string[]): ParamsBuilder {
  const fields = names.map((n, i) => `${JSON.stringify(n)}: decode(v[${i}], path)`).join(', ');

  return new Function('decode', `return function buildParams(v, path) { return { ${fields} }; };`)(decodeParam) as ParamsBuilder;
}

/** Remembers method+route keys to reject duplicates (same shape; param names do not matter). */
export class RouteRegistry {
  private readonly seen = new Set<string>();

  assertNew(method: string, route: ParsedRoute): void {
    if (this.seen.has(method + '\u0000' + route.key)) {
      throw new RoutePatternError(route.pattern, `duplicate route for method ${method}`);
    }
  }

  /** Called only after the route was really inserted, so a rejected route does not block a later one. */
  remember(method: string, route: ParsedRoute): void {
    this.seen.add(method + '\u0000' + route.key);
  }
}

/** Validates the method argument of `add`. */
export function checkMethod(method: string, pattern: string): void {
  if (typeof method !== 'string' || method.length === 0 || /[\s]/.test(method)) {
    throw new RoutePatternError(pattern, `invalid method ${JSON.stringify(method)}`);
  }
}
