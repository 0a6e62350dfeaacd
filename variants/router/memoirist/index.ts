/**
 * Reference adapter: memoirist (Elysia's radix router). It knows static text, whole-segment `:params` and
 * a trailing `*`; pattern segments (several params, regex constraints, text next to a param) are
 * rejected with RoutePatternError. Query stripping, param decoding and the method order are added here.
 */
import { Memoirist } from 'memoirist';
import { EMPTY_PARAMS, RoutePatternError, type RouteMatch, type Router } from '../../../core/contracts/router.js';
import { ANY_METHOD, checkMethod, decodeParam, parseRoutePattern, pathOf, RouteRegistry, SEG_PATTERN } from '../shared/route-pattern.js';

interface Store<T> {
  value: T;
  /** false for a param-less route: its matches share EMPTY_PARAMS */
  hasParams: boolean;
}

class MemoiristRouter<T> implements Router<T> {
  private readonly exact = new Memoirist<Store<T>>();
  private readonly any = new Memoirist<Store<T>>();
  private readonly registry = new RouteRegistry();

  add(method: string, pattern: string, value: T): void {
    checkMethod(method, pattern);
    const route = parseRoutePattern(pattern);
    this.registry.assertNew(method, route);
    if (route.segments.some((s) => s.kind === SEG_PATTERN)) {
      throw new RoutePatternError(pattern, 'memoirist supports only whole-segment params (no multi-param, regex or mixed segments)');
    }
    const store: Store<T> = { value, hasParams: route.paramNames.length > 0 };
    if (method === ANY_METHOD) this.any.add('GET', pattern, store);
    else this.exact.add(method, pattern, store);
    this.registry.remember(method, route);
  }

  find(method: string, target: string): RouteMatch<T> | null {
    const path = pathOf(target);
    let m = lookup(this.exact, method, path);
    if (m === null && method !== ANY_METHOD) m = lookup(this.any, 'GET', path);
    if (m === null && method === 'HEAD') m = lookup(this.exact, 'GET', path);
    return m;
  }
}

function lookup<T>(router: Memoirist<Store<T>>, method: string, path: string): RouteMatch<T> | null {
  const r = router.find(method, path);
  if (r === null) return null;
  if (!r.store.hasParams) return { value: r.store.value, params: EMPTY_PARAMS };
  const params: Record<string, string> = {};
  for (const k in r.params) params[k] = decodeParam(r.params[k] as string, path);
  return { value: r.store.value, params };
}

export function createRouter<T>(): Router<T> {
  return new MemoiristRouter<T>();
}

/** Conformance cases this adapter cannot pass (case name → reason); see variants/router/index.ts. */
export const unsupported: Record<string, string> = {
  'targets that are not origin-form paths never match': "memoirist does not require a leading '/' ('' matches /*)",
  'several params in one segment': 'memoirist has no multi-param segments (the adapter rejects them)',
  'multi-param segments are split on the raw text, then decoded': 'memoirist has no multi-param segments (the adapter rejects them)',
  'params with literal text in the segment': 'memoirist has no mixed text/param segments with the shared priority (the adapter rejects them)',
  'regex params match the whole value': 'memoirist has no regex constraints (the adapter rejects them)',
  'regex param non-match falls back to another route': 'memoirist has no regex constraints (the adapter rejects them)',
  'regex constraints test the raw (still encoded) text': 'memoirist has no regex constraints (the adapter rejects them)',
  'regex params in a multi-param segment': 'memoirist has no regex constraints (the adapter rejects them)',
  'regex constraint containing a capture group': 'memoirist has no regex constraints (the adapter rejects them)',
  'pattern segment beats plain param, plain param beats wildcard': 'memoirist has no mixed text/param segments (the adapter rejects them)',
};
