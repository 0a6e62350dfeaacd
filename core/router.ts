// Moved to core/contracts/router.ts; kept until server.ts's imports move (core/http/pipeline.ts, scripts/bench,
// variants/router/find-my-way-compiled still import this path).
export { EMPTY_PARAMS, MalformedPathError, RoutePatternError } from './contracts/router.js';
export type { RouteMatch, Router, RouterFactory } from './contracts/router.js';
