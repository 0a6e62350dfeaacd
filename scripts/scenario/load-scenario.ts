import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parseScenario, ScenarioError, type Scenario } from '../../scenarios/schema.js';
import { SCENARIO_DIR } from './paths.js';
import type { ResolvedRoute } from './traffic.js';

export interface LoadedScenario {
  scenario: Scenario;
  /** the route set the gateway serves (route table materialised) */
  routes: ResolvedRoute[];
  /** sha256 of the canonical scenario + resolved routes: two reports with the same hash ran the same workload */
  hash: string;
  source: string;
}

interface RouteTableEntry {
  method: string;
  path: string;
}

/** Stable JSON (sorted keys) so the hash does not depend on key order in the file. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value as object).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A scenario name or file that does not exist: the scripts print the message (and the names there are) and exit 2. */
export class UnknownScenarioError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnknownScenarioError';
  }
}

/** What `npm run scenario -- NAME` accepts: scenarios/*.json, and scenarios/h2load/*.json (the h2load runner's). */
export function scenarioNames(): string[] {
  const names = (dir: string): string[] => {
    try {
      return readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -'.json'.length));
    } catch {
      return [];
    }
  };
  return [...new Set([...names(SCENARIO_DIR), ...names(join(SCENARIO_DIR, 'h2load'))])].sort();
}

/** Throws UnknownScenarioError unless nameOrPath names a scenario file that exists (among `candidates`, if given). */
export function assertScenarioExists(nameOrPath: string, candidates: string[] = [scenarioPath(nameOrPath)]): void {
  if (candidates.some((f) => existsSync(f))) return;
  if (nameOrPath.endsWith('.json')) throw new UnknownScenarioError(`scenario file not found: ${candidates[0]}`);
  throw new UnknownScenarioError(`unknown scenario "${nameOrPath}"; available: ${scenarioNames().join(', ')}`);
}

export function scenarioPath(nameOrPath: string): string {
  if (nameOrPath.endsWith('.json')) return isAbsolute(nameOrPath) ? nameOrPath : join(process.cwd(), nameOrPath);
  return join(SCENARIO_DIR, `${nameOrPath}.json`);
}

function loadRouteTable(name: string, source: string): RouteTableEntry[] {
  const file = join(SCENARIO_DIR, 'routes', `${name}.json`);
  if (!existsSync(file)) throw new ScenarioError(source, [`/routeTable: route table "${name}" not found (${file})`]);
  const raw = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  if (!Array.isArray(raw)) throw new ScenarioError(source, [`/routeTable: ${file} must be an array`]);
  return raw.map((e, i) => {
    const entry = e as Partial<RouteTableEntry>;
    if (typeof entry.method !== 'string' || typeof entry.path !== 'string' || !entry.path.startsWith('/')) {
      throw new ScenarioError(source, [`/routeTable: ${file} entry ${i} must be { "method": string, "path": "/..." }`]);
    }
    return { method: entry.method, path: entry.path };
  });
}

export function resolveRoutes(scenario: Scenario, source: string): ResolvedRoute[] {
  if (scenario.routes !== undefined) {
    return scenario.routes.map((r) => ({
      path: r.path,
      methods: r.methods,
      ...(r.name !== undefined ? { name: r.name } : {}),
      // in proxy mode a route without a response forwards to the upstream stub
      ...(r.response !== undefined ? { response: r.response } : {}),
    }));
  }
  const table = loadRouteTable(scenario.routeTable!, source);
  return table.map((e) => ({
    path: e.path,
    methods: [e.method],
    ...(scenario.mode === 'direct' ? { response: scenario.routeResponse! } : {}),
  }));
}

export function loadScenario(nameOrPath: string): LoadedScenario {
  const file = scenarioPath(nameOrPath);
  assertScenarioExists(nameOrPath, [file]);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ScenarioError(file, [`/: not valid JSON (${(err as Error).message})`]);
  }
  const scenario = parseScenario(raw, file);
  const routes = resolveRoutes(scenario, file);
  const hash = createHash('sha256').update(canonicalJson({ scenario, routes })).digest('hex');
  return { scenario, routes, hash, source: file };
}
