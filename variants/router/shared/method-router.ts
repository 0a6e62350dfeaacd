/**
 * Common frame of the straightforward variants: one table per method, looked up in the shared order
 * exact method → '*' → GET (for HEAD). The hybrid router inlines this for speed instead.
 */
import type { RouteMatch, Router } from '../../../core/contracts/router.js';
import { ANY_METHOD, checkMethod, parseRoutePattern, pathOf, RouteRegistry, type ParsedRoute } from './route-pattern.js';

export abstract class MethodRouter<T, Table> implements Router<T> {
  private readonly tables = new Map<string, Table>();
  private readonly registry = new RouteRegistry();

  protected abstract createTable(): Table;
  /** Adds a parsed route; throws RoutePatternError for syntax the variant cannot express. */
  protected abstract insert(table: Table, route: ParsedRoute, value: T, method: string): void;
  /** Matches a query-less path; `target` is the raw request target (for error messages). */
  protected abstract lookup(table: Table, path: string, target: string): RouteMatch<T> | null;

  add(method: string, pattern: string, value: T): void {
    checkMethod(method, pattern);
    const route = parseRoutePattern(pattern);
    this.registry.assertNew(method, route);
    let table = this.tables.get(method);
    if (table === undefined) {
      table = this.createTable();
      this.tables.set(method, table);
    }
    this.insert(table, route, value, method);
    this.registry.remember(method, route);
  }

  find(method: string, target: string): RouteMatch<T> | null {
    const path = pathOf(target);
    let table = this.tables.get(method);
    if (table !== undefined) {
      const m = this.lookup(table, path, target);
      if (m !== null) return m;
    }
    if (method !== ANY_METHOD) {
      table = this.tables.get(ANY_METHOD);
      if (table !== undefined) {
        const m = this.lookup(table, path, target);
        if (m !== null) return m;
      }
    }
    if (method === 'HEAD') {
      table = this.tables.get('GET');
      if (table !== undefined) return this.lookup(table, path, target);
    }
    return null;
  }
}
