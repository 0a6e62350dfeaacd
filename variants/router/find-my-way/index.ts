/**
 * Reference adapter: find-my-way v9 (fastify's router) behind the shared Router interface.
 * Method rules are layered on top (find-my-way has no "any method" tree and no HEAD→GET fallback):
 * one instance for exact methods, one for '*' routes (stored under GET), probed in the shared order.
 * Syntax find-my-way cannot express the same way is rejected with RoutePatternError.
 */
import FindMyWay from 'find-my-way';
import { EMPTY_PARAMS, MalformedPathError, RoutePatternError, type RouteMatch, type Router } from '../../../core/contracts/router.js';
import { ANY_METHOD, checkMethod, parseRoutePattern, RouteRegistry, SEG_PARAM, SEG_PATTERN, SEG_STATIC, type ParsedRoute } from '../shared/route-pattern.js';

/** The methods find-my-way accepts; others are refused at add time. */
const HTTP_METHODS = new Set<string>([
  'ACL',
  'BIND',
  'CHECKOUT',
  'CONNECT',
  'COPY',
  'DELETE',
  'GET',
  'HEAD',
  'LINK',
  'LOCK',
  'M-SEARCH',
  'MERGE',
  'MKACTIVITY',
  'MKCALENDAR',
  'MKCOL',
  'MOVE',
  'NOTIFY',
  'OPTIONS',
  'PATCH',
  'POST',
  'PROPFIND',
  'PROPPATCH',
  'PURGE',
  'PUT',
  'QUERY',
  'REBIND',
  'REPORT',
  'SEARCH',
  'SOURCE',
  'SUBSCRIBE',
  'TRACE',
  'UNBIND',
  'UNLINK',
  'UNLOCK',
  'UNSUBSCRIBE',
]);

/** find-my-way pattern for a parsed route, or a RoutePatternError when it has no equivalent. */
export function toFindMyWayPattern(route: ParsedRoute): string {
  let out = '';
  for (const seg of route.segments) {
    out += '/';
    if (seg.kind === SEG_STATIC) {
      if (seg.text.includes('%')) throw new RoutePatternError(route.pattern, 'find-my-way decodes static text before matching');
      out += seg.text;
    } else if (seg.kind === SEG_PARAM) {
      out += ':' + seg.name;
    } else if (seg.kind === SEG_PATTERN) {
      const parts = seg.parts;
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i]!;
        if (p.name === null) {
          // a param name only ends at '-', '.', '(' or '/' in find-my-way's grammar
          if (i > 0 && p.literal[0] !== '-' && p.literal[0] !== '.') {
            throw new RoutePatternError(route.pattern, "find-my-way only separates params with '-' or '.'");
          }
          out += p.literal;
        } else {
          out += ':' + p.name;
          if (p.constraint !== null) {
            if ((new RegExp(p.constraint + '|').exec('') as RegExpExecArray).length > 1) {
              throw new RoutePatternError(route.pattern, 'find-my-way counts groups inside a constraint as params');
            }
            out += '(' + p.constraint + ')';
          }
        }
      }
    } else {
      out += '*';
    }
  }
  return out;
}

interface Store<T> {
  value: T;
  /** false for a param-less route: its matches share EMPTY_PARAMS */
  hasParams: boolean;
}

type Instance = ReturnType<typeof FindMyWay>;

/** `compiled`: find-my-way's compile() mode (generated matchers, recompiled on the next lookup after a change). */
function makeInstance(compiled: boolean): Instance {
  const fmw = FindMyWay({
    caseSensitive: true,
    ignoreTrailingSlash: false,
    ignoreDuplicateSlashes: false,
    maxParamLength: 1_000_000,
    allowUnsafeRegex: true,
    // makes find() return a store-less result instead of null, so malformed input is told apart from 404
    onBadUrl: () => undefined,
  });
  return compiled ? fmw.compile() : fmw;
}

class FindMyWayRouter<T> implements Router<T> {
  private readonly exact: Instance;
  private readonly any: Instance;
  private hasAny = false;
  private readonly registry = new RouteRegistry();

  constructor(compiled: boolean) {
    this.exact = makeInstance(compiled);
    this.any = makeInstance(compiled);
  }

  add(method: string, pattern: string, value: T): void {
    checkMethod(method, pattern);
    const route = parseRoutePattern(pattern);
    this.registry.assertNew(method, route);
    if (method !== ANY_METHOD && !HTTP_METHODS.has(method)) {
      throw new RoutePatternError(pattern, `find-my-way only knows standard HTTP methods, not ${method}`);
    }
    const fmwPattern = toFindMyWayPattern(route);
    const store: Store<T> = { value, hasParams: route.paramNames.length > 0 };
    try {
      if (method === ANY_METHOD) {
        this.any.on('GET', fmwPattern, noop, store);
        this.hasAny = true;
      } else {
        this.exact.on(method as 'GET', fmwPattern, noop, store);
      }
    } catch (err) {
      throw new RoutePatternError(pattern, `find-my-way: ${(err as Error).message}`);
    }
    this.registry.remember(method, route);
  }

  find(method: string, target: string): RouteMatch<T> | null {
    if (HTTP_METHODS.has(method)) {
      const m = lookup<T>(this.exact, method, target);
      if (m !== null) return m;
    }
    if (this.hasAny && method !== ANY_METHOD) {
      const m = lookup<T>(this.any, 'GET', target);
      if (m !== null) return m;
    }
    if (method === 'HEAD') return lookup<T>(this.exact, 'GET', target);
    return null;
  }
}

function noop(): void {}

function lookup<T>(fmw: Instance, method: string, target: string): RouteMatch<T> | null {
  const r = fmw.find(method as 'GET', target);
  if (r === null) return null;
  if (r.store === null) throw new MalformedPathError(target);
  const store = r.store as Store<T>;
  return { value: store.value, params: store.hasParams ? (r.params as Record<string, string>) : EMPTY_PARAMS };
}

/** The adapter over find-my-way's tree walk, or (`compiled`) over its compile() mode: only the engine differs. */
export function createFindMyWayRouter<T>(compiled: boolean): Router<T> {
  return new FindMyWayRouter<T>(compiled);
}

export function createRouter<T>(): Router<T> {
  return new FindMyWayRouter<T>(false);
}

/** Conformance cases this adapter cannot pass (case name → reason); see variants/router/index.ts. */
export const unsupported: Record<string, string> = {
  'targets that are not origin-form paths never match': "find-my-way reports '' as a bad URL and parses absolute-form targets (http://host/path)",
  'named params': "find-my-way lets a param match an empty segment (/users/ matches /users/:id with id '')",
  'several params in one segment': 'find-my-way splits a multi-param segment differently when the separator repeats',
  'params with literal text in the segment': "find-my-way gives the earlier param the longer share (a.tar.gz → name 'a.tar', ext 'gz')",
  'regex constraint containing a capture group': 'find-my-way counts groups inside a constraint as params (the adapter rejects the route)',
  'regex constraints test the raw (still encoded) text': 'find-my-way decodes the path before testing a constraint (/c/%31 matches :id(\\d+))',
  'non-standard methods': 'find-my-way only accepts its fixed HTTP method list (FOO is rejected)',
  'Object.prototype names as methods': 'find-my-way only accepts its fixed HTTP method list',
  'empty segments are literal': 'find-my-way lets a param match an empty segment (/e//f matches /e/:x/f)',
  'static text is matched on the raw path': 'find-my-way percent-decodes the path before matching static text (/users/%6Cist hits /users/list)',
  'malformed encoding outside any param is not an error': "find-my-way validates the whole path's encoding first, so a 404 path with bad encoding is a bad URL",
  'query string is ignored': 'find-my-way lets a param match an empty segment (/q/?x matches /q/:id)',
};
