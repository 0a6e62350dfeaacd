/**
 * Reference adapter: rou3 (h3/Nitro's router). Patterns are translated to rou3 syntax (literal text
 * escaped, `*` read back from rou3's numbered key "0"); rou3 never decodes params, so they are decoded
 * here. rou3 mixes exact and method-agnostic routes by specificity, so exact and '*' routes live in two
 * routers probed in the shared order. Known semantic differences (one trailing slash ignored, trailing
 * `*` optional) are listed as skips in the conformance suite.
 */
import { addRoute, createRouter as createRou3, findRoute, type RouterContext } from 'rou3';
import { EMPTY_PARAMS, RoutePatternError, type RouteMatch, type Router } from '../../../core/contracts/router.js';
import {
  ANY_METHOD,
  checkMethod,
  decodeParam,
  parseRoutePattern,
  pathOf,
  RouteRegistry,
  SEG_PARAM,
  SEG_PATTERN,
  SEG_STATIC,
  type ParsedRoute,
} from '../shared/route-pattern.js';

const escapeLiteral = (s: string): string => s.replace(/[\\:*?+(){}]/g, '\\$&');

export function toRou3Pattern(route: ParsedRoute): string {
  let out = '';
  for (const seg of route.segments) {
    out += '/';
    if (seg.kind === SEG_STATIC) {
      if (seg.text === '.' || seg.text === '..') throw new RoutePatternError(route.pattern, 'rou3 resolves dot segments');
      out += escapeLiteral(seg.text);
    } else if (seg.kind === SEG_PARAM) {
      out += ':' + seg.name;
    } else if (seg.kind === SEG_PATTERN) {
      for (const p of seg.parts) {
        if (p.name === null) out += escapeLiteral(p.literal);
        else out += ':' + p.name + (p.constraint === null ? '' : '(' + p.constraint + ')');
      }
    } else {
      out += '*';
    }
  }
  return out;
}

interface Entry<T> {
  value: T;
  /** false for a param-less route: its matches share EMPTY_PARAMS */
  hasParams: boolean;
}

class Rou3Router<T> implements Router<T> {
  private readonly exact: RouterContext<Entry<T>> = createRou3<Entry<T>>();
  private readonly any: RouterContext<Entry<T>> = createRou3<Entry<T>>();
  private readonly registry = new RouteRegistry();

  add(method: string, pattern: string, value: T): void {
    checkMethod(method, pattern);
    const route = parseRoutePattern(pattern);
    this.registry.assertNew(method, route);
    const translated = toRou3Pattern(route);
    try {
      const entry: Entry<T> = { value, hasParams: route.paramNames.length > 0 };
      if (method === ANY_METHOD) addRoute(this.any, '', translated, entry);
      else addRoute(this.exact, method, translated, entry);
    } catch (err) {
      throw new RoutePatternError(pattern, `rou3: ${(err as Error).message}`);
    }
    this.registry.remember(method, route);
  }

  find(method: string, target: string): RouteMatch<T> | null {
    const path = pathOf(target);
    let m = lookup(this.exact, method, path);
    if (m === null && method !== ANY_METHOD) m = lookup(this.any, '', path);
    if (m === null && method === 'HEAD') m = lookup(this.exact, 'GET', path);
    return m;
  }
}

function lookup<T>(router: RouterContext<Entry<T>>, method: string, path: string): RouteMatch<T> | null {
  const r = findRoute(router, method, path);
  if (r === undefined) return null;
  if (!r.data.hasParams) return { value: r.data.value, params: EMPTY_PARAMS };
  const params: Record<string, string> = {};
  if (r.params !== undefined) {
    for (const k in r.params) {
      if (k === '_') continue; // deprecated alias of "0"
      params[k === '0' ? '*' : k] = decodeParam(r.params[k] as string, path);
    }
  }
  return { value: r.data.value, params };
}

export function createRouter<T>(): Router<T> {
  return new Rou3Router<T>();
}

/** Conformance cases this adapter cannot pass (case name → reason); see variants/router/index.ts. */
export const unsupported: Record<string, string> = {
  'targets that are not origin-form paths never match': "rou3 expects paths starting with '/' ('' finds the root route)",
  'regex constraint containing a capture group': 'rou3 rejects capturing groups inside a constraint',
  'wildcard captures the rest, possibly empty': "rou3's trailing '*' is optional (/static matches /static/*)",
  'trailing slash is significant': 'rou3 ignores one trailing slash',
  'query string is ignored': 'rou3 ignores one trailing slash (/q/?x matches /q)',
  'Object.prototype names as methods': 'rou3 does not find routes registered under Object.prototype method names (toString, __proto__)',
};
