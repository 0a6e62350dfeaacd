// Moved to core/contracts/router.ts; kept until server.ts's imports move (core/http/pipeline.ts imports
// MalformedPathError from here, scripts/bench/{alloc,router}.ts the Router type).
export { EMPTY_PARAMS, MalformedPathError, RoutePatternError } from './contracts/router.js';
export type { RouteMatch, Router, RouterFactory } from './contracts/router.js';
