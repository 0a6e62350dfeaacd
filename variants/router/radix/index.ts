/** `radix`: every route (static and dynamic) in one character-level radix tree per method. */
import type { RouteMatch, Router } from '../../../core/contracts/router.js';
import { MethodRouter } from '../shared/method-router.js';
import type { ParsedRoute } from '../shared/route-pattern.js';
import { RadixTree } from './tree.js';

class RadixRouter<T> extends MethodRouter<T, RadixTree<T>> {
  protected createTable(): RadixTree<T> {
    return new RadixTree<T>();
  }

  protected insert(tree: RadixTree<T>, route: ParsedRoute, value: T): void {
    tree.insert(route, value);
  }

  protected lookup(tree: RadixTree<T>, path: string): RouteMatch<T> | null {
    return tree.find(path);
  }
}

export function createRouter<T>(): Router<T> {
  return new RadixRouter<T>();
}
