/**
 * `compiled`: each method's route table is compiled into one generated JavaScript matcher (see codegen.ts):
 * static routes behind a switch on the target length and a string comparison, dynamic routes as a segment
 * tree laid out in nested blocks. Routes added later mark the table stale; it is compiled again on its next
 * lookup. Method order as everywhere: exact method → '*' → GET for HEAD. No route text ever becomes code.
 */
import type { RouteMatch, Router } from '../../../core/contracts/router.js';
import { ANY_METHOD, checkMethod, parseRoutePattern, RouteRegistry } from '../shared/route-pattern.js';
import { RouteTable, type Matcher } from './codegen.js';
import { interpretedMatcher } from './interpreted.js';

/**
 * Generated code pays off only while V8 can keep it optimised. Measured with traffic spread evenly over the
 * table (scripts/bench/router.ts, "Large tables"): the 237-route GitHub table (GET: about 60 k characters)
 * runs as fast as the tree walk; at 500 routes (GET: 138 k) about 1.5× slower once warm, and at 2,000 (543 k)
 * the first million lookups average 10–50 µs each while TurboFan keeps recompiling functions of 35 k
 * characters, against under 1 µs for the tree. A method table whose code would exceed this budget is served
 * by the tree walk instead (interpreted.ts): same answers, no warm-up cliff after a reload.
 */
export const CODE_BUDGET_CHARS = 100_000;

export interface CompiledRouterOptions {
  /** generated characters per method table above which that table is walked, not compiled (default CODE_BUDGET_CHARS) */
  codeBudgetChars?: number;
}

class Table<T> {
  readonly routes = new RouteTable<T>();
  /** the compiled (or interpreted) matcher, or a stub building it first (after an add) */
  match: Matcher<T> = this.compileAndMatch;
  interpreted = false;

  constructor(private readonly codeBudgetChars: number) {}

  private compileAndMatch(path: string): RouteMatch<T> | null {
    const compiled = this.routes.compile();
    this.interpreted = compiled.source.length > this.codeBudgetChars;
    this.match = this.interpreted ? interpretedMatcher(this.routes.statics, this.routes.dynamic) : compiled.match;
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

  constructor(private readonly codeBudgetChars: number) {}

  add(method: string, pattern: string, value: T): void {
    checkMethod(method, pattern);
    const route = parseRoutePattern(pattern);
    this.registry.assertNew(method, route);
    let table = this.tables.get(method);
    if (table === undefined) {
      table = new Table<T>(this.codeBudgetChars);
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
  sources(): Record<string, TableSource> {
    const out: Record<string, TableSource> = {};
    for (const [method, table] of this.tables) {
      table.match(''); // builds a stale table's matcher, so `interpreted` is current
      const c = table.routes.compile();
      out[method] = { source: c.source, constants: c.constants, interpreted: table.interpreted };
    }
    return out;
  }
}

export interface TableSource {
  source: string;
  constants: number;
  /** over the code budget: the table is served by the tree walk, and this source is not run */
  interpreted: boolean;
}

export function createRouter<T>(options: CompiledRouterOptions = {}): Router<T> {
  return new CompiledRouter<T>(options.codeBudgetChars ?? CODE_BUDGET_CHARS);
}

/** Generated sources of a router made by createRouter (undefined for other routers). */
export function compiledSources(router: Router<unknown>): Record<string, TableSource> | undefined {
  return router instanceof CompiledRouter ? router.sources() : undefined;
}
