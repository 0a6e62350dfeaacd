/**
 * `compiled`: each method's route table is compiled into one generated JavaScript matcher (see codegen.ts):
 * static routes behind a switch on the target length and a string comparison, dynamic routes as a segment
 * tree laid out in nested blocks. Routes added later mark the table stale; it is compiled again on its next
 * lookup. Method order as everywhere: exact method → '*' → GET for HEAD. No route text ever becomes code.
 */
import type { RouteMatch, Router } from '../../../core/contracts/router.js';
import { ANY_METHOD, checkMethod, parseRoutePattern, RouteRegistry } from '../shared/route-pattern.js';
import { RouteTable, type Matcher } from './codegen.js';

class Table<T> {
  readonly routes = new RouteTable<T>();
  /** the compiled matcher, or a stub compiling it first (after an add) */
  match: Matcher<T> = this.compileAndMatch;

  private compileAndMatch(path: string): RouteMatch<T> | null {
    this.match = this.routes.compile().match;
    return this.match(path);
  }

  stale(): void {
    this.match = this.compileAndMatch;
  }
}

class CompiledRouter<T> implements Router<T> {
  private readonly tables = new Map<string, Table<T>>();
  private readonly registry = new RouteRegistry();
  // GET dominates traffic: a field load beats a Map lookup
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
    table.routes.add(route, value);
    table.stale();
    this.registry.remember(method, route);
  }

  find(method: string, target: string): RouteMatch<T> | null {
    const table = method === 'GET' ? this.getTable : this.tables.get(method);
    if (table != null) {
      const m = table.match(target);
      if (m !== null) return m;
    }
    if (this.anyTable !== null && method !== ANY_METHOD) {
      const m = this.anyTable.match(target);
      if (m !== null) return m;
    }
    if (method === 'HEAD' && this.getTable !== null) return this.getTable.match(target);
    return null;
  }

  /** Generated code of every method table (compiling stale ones), for size reports and tests. */
  sources(): Record<string, { source: string; constants: number }> {
    const out: Record<string, { source: string; constants: number }> = {};
    for (const [method, table] of this.tables) {
      const c = table.routes.compile();
      out[method] = { source: c.source, constants: c.constants };
    }
    return out;
  }
}

export function createRouter<T>(): Router<T> {
  return new CompiledRouter<T>();
}

/** Generated sources of a router made by createRouter (undefined for other routers). */
export function compiledSources(router: Router<unknown>): Record<string, { source: string; constants: number }> | undefined {
  return router instanceof CompiledRouter ? router.sources() : undefined;
}
