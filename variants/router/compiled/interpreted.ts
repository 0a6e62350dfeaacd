import type { RouteMatch } from '../../../core/contracts/router.js';
import { RadixTree } from '../radix/tree.js';
import type { ParsedRoute } from '../shared/route-pattern.js';
import type { Matcher } from './codegen.js';

/**
 * The same table as a tree walk (hybrid's structures: a Map for static routes, the radix tree behind it), used
 * instead of generated code when a table's code would be too big to pay off (see CODE_BUDGET_CHARS in index.ts).
 * Same priority rules, so the answer never depends on which of the two serves a table.
 */
export function interpretedMatcher<T>(statics: ReadonlyMap<string, RouteMatch<T>>, dynamic: ReadonlyArray<readonly [ParsedRoute, T]>): Matcher<T> {
  let tree: RadixTree<T> | null = null;
  for (const [route, value] of dynamic) (tree ??= new RadixTree<T>()).insert(route, value);
  return (target: string): RouteMatch<T> | null => {
    const q = target.indexOf('?');
    const path = q === -1 ? target : target.slice(0, q);
    return statics.get(path) ?? (tree === null ? null : tree.find(path));
  };
}
