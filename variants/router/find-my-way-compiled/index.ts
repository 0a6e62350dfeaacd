/**
 * Reference adapter: find-my-way 9.10 in its compiler mode (`router.compile()`), behind the shared Router
 * interface. compile() makes find() dispatch to JavaScript generated per method tree (inline char comparisons,
 * backtracking as nested blocks, params in fixed locals); it is called once on the empty instances, and
 * find-my-way recompiles a changed tree on its next lookup, so routes added later are found too.
 * Everything else (pattern translation, method layering, bad-URL handling) is the plain `find-my-way`
 * adapter's: only the lookup engine differs, so the two rows of a benchmark compare tree walk vs generated code.
 */
import FindMyWay from 'find-my-way';
import type { RouteMatch, Router } from '../../../core/contracts/router.js';
import { MalformedPathError, RoutePatternError } from '../../../core/contracts/router.js';
import { HTTP_METHODS, toFindMyWayPattern, unsupported as treeWalkUnsupported } from '../find-my-way/index.js';
import { ANY_METHOD, checkMethod, parseRoutePattern, RouteRegistry } from '../shared/route-pattern.js';

interface Store<T> {
  value: T;
}

type Instance = ReturnType<typeof FindMyWay>;

function makeInstance(): Instance {
  const fmw = FindMyWay({
    caseSensitive: true,
    ignoreTrailingSlash: false,
    ignoreDuplicateSlashes: false,
    maxParamLength: 1_000_000,
    allowUnsafeRegex: true,
    // makes find() return a store-less result instead of null, so malformed input is told apart from 404
    onBadUrl: () => undefined,
  });
  return fmw.compile();
}

class FindMyWayCompiledRouter<T> implements Router<T> {
  private readonly exact = makeInstance();
  private readonly any = makeInstance();
  private hasAny = false;
  private readonly registry = new RouteRegistry();

  add(method: string, pattern: string, value: T): void {
    checkMethod(method, pattern);
    const route = parseRoutePattern(pattern);
    this.registry.assertNew(method, route);
    if (method !== ANY_METHOD && !HTTP_METHODS.has(method)) {
      throw new RoutePatternError(pattern, `find-my-way only knows standard HTTP methods, not ${method}`);
    }
    const fmwPattern = toFindMyWayPattern(route);
    const store: Store<T> = { value };
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
  return { value: (r.store as Store<T>).value, params: r.params as Record<string, string> };
}

export function createRouter<T>(): Router<T> {
  return new FindMyWayCompiledRouter<T>();
}

/**
 * Conformance cases this adapter cannot pass (case name → reason); see variants/router/index.ts.
 * compile() keeps find-my-way's matching semantics, so the list is the tree walk's.
 */
export const unsupported: Record<string, string> = { ...treeWalkUnsupported };
