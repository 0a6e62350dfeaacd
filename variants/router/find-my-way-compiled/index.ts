/**
 * Reference adapter: find-my-way 9.10 in its compiler mode (`router.compile()`), behind the shared Router
 * interface. compile() makes find() dispatch to JavaScript generated per method tree (inline char comparisons,
 * backtracking as nested blocks, params in fixed locals); it is called once on the empty instances, and
 * find-my-way recompiles a changed tree on its next lookup, so routes added later are found too.
 * Everything else (pattern translation, method layering, bad-URL handling) is the plain `find-my-way`
 * adapter's: only the lookup engine differs, so the two rows of a benchmark compare tree walk vs generated code.
 */
import type { Router } from '../../../core/contracts/router.js';
import { createFindMyWayRouter, unsupported as treeWalkUnsupported } from '../find-my-way/index.js';

export function createRouter<T>(): Router<T> {
  return createFindMyWayRouter<T>(true);
}

/**
 * Conformance cases this adapter cannot pass (case name → reason); see variants/router/index.ts.
 * compile() keeps find-my-way's matching semantics, so the list is the tree walk's.
 */
export const unsupported: Record<string, string> = { ...treeWalkUnsupported };
