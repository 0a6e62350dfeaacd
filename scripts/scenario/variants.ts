import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MatrixList, Scenario } from '../../scenarios/schema.js';
import { ROOT } from './paths.js';

export const DIMENSIONS = ['build', 'router', 'pool', 'metrics', 'upstream', 'server', 'workers', 'plugins', 'pluginSet', 'accessLog', 'routeOptions'] as const;
export type Dimension = (typeof DIMENSIONS)[number];
/** the dimensions that are variant families of the gateway (config `variants.<family>`, "all" = every registered name) */
export const FAMILIES = ['router', 'pool', 'metrics', 'upstream', 'server'] as const;
export type Family = (typeof FAMILIES)[number];

/** One point of the matrix: a gateway configuration, the bare-server baseline, or a peer proxy. */
export interface VariantSpec {
  /** "baseline", "peer=<name>", or the matrix dimensions joined: "router=radix,workers=0" ("gateway" for an empty matrix) */
  id: string;
  kind: 'gateway' | 'baseline' | 'peer';
  /** kind "peer": which one (scripts/scenario/peers/index.ts) */
  peer?: string;
  router?: string;
  pool?: string;
  metrics?: string;
  upstream?: string;
  /** HTTP/1.1 server engine (variants/server/) */
  server?: string;
  workers?: number;
  plugins?: number;
  pluginSet?: string;
  /** name of an entry in the scenario's `accessLogs`: the gateway's logging.accessLog for this variant */
  accessLog?: string;
  /** name of an entry in the scenario's `routeOptionSets`: merged into every proxied route of this variant */
  routeOptions?: string;
  /** which build of the gateway runs this variant (scripts/scenario/builds.ts); default the current one */
  build?: string;
}

export type VariantNamesByFamily = Record<Family, string[]>;

/**
 * The registries of the variant families (core/variants.ts), imported from dist/ at run time so "all" always
 * means what the built gateway can actually select.
 */
export async function loadRegisteredVariants(): Promise<VariantNamesByFamily> {
  const mod = (await import(pathToFileURL(join(ROOT, 'dist', 'core', 'variants.js')).href)) as {
    variantNames(family: string): string[];
  };
  return Object.fromEntries(FAMILIES.map((f) => [f, mod.variantNames(f)])) as VariantNamesByFamily;
}

function matrixUsesAll(scenario: Scenario): boolean {
  return FAMILIES.some((d) => scenario.matrix[d] === 'all');
}

/** Cartesian product of the matrix, in file order, baseline first when included, peers last. */
export async function expandMatrix(scenario: Scenario, registry?: VariantNamesByFamily): Promise<VariantSpec[]> {
  const reg = registry ?? (matrixUsesAll(scenario) ? await loadRegisteredVariants() : undefined);
  const dims: Array<[Dimension, Array<string | number>]> = [];
  for (const d of DIMENSIONS) {
    const v = scenario.matrix[d] as MatrixList | number[] | undefined;
    if (v === undefined) continue;
    if (v === 'all') dims.push([d, reg![d as Family]]);
    else dims.push([d, v]);
  }
  let combos: Array<Array<[Dimension, string | number]>> = [[]];
  for (const [d, values] of dims) {
    const next: typeof combos = [];
    for (const c of combos) for (const v of values) next.push([...c, [d, v]]);
    combos = next;
  }
  const out: VariantSpec[] = [];
  if (scenario.includeBaseline) out.push({ id: 'baseline', kind: 'baseline' });
  for (const c of combos) {
    const spec: VariantSpec = { id: c.length === 0 ? 'gateway' : c.map(([d, v]) => `${d}=${v}`).join(','), kind: 'gateway' };
    for (const [d, v] of c) (spec as unknown as Record<string, unknown>)[d] = v;
    out.push(spec);
  }
  for (const peer of scenario.peers ?? []) out.push({ id: `peer=${peer}`, kind: 'peer', peer });
  return out;
}

/**
 * `--only router=radix,hybrid` (repeatable) → { router: ['radix','hybrid'] }; `--only baseline` keeps the baseline;
 * `--only peer=nginx,handwritten` keeps those peers.
 */
export function parseOnly(args: string[]): Map<string, Set<string>> {
  const filters = new Map<string, Set<string>>();
  for (const arg of args) {
    for (const part of arg.split(/\s+/).filter(Boolean)) {
      const eq = part.indexOf('=');
      if (eq === -1) {
        if (part !== 'baseline') throw new Error(`--only ${part}: expected dimension=value[,value] or "baseline"`);
        filters.set('baseline', new Set(['baseline']));
        continue;
      }
      const dim = part.slice(0, eq);
      if (!(DIMENSIONS as readonly string[]).includes(dim) && dim !== 'peer') {
        throw new Error(`--only ${part}: unknown dimension "${dim}" (known: ${DIMENSIONS.join(', ')}, peer)`);
      }
      const set = filters.get(dim) ?? new Set<string>();
      for (const v of part
        .slice(eq + 1)
        .split(',')
        .filter(Boolean))
        set.add(v);
      filters.set(dim, set);
    }
  }
  return filters;
}

/**
 * Keeps gateway variants matching every gateway filter and the peers a `peer=` filter names; the ratio reference
 * (keepId) always survives, and the baseline when asked for, so ratios stay computable.
 */
export function filterVariants(variants: VariantSpec[], filters: Map<string, Set<string>>, keepId?: string): VariantSpec[] {
  if (filters.size === 0) return variants;
  const out = variants.filter((v) => {
    if (v.id === keepId) return true;
    if (v.kind === 'baseline') return filters.has('baseline');
    if (v.kind === 'peer') return filters.get('peer')?.has(v.peer!) === true;
    for (const [dim, values] of filters) {
      if (dim === 'baseline' || dim === 'peer') continue;
      const value = (v as unknown as Record<string, unknown>)[dim];
      if (value === undefined || !values.has(String(value))) return false;
    }
    return true;
  });
  if (out.length === 0) throw new Error('--only filtered out every variant');
  return out;
}

/** Interleaved schedule: repetition-major (A B C A B C …) so slow drift of the machine hits every variant alike. */
export function schedule(variants: VariantSpec[], repetitions: number): Array<{ variant: VariantSpec; repetition: number }> {
  const out: Array<{ variant: VariantSpec; repetition: number }> = [];
  for (let r = 0; r < repetitions; r++) for (const v of variants) out.push({ variant: v, repetition: r });
  return out;
}
