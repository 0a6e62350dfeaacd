import type { Scenario, StaticResponseSpec, TrafficRequest } from '../../scenarios/schema.js';
import { createRng } from './stats.js';

/** A route of the resolved route set (inline routes, or a route table with the scenario's routeResponse). */
export interface ResolvedRoute {
  path: string;
  methods: string[];
  name?: string;
  /** undefined in proxy mode: the route forwards to the upstream stub */
  response?: StaticResponseSpec;
}

/** One concrete request of the load generator's cycle. */
export interface LoadRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

/** What the baseline server answers for a concrete request (the same bytes the gateway's route would send). */
export type Answer = { kind: 'static'; status: number; headers: Record<string, string>; body: string } | { kind: 'proxy' };
export type StaticAnswer = Extract<Answer, { kind: 'static' }>;

/** The gateway's answer to a request no route matches; the baseline mimics it. */
export const NOT_FOUND_ANSWER: Answer = {
  kind: 'static',
  status: 404,
  headers: { 'content-type': 'application/json; charset=utf-8' },
  // byte-identical to core/base/errors.ts's errorBody(404)
  body: '{"error":"Not Found","statusCode":404}',
};

const HEX = '0123456789abcdef';
const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';

function token(rng: () => number, alphabet: string, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) s += alphabet[(rng() * alphabet.length) | 0];
  return s;
}

/**
 * `{name}` → 8 random [a-z0-9]; `{name:int}` → 1..1e6 (`{name:int1000}` → 1..1000); `{name:hex}` → 16 hex;
 * `{name:uuid}` → a v4-shaped uuid.
 */
export function fillTemplate(template: string, rng: () => number): string {
  return template.replace(/\{([A-Za-z_][A-Za-z0-9_]*)(?::(int\d*|hex|uuid|word))?\}/g, (_m, _name: string, kind?: string) => {
    if (kind !== undefined && kind.startsWith('int')) return String(1 + ((rng() * (kind === 'int' ? 1_000_000 : Number(kind.slice(3)))) | 0));
    switch (kind) {
      case 'hex':
        return token(rng, HEX, 16);
      case 'uuid':
        return `${token(rng, HEX, 8)}-${token(rng, HEX, 4)}-4${token(rng, HEX, 3)}-a${token(rng, HEX, 3)}-${token(rng, HEX, 12)}`;
      default:
        return token(rng, ALNUM, 8);
    }
  });
}

/** Route pattern → request template: `:id(\d+)` → `{id:int}`, `:name` → `{name}`, trailing `*` → `{rest}`. */
export function routeToTemplate(path: string): string {
  return path
    .replace(/:([A-Za-z_][A-Za-z0-9_]*)(\([^)]*\))?/g, (_m, name: string, re?: string) =>
      re !== undefined && /\\d|\[0-9\]/.test(re) ? `{${name}:int}` : `{${name}}`,
    )
    .replace(/\*$/, '{rest}');
}

interface CompiledRoute {
  route: ResolvedRoute;
  isStatic: boolean;
  regex: RegExp;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Pattern → anchored regex, following core/router.ts's syntax (params end at the next literal character). */
export function compilePattern(path: string): RegExp {
  let re = '';
  let i = 0;
  while (i < path.length) {
    const ch = path[i]!;
    if (ch === ':') {
      const m = /^:([A-Za-z_][A-Za-z0-9_]*)(\(((?:[^()]|\([^()]*\))*)\))?/.exec(path.slice(i));
      if (m === null) throw new Error(`bad pattern ${path}`);
      re += m[3] !== undefined ? `(${m[3]})` : '([^/]+?)';
      i += m[0].length;
    } else if (ch === '*' && i === path.length - 1) {
      re += '(.*)';
      i++;
    } else {
      re += escapeRe(ch);
      i++;
    }
  }
  return new RegExp(`^${re}$`);
}

/**
 * Resolves which route a concrete request hits, static routes first (as every router variant does), so the
 * baseline can answer with the same bytes. Runs once per distinct request at setup, never on the hot path.
 */
export class ReferenceMatcher {
  private readonly compiled: CompiledRoute[];
  constructor(routes: ResolvedRoute[]) {
    this.compiled = routes.map((route) => ({
      route,
      isStatic: !/[:*]/.test(route.path),
      regex: compilePattern(route.path),
    }));
  }

  match(method: string, url: string): ResolvedRoute | null {
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const methodOk = (r: ResolvedRoute) => r.methods.includes(method) || r.methods.includes('*') || (method === 'HEAD' && r.methods.includes('GET'));
    for (const c of this.compiled) if (c.isStatic && c.route.path === path && methodOk(c.route)) return c.route;
    for (const c of this.compiled) if (!c.isStatic && methodOk(c.route) && c.regex.test(path)) return c.route;
    return null;
  }
}

/**
 * A static response's exact bytes, by the gateway's rule (core/data/runtime.ts encodeStaticBody): a string as-is
 * (text/plain unless set), anything else as JSON; a missing body is the empty string the runner configures.
 */
export function staticAnswer(spec: StaticResponseSpec): StaticAnswer {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.headers ?? {})) headers[k.toLowerCase()] = v;
  const value = spec.body === undefined ? '' : spec.body;
  let body: string;
  if (typeof value === 'string') {
    body = value;
    if (headers['content-type'] === undefined && body.length > 0) headers['content-type'] = 'text/plain; charset=utf-8';
  } else {
    body = JSON.stringify(value);
    if (headers['content-type'] === undefined) headers['content-type'] = 'application/json; charset=utf-8';
  }
  return { kind: 'static', status: spec.status, headers, body };
}

/** Expands the mix into concrete request templates with absolute weights. */
export function expandMix(scenario: Scenario, routes: ResolvedRoute[]): TrafficRequest[] {
  const out: TrafficRequest[] = [];
  for (const entry of scenario.traffic) {
    if ('fromRoutes' in entry) {
      const share = entry.weight / routes.length;
      for (const r of routes) {
        const method = r.methods.includes('GET') || r.methods.includes('*') ? 'GET' : r.methods[0]!;
        out.push({ weight: share, method, path: routeToTemplate(r.path) });
      }
    } else {
      out.push(entry);
    }
  }
  return out;
}

/**
 * The deterministic request cycle the load generator sends: `count` requests whose proportions follow the
 * weights exactly (largest remainder), each template filled freshly, then shuffled with the scenario seed.
 */
export function buildRequests(mix: TrafficRequest[], count: number, seed: number): LoadRequest[] {
  const rng = createRng(seed);
  const total = mix.reduce((s, m) => s + m.weight, 0);
  const exact = mix.map((m) => (m.weight / total) * count);
  const counts = exact.map(Math.floor);
  let missing = count - counts.reduce((s, c) => s + c, 0);
  const order = exact.map((e, i) => ({ i, frac: e - Math.floor(e) })).sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (let k = 0; missing > 0; k++, missing--) counts[order[k % order.length]!.i]!++;

  const list: LoadRequest[] = [];
  mix.forEach((m, i) => {
    for (let n = 0; n < counts[i]!; n++) {
      const req: LoadRequest = { method: m.method, path: fillTemplate(m.path, rng) };
      const headers: Record<string, string> = {};
      // header values are templates too (a Host per request: `h{h:int1000}.example.com`)
      for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = v.includes('{') ? fillTemplate(v, rng) : v;
      if (m.body !== undefined) {
        // templates fill inside bodies too (each request gets its own values)
        req.body = fillTemplate(typeof m.body === 'string' ? m.body : JSON.stringify(m.body), rng);
        if (typeof m.body !== 'string' && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
          headers['content-type'] = 'application/json';
        }
      }
      if (Object.keys(headers).length > 0) req.headers = headers;
      list.push(req);
    }
  });
  for (let i = list.length - 1; i > 0; i--) {
    const j = (rng() * (i + 1)) | 0;
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}

/** Map "METHOD url" → answer for every distinct request of the cycle (what the baseline server serves). */
export function buildAnswerTable(requests: LoadRequest[], routes: ResolvedRoute[]): Record<string, Answer> {
  const matcher = new ReferenceMatcher(routes);
  const table: Record<string, Answer> = {};
  for (const r of requests) {
    const key = `${r.method} ${r.path}`;
    if (table[key] !== undefined) continue;
    const route = matcher.match(r.method, r.path);
    table[key] = route === null ? NOT_FOUND_ANSWER : route.response === undefined ? { kind: 'proxy' } : staticAnswer(route.response);
  }
  return table;
}
