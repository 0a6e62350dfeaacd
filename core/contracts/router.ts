import { GatewayError, type ErrorCode } from '../base/errors.js';

/**
 * The router contract: the one Router interface every router variant implements (variants/router/<name>/index.ts,
 * each exporting `createRouter<T>(): Router<T>`). Patterns are parsed and validated for all of them by
 * variants/router/shared/route-pattern.ts; core selects a variant only through core/variants.ts.
 *
 * Route syntax (the same for every variant):
 * - static segments:            /users/list
 * - named params:               /users/:id
 * - several params per segment: /flights/:from-:to   (a param ends at the next literal character)
 * - regex-constrained params:   /orders/:id(\d+)     (the regex must match the whole param value)
 * - trailing wildcard:          /api/*               (captured as params['*'], may be empty)
 *
 * Matching rules:
 * - priority at each segment: static > param > wildcard, with backtracking when a branch dead-ends
 * - method: exact method first, then '*' (any); HEAD falls back to GET when no HEAD route matches
 * - `find` receives the raw request target (query string included); the query string is ignored
 * - params are percent-decoded; a malformed percent-encoding throws MalformedPathError (→ 400)
 * - matching is case-sensitive; a trailing slash is significant; empty segments (`//`) are literal
 */
export interface RouteMatch<T> {
  value: T;
  params: Record<string, string>;
}

export interface Router<T> {
  add(method: string, path: string, value: T): void;
  find(method: string, path: string): RouteMatch<T> | null;
}

export type RouterFactory = <T>() => Router<T>;

/**
 * The params of every match that has none, and of a request context before routing: one frozen object without a
 * prototype, shared by all router variants and core/data/context.ts so such a match allocates nothing for its params
 * and a lookup like `params.constructor` finds nothing inherited.
 */
export const EMPTY_PARAMS: Record<string, string> = Object.freeze(Object.create(null) as Record<string, string>);

/** Thrown by `find` when a param (or the path) carries a malformed percent-encoding: the client gets a 400. */
export class MalformedPathError extends GatewayError {
  constructor(readonly path: string) {
    super('GW_ERR_MALFORMED_PATH', `malformed percent-encoding in path: ${path}`);
    this.name = 'MalformedPathError';
  }
}

/** Thrown by `add` when a route pattern cannot be parsed. */
export class RoutePatternError extends Error {
  readonly code: ErrorCode = 'GW_ERR_ROUTE_PATTERN';
  constructor(
    readonly pattern: string,
    reason: string,
  ) {
    super(`invalid route pattern ${JSON.stringify(pattern)}: ${reason}`);
    this.name = 'RoutePatternError';
  }
}
