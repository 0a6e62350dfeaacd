import AjvModule, { type ErrorObject } from 'ajv';

// ajv is CommonJS; under NodeNext its default export is the module namespace.
const Ajv = AjvModule.default ?? AjvModule;

/** One weighted entry of the traffic mix: a request template, or "every route of the route set". */
export interface TrafficRequest {
  weight: number;
  method: string;
  /** path (and query) template; `{name}` → random token, `{name:int}`, `{name:hex}`, `{name:uuid}` */
  path: string;
  headers?: Record<string, string>;
  /** string sent as-is; anything else is sent as JSON */
  body?: unknown;
}

export interface TrafficFromRoutes {
  weight: number;
  /** expand into one request per route (GET routes, or the route's first method), sharing the weight equally */
  fromRoutes: true;
}

export type TrafficEntry = TrafficRequest | TrafficFromRoutes;

export interface StaticResponseSpec {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface ScenarioRoute {
  path: string;
  methods: string[];
  name?: string;
  /** direct mode: the static answer; proxy mode routes without `response` go to the built-in upstream stub */
  response?: StaticResponseSpec;
}

export type MatrixList = string[] | 'all';

export interface VariantMatrix {
  router?: MatrixList;
  pool?: MatrixList;
  metrics?: MatrixList;
  upstream?: MatrixList;
  /** HTTP/1.1 server engines (config `variants.server`, variants/server/): variant ids say `server=own` */
  server?: MatrixList;
  /** gateway worker processes; 0 = single process */
  workers?: number[];
  /** number of no-op plugins loaded globally (scripts/scenario/plugins/noop.js) */
  plugins?: number[];
  /** gateway builds to compare: "current", a git revision, or "revert:<rev>" (scripts/scenario/builds.ts) */
  build?: string[];
  /** names of entries in the scenario's `pluginSets`: each is the gateway's global plugin list for that variant */
  pluginSet?: string[];
  /** names of entries in the scenario's `accessLogs`: each is the gateway's `logging.accessLog` for that variant */
  accessLog?: string[];
  /** names of entries in the scenario's `routeOptionSets`: each is merged into every proxied route for that variant */
  routeOptions?: string[];
  /** names of entries in the scenario's `routeSets`: how each variant's routes select by host and conditions */
  routeSet?: string[];
}

/**
 * How a variant's routes select beyond the path (docs/routing.md): `hosts` and `match` added to every route, and
 * `perHost` adding one copy of the route set per host name, copy i (1-based) with `hosts: [host with {i} = i]`
 * (scripts/scenario/gateway-config.ts applyRouteSet).
 */
export interface RouteSetSpec {
  hosts?: string[];
  match?: Record<string, unknown>;
  /** `together`: one copy of the routes listing all `count` names, instead of one copy per name */
  perHost?: { count: number; host: string; together?: boolean };
}

export interface LoadSpec {
  connections: number;
  pipelining: number;
  /** measured duration per run (exclusive with amount) */
  durationS?: number;
  /** measured request count per run (exclusive with durationS) */
  amount?: number;
  /** fixed overall request rate (req/s) for latency-under-load runs; omitted = as fast as possible */
  rate?: number;
  /**
   * fixed rate as a fraction of a measured maximum (exclusive with rate): before the schedule the runner measures
   * `variant`'s throughput at full speed (default: the reference variant) and runs every variant at fraction × it
   */
  rateOfMax?: { fraction: number; variant?: string };
  /** per-request timeout in seconds */
  timeoutS?: number;
  /** load engine: 'auto' = wrk when installed and the run allows it (closed loop, by duration, no pipelining) */
  engine: 'auto' | 'autocannon' | 'wrk';
}

export interface UpstreamStubSpec {
  /** bytes of the stub's JSON response body */
  bodyBytes: number;
  /** artificial delay before answering, milliseconds */
  delayMs: number;
}

/** Peer proxies a proxy-mode scenario runs next to the gateway (scripts/scenario/peers/). */
export type PeerName = 'fast-gateway' | 'fastify-http-proxy' | 'handwritten' | 'nginx' | 'haproxy' | 'caddy' | 'floor';

/**
 * A target the report checks: ratio = median(metric of variant) ÷ median(metric of reference), met when
 * ratio ≥ min (throughput-like) or ratio ≤ max (latency-like). `cpu` is CPU efficiency, the other way round:
 * median(reference CPU µs per request) ÷ median(variant CPU µs per request), so ≥ 1 means the variant spends less
 * CPU on a request than the reference (issue 18's "nginx CPU µs per request ÷ gateway CPU µs per request").
 */
export interface TargetSpec {
  variant: string;
  reference: string;
  metric: 'throughput' | 'p99' | 'cpu';
  min?: number;
  max?: number;
  /** where the target comes from, e.g. "issue 8" */
  source?: string;
}

export interface Scenario {
  $schema?: string;
  name: string;
  description: string;
  mode: 'direct' | 'proxy';
  /** partial gateway config merged over the generated one (server, logging, upstream tuning, …) */
  gateway?: Record<string, unknown>;
  /** inline route set (exclusive with routeTable) */
  routes?: ScenarioRoute[];
  /** named route table from scenarios/routes/<name>.json: `[{ "method": "GET", "path": "/repos/:owner/:repo" }, …]` */
  routeTable?: string;
  /** answer of every route-table route in direct mode */
  routeResponse?: StaticResponseSpec;
  traffic: TrafficEntry[];
  upstreamStub?: UpstreamStubSpec;
  matrix: VariantMatrix;
  /** add the `baseline` variant: a bare http.createServer answering the same bytes */
  includeBaseline: boolean;
  /** variant id the ratios are computed against ("baseline" or e.g. "router=hybrid") */
  baselineVariant?: string;
  /** named global plugin lists (gateway config `plugins` entries) selected by `matrix.pluginSet` */
  pluginSets?: Record<string, Array<{ name: string; enabled?: boolean; options?: Record<string, unknown> }>>;
  /** named `logging.accessLog` values (false for off) selected by `matrix.accessLog`; a relative file lands in the run's work dir */
  accessLogs?: Record<string, unknown>;
  /**
   * named route settings (e.g. `mirror`) merged into every proxied route, selected by `matrix.routeOptions`; in
   * proxy mode an upstream `stub-mirror` (a second stub process) is there for a mirror to name
   */
  routeOptionSets?: Record<string, Record<string, unknown>>;
  /** named route selections (hosts, match conditions, one copy of the routes per host) selected by `matrix.routeSet` */
  routeSets?: Record<string, RouteSetSpec>;
  /** proxy mode: peer proxies run as variants `peer=<name>` next to the gateway */
  peers?: PeerName[];
  /** ratio targets the report marks as met / missed */
  targets?: TargetSpec[];
  /**
   * verify before timing: besides status and body bytes (always compared), the response headers whose values
   * every contestant must send alike (scripts/scenario/answer-check.ts)
   */
  verify?: { headers: string[] };
  /**
   * the drift guard (scripts/scenario/drift.ts): the control (default: the baseline, else nginx) may change by at
   * most `limit` (a fraction, default 0.1) between its first and last repetition, or the run gets no verdicts
   */
  drift?: { control?: string; limit: number };
  /**
   * capacity mode (scripts/scenario/capacity.ts): per contestant the highest fixed rate whose p99 stays within
   * objectiveMs; present = the scenario runs in capacity mode (`--capacity` turns it on for any scenario)
   */
  capacity?: {
    objectiveMs?: number;
    percentile?: 99 | 99.9;
    windowS?: number;
    probeWarmupS?: number;
    startRate?: number;
    maxRate?: number;
    minRate?: number;
    tolerance?: number;
    maxProbes?: number;
  };
  load: LoadSpec;
  warmupS: number;
  repetitions: number;
  /** seed of the traffic generator and the bootstrap */
  seed: number;
}

/** mirrors scripts/scenario/builds.ts (kept here so the schema has no dependency on the runner) */
const BUILD_PATTERN = '^(current|[0-9a-f]{7,40}|revert:[0-9a-f]{7,40})$';
const name = { type: 'string', minLength: 1 } as const;
const variantList = {
  oneOf: [{ type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' } }, { const: 'all' }],
} as const;
const intList = (min: number, max: number) =>
  ({ type: 'array', minItems: 1, uniqueItems: true, items: { type: 'integer', minimum: min, maximum: max } }) as const;
const headers = { type: 'object', additionalProperties: { type: 'string' } } as const;
const staticResponse = {
  type: 'object',
  additionalProperties: false,
  required: ['status'],
  properties: {
    status: { type: 'integer', minimum: 100, maximum: 599 },
    headers,
    body: {},
  },
} as const;

export const scenarioSchema = {
  $id: 'https://ts-gateway.local/scenario.schema.json',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'description', 'mode', 'traffic', 'matrix', 'load'],
  properties: {
    $schema: { type: 'string' },
    name: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' },
    description: name,
    mode: { enum: ['direct', 'proxy'] },
    gateway: { type: 'object' },
    routes: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path', 'methods'],
        properties: {
          path: { type: 'string', pattern: '^/' },
          methods: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^([A-Z]+|\\*)$' } },
          name,
          response: staticResponse,
        },
      },
    },
    routeTable: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' },
    routeResponse: staticResponse,
    traffic: {
      type: 'array',
      minItems: 1,
      items: {
        oneOf: [
          {
            type: 'object',
            additionalProperties: false,
            required: ['weight', 'method', 'path'],
            properties: {
              weight: { type: 'number', exclusiveMinimum: 0 },
              method: { type: 'string', pattern: '^[A-Z]+$' },
              path: { type: 'string', pattern: '^/' },
              headers,
              body: {},
            },
          },
          {
            type: 'object',
            additionalProperties: false,
            required: ['weight', 'fromRoutes'],
            properties: {
              weight: { type: 'number', exclusiveMinimum: 0 },
              fromRoutes: { const: true },
            },
          },
        ],
      },
    },
    upstreamStub: {
      type: 'object',
      additionalProperties: false,
      properties: {
        bodyBytes: { type: 'integer', minimum: 0, maximum: 10_000_000, default: 256 },
        delayMs: { type: 'integer', minimum: 0, maximum: 60_000, default: 0 },
      },
    },
    matrix: {
      type: 'object',
      additionalProperties: false,
      properties: {
        router: variantList,
        pool: variantList,
        metrics: variantList,
        upstream: variantList,
        server: variantList,
        workers: intList(0, 256),
        plugins: intList(0, 1000),
        pluginSet: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' } },
        accessLog: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' } },
        routeOptions: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' } },
        routeSet: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' } },
        build: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: BUILD_PATTERN } },
      },
    },
    accessLogs: { type: 'object', propertyNames: { pattern: '^[a-z0-9][a-z0-9-]*$' } },
    routeOptionSets: { type: 'object', propertyNames: { pattern: '^[a-z0-9][a-z0-9-]*$' }, additionalProperties: { type: 'object' } },
    routeSets: {
      type: 'object',
      propertyNames: { pattern: '^[a-z0-9][a-z0-9-]*$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          hosts: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
          match: { type: 'object' },
          perHost: {
            type: 'object',
            additionalProperties: false,
            required: ['count', 'host'],
            properties: {
              count: { type: 'integer', minimum: 1, maximum: 100_000 },
              host: { type: 'string', pattern: '\\{i\\}' },
              together: { type: 'boolean' },
            },
          },
        },
      },
    },
    pluginSets: {
      type: 'object',
      propertyNames: { pattern: '^[a-z0-9][a-z0-9-]*$' },
      additionalProperties: {
        type: 'array',
        items: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 } } },
      },
    },
    includeBaseline: { type: 'boolean', default: false },
    baselineVariant: { type: 'string', minLength: 1 },
    peers: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { enum: ['fast-gateway', 'fastify-http-proxy', 'handwritten', 'nginx', 'haproxy', 'caddy', 'floor'] },
    },
    capacity: {
      type: 'object',
      additionalProperties: false,
      properties: {
        objectiveMs: { type: 'number', exclusiveMinimum: 0, maximum: 60_000 },
        percentile: { enum: [99, 99.9] },
        windowS: { type: 'number', exclusiveMinimum: 0, maximum: 600 },
        probeWarmupS: { type: 'number', minimum: 0, maximum: 600 },
        startRate: { type: 'number', exclusiveMinimum: 0, maximum: 10_000_000 },
        maxRate: { type: 'number', exclusiveMinimum: 0, maximum: 10_000_000 },
        minRate: { type: 'number', exclusiveMinimum: 0, maximum: 10_000_000 },
        tolerance: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
        maxProbes: { type: 'integer', minimum: 2, maximum: 100 },
      },
    },
    drift: {
      type: 'object',
      additionalProperties: false,
      required: ['limit'],
      properties: { control: { type: 'string', minLength: 1 }, limit: { type: 'number', exclusiveMinimum: 0, maximum: 10 } },
    },
    verify: {
      type: 'object',
      additionalProperties: false,
      required: ['headers'],
      properties: { headers: { type: 'array', uniqueItems: true, items: { type: 'string', pattern: '^[A-Za-z0-9-]+$' } } },
    },
    targets: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['variant', 'reference', 'metric'],
        properties: {
          variant: { type: 'string', minLength: 1 },
          reference: { type: 'string', minLength: 1 },
          metric: { enum: ['throughput', 'p99', 'cpu'] },
          min: { type: 'number', exclusiveMinimum: 0 },
          max: { type: 'number', exclusiveMinimum: 0 },
          source: { type: 'string' },
        },
        oneOf: [{ required: ['min'] }, { required: ['max'] }],
      },
    },
    load: {
      type: 'object',
      additionalProperties: false,
      required: ['connections'],
      properties: {
        connections: { type: 'integer', minimum: 1, maximum: 10_000 },
        pipelining: { type: 'integer', minimum: 1, maximum: 1_000, default: 1 },
        durationS: { type: 'number', exclusiveMinimum: 0, maximum: 3_600 },
        amount: { type: 'integer', minimum: 1 },
        rate: { type: 'number', exclusiveMinimum: 0 },
        rateOfMax: {
          type: 'object',
          additionalProperties: false,
          required: ['fraction'],
          properties: { fraction: { type: 'number', exclusiveMinimum: 0, maximum: 1 }, variant: { type: 'string', minLength: 1 } },
        },
        timeoutS: { type: 'number', exclusiveMinimum: 0, maximum: 600 },
        engine: { enum: ['auto', 'autocannon', 'wrk'], default: 'auto' },
      },
      oneOf: [{ required: ['durationS'] }, { required: ['amount'] }],
    },
    warmupS: { type: 'number', minimum: 0, maximum: 600, default: 2 },
    repetitions: { type: 'integer', minimum: 1, maximum: 1_000, default: 5 },
    seed: { type: 'integer', minimum: 0, maximum: 4_294_967_295, default: 1 },
  },
  oneOf: [{ required: ['routes'] }, { required: ['routeTable'] }],
} as const;

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const validateSchema = ajv.compile(scenarioSchema);

/** oneOf groups whose branches are just `{ required: [key] }`: reported as one "exactly one of" message. */
const EXCLUSIVE_KEYS: Record<string, string[]> = {
  '#/oneOf': ['routes', 'routeTable'],
  '#/properties/load/oneOf': ['durationS', 'amount'],
};
const VARIANT_LIST_PATH = /^\/matrix\/(router|pool|metrics|upstream|server)$/;

function formatError(e: ErrorObject, errors: ErrorObject[]): string | null {
  const path = e.instancePath === '' ? '/' : e.instancePath;
  const params = e.params as Record<string, unknown>;
  for (const [schemaPath, keys] of Object.entries(EXCLUSIVE_KEYS)) {
    if (e.schemaPath === schemaPath) return `${path}: must have exactly one of ${keys.map((k) => `"${k}"`).join(', ')}`;
    if (e.schemaPath.startsWith(`${schemaPath}/`) && e.keyword === 'required') return null;
  }
  if (VARIANT_LIST_PATH.test(e.instancePath) && e.schemaPath.endsWith('/oneOf')) {
    // an array with a bad item: the item's own error says it all
    if (errors.some((o) => o.instancePath.startsWith(`${e.instancePath}/`))) return null;
    return `${path}: must be a list of variant names or "all"`;
  }
  if (VARIANT_LIST_PATH.test(e.instancePath) && /\/oneOf\/\d+\/(type|const)$/.test(e.schemaPath)) return null;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${path}: must NOT have additional property "${String(params.additionalProperty)}"`;
    case 'required':
      return `${path}: must have required property "${String(params.missingProperty)}"`;
    case 'enum':
      return `${path}: must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `${path}: must be ${JSON.stringify(params.allowedValue)}`;
    case 'oneOf':
      // The branch errors say what is wrong; the wrapper adds only "must match exactly one schema in oneOf",
      // which is useful on its own only when no branch said anything at this path or below.
      if (errors.some((o) => o !== e && o.keyword !== 'oneOf' && o.instancePath.startsWith(e.instancePath))) {
        if (params.passingSchemas !== null) return `${path}: must match exactly one schema in oneOf`;
        return null;
      }
      return `${path}: ${e.message}`;
    default:
      return `${path}: ${e.message}`;
  }
}

/**
 * oneOf over object shapes makes ajv report every branch's complaints; keep the ones of the branch the input
 * was evidently aiming at (the one whose required keys are present), so `{ "weight": 0, "method": "GET", … }`
 * yields "/traffic/0/weight: must be > 0" and not also "must have required property fromRoutes".
 */
function relevant(errors: ErrorObject[], data: unknown): ErrorObject[] {
  return errors.filter((e) => {
    if (e.keyword === 'required' || e.keyword === 'additionalProperties' || e.keyword === 'const') {
      const target = resolvePointer(data, e.instancePath);
      if (target === null || typeof target !== 'object') return true;
      const isTrafficItem = /^\/traffic\/\d+$/.test(e.instancePath);
      if (isTrafficItem) {
        const aimsAtRoutes = Object.prototype.hasOwnProperty.call(target, 'fromRoutes');
        const branchIsRoutes = e.schemaPath.includes('/oneOf/1/');
        if (aimsAtRoutes !== branchIsRoutes) return false;
      }
    }
    return true;
  });
}

function resolvePointer(data: unknown, pointer: string): unknown {
  if (pointer === '') return data;
  let cur: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

export type ScenarioValidation = { ok: true; scenario: Scenario } | { ok: false; errors: string[] };

/** Validates parsed JSON; applies defaults to a copy. Never throws. */
export function validateScenario(raw: unknown): ScenarioValidation {
  let copy: unknown;
  try {
    copy = structuredClone(raw);
  } catch {
    return { ok: false, errors: ['/: must be plain JSON data'] };
  }
  if (copy === null || typeof copy !== 'object' || Array.isArray(copy)) return { ok: false, errors: ['/: must be object'] };
  if (!validateSchema(copy)) {
    const all = validateSchema.errors ?? [];
    const kept = relevant(all, copy);
    const out: string[] = [];
    for (const e of kept) {
      const msg = formatError(e, kept);
      if (msg !== null && !out.includes(msg)) out.push(msg);
    }
    return { ok: false, errors: out };
  }
  const s = copy as Scenario;
  const errors: string[] = [];
  if (s.mode === 'direct' && s.routeTable !== undefined && s.routeResponse === undefined) {
    errors.push('/routeResponse: is required in direct mode with a routeTable');
  }
  if (s.mode === 'direct' && s.routes !== undefined) {
    s.routes.forEach((r, i) => {
      if (r.response === undefined) errors.push(`/routes/${i}: must have "response" in direct mode`);
    });
  }
  (s.matrix.pluginSet ?? []).forEach((set, i) => {
    if (s.pluginSets?.[set] === undefined) errors.push(`/matrix/pluginSet/${i}: no plugin set "${set}" in /pluginSets`);
  });
  (s.matrix.accessLog ?? []).forEach((name, i) => {
    if (s.accessLogs?.[name] === undefined) errors.push(`/matrix/accessLog/${i}: no access log "${name}" in /accessLogs`);
  });
  (s.matrix.routeOptions ?? []).forEach((name, i) => {
    if (s.routeOptionSets?.[name] === undefined) errors.push(`/matrix/routeOptions/${i}: no route options "${name}" in /routeOptionSets`);
  });
  (s.matrix.routeSet ?? []).forEach((name, i) => {
    if (s.routeSets?.[name] === undefined) errors.push(`/matrix/routeSet/${i}: no route set "${name}" in /routeSets`);
  });
  if (s.peers !== undefined && s.mode !== 'proxy') errors.push('/peers: peers proxy, so they need "mode": "proxy"');
  if (s.load.rate !== undefined && s.load.rateOfMax !== undefined) errors.push('/load: must have at most one of "rate", "rateOfMax"');
  if (s.upstreamStub === undefined) s.upstreamStub = { bodyBytes: 256, delayMs: 0 };
  return errors.length > 0 ? { ok: false, errors } : { ok: true, scenario: s };
}

export class ScenarioError extends Error {
  constructor(
    readonly source: string,
    readonly errors: string[],
  ) {
    super(`invalid scenario ${source}:\n  ${errors.join('\n  ')}`);
    this.name = 'ScenarioError';
  }
}

export function parseScenario(raw: unknown, source = 'scenario'): Scenario {
  const r = validateScenario(raw);
  if (!r.ok) throw new ScenarioError(source, r.errors);
  return r.scenario;
}
