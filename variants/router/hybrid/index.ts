/**
 * `hybrid` (production default): static routes in a Map per method, answered without walking anything and
 * without allocating (the match object is precomputed); dynamic routes in the radix tree behind it.
 * A fully static route always wins over dynamic ones in a depth-first priority walk (static is tried
 * first at every segment), so checking the Map first gives exactly the tree's answer.
 */
import { EMPTY_PARAMS, type RouteMatch, type Router } from '../../../core/contracts/router.js';
import { RadixTree } from '../radix/tree.js';
import { ANY_METHOD, checkMethod, parseRoutePattern, RouteRegistry } from '../shared/route-pattern.js';

const FILTER_BITS = 15;

/** Slot of a path in the static filter: its length (mod 256) and last char (mod 128). */
function filterSlot(path: string, len: number): number {
  return ((len & 255) << 7) | (path.charCodeAt(len - 1) & 127);
}

class Table<T> {
  readonly statics = new Map<string, RouteMatch<T>>();
  /**
   * Which (length, last char) pairs some static route has. Map.get must hash the whole (fresh) path first;
   * this O(1) check lets most dynamic paths and misses skip that cost.
   */
  readonly staticFilter = new Uint8Array(1 << FILTER_BITS);
  tree: RadixTree<T> | null = null;

  addStatic(path: string, match: RouteMatch<T>): void {
    this.statics.set(path, match);
    this.staticFilter[filterSlot(path, path.length)] = 1;
  }

  match(path: string): RouteMatch<T> | null {
    const len = path.length;
    if (len !== 0 && this.staticFilter[filterSlot(path, len)] === 1) {
      const s = this.statics.get(path);
      if (s !== undefined) return s;
    }
    return this.tree === null ? null : this.tree.find(path);
  }
}

class HybridRouter<T> implements Router<T> {
  private readonly tables = new Map<string, Table<T>>();
  private readonly registry = new RouteRegistry();
  // GET dominates traffic: a field load beats a Map lookup (method strings from node's parser are interned).
  private getTable: Table<T> | null = null;
  private anyTable: Table<T> | null = null;

  add(method: string, pattern: string, value: T): void {
    checkMethod(method, pattern);
    const route = parseRoutePattern(pattern);
    this.registry.assertNew(method, route);
    let table = this.tables.get(method);
    if (table === undefined) {
      table = new Table<T>();
      this.tables.set(method, table);
      if (method === 'GET') this.getTable = table;
      else if (method === ANY_METHOD) this.anyTable = table;
    }
    if (route.isStatic) {
      table.addStatic(pattern, { value, params: EMPTY_PARAMS });
    } else {
      if (table.tree === null) table.tree = new RadixTree<T>();
      table.tree.insert(route, value);
    }
    this.registry.remember(method, route);
  }

  find(method: string, target: string): RouteMatch<T> | null {
    // indexOf is a native scan; slicing only when a query is present keeps static hits allocation-free
    const q = target.indexOf('?');
    const path = q === -1 ? target : target.slice(0, q);
    const table = method === 'GET' ? this.getTable : this.tables.get(method);
    if (table != null) {
      const m = table.match(path);
      if (m !== null) return m;
    }
    if (this.anyTable !== null && method !== ANY_METHOD) {
      const m = this.anyTable.match(path);
      if (m !== null) return m;
    }
    if (method === 'HEAD' && this.getTable !== null) return this.getTable.match(path);
    return null;
  }
}

export function createRouter<T>(): Router<T> {
  return new HybridRouter<T>();
}
