/**
 * Micro-benchmark of the router variants (and the reference adapters) on the GitHub REST API route table.
 *
 *   npm run build && node dist/scripts/bench/router.js [--quick] [--variants=hybrid,radix,find-my-way,find-my-way-direct]
 *
 * Every measured call builds a FRESH request path by runtime string concatenation: a reused constant string
 * carries a cached hash, which flatters Map-based routers. The fresh string is flattened (as a parser-produced
 * req.url is flat) inside the same builder, and a baseline loop that only builds + flattens the string is
 * measured too; its cost is subtracted to give the router's own ns/op ("net").
 * Writes reports/micro/router/<ISO timestamp>/{results.json,report.md} and copies both to reports/micro/router/latest/.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Benchmark from 'benchmark';
import FindMyWay from 'find-my-way';
import { environment, writeReport } from './harness.js';
import type { Router } from '../../core/router.js';
import { DEFAULT_ROUTER, referenceRouters, routerVariants } from '../../variants/router/index.js';

export interface RouterBenchOptions {
  /** short runs to check the harness works (numbers are not meant to be quoted) */
  quick?: boolean;
  /** write results.json/report.md (default true); the report root defaults to reports/micro under the cwd */
  write?: boolean;
  outDir?: string;
  /** only these router names (default: all variants and adapters, plus find-my-way called directly) */
  variants?: string[];
}

export interface RouterBenchResult {
  json: unknown;
  markdown: string;
  dir?: string;
}

interface RouteSpec {
  method: string;
  path: string;
}

const OPS_PER_CALL = 1000;

/** Value pools the builders index with (i & 7), so params vary from call to call. */
const POOLS = {
  S: Array<string>(8).fill('repositories'),
  U: ['octocat', 'torvalds', 'gaearon', 'sindresorhus', 'tj', 'mcollina', 'yyx990803', 'addyosmani'],
  O: ['nodejs', 'fastify', 'honojs', 'vercel', 'denoland', 'microsoft', 'facebook', 'google'],
  R: ['node', 'fastify', 'hono', 'next.js', 'deno', 'TypeScript', 'react', 'zx'],
  N: ['1', '42', '1337', '7', '99', '123456', '8', '31415'],
  F: ['src/index.ts', 'lib/router.js', 'README.md', 'a/b/c/d.json', 'docs/api.md', 'test/x.test.ts', 'package.json', 'src/a/b.ts'],
  W: ['nope', 'favicon.ico', 'wp-admin', 'robots', 'x', 'healthz2', 'admin', 'api'],
} as const;

interface BenchCase {
  name: string;
  method: string;
  /** JS expression building the path from the POOLS arrays and the loop index i */
  build: string;
  /** the route pattern expected to match, or null for a miss */
  expect: string | null;
}

const CASES: BenchCase[] = [
  { name: 'static', method: 'GET', build: `'/search/' + S[i & 7]`, expect: '/search/repositories' },
  { name: '1 param', method: 'GET', build: `'/users/' + U[i & 7]`, expect: '/users/:user' },
  {
    name: '3 params',
    method: 'GET',
    build: `'/repos/' + O[i & 7] + '/' + R[i & 7] + '/issues/' + N[i & 7] + '/comments'`,
    expect: '/repos/:owner/:repo/issues/:number/comments',
  },
  {
    name: 'wildcard',
    method: 'GET',
    build: `'/repos/' + O[i & 7] + '/' + R[i & 7] + '/contents/' + F[i & 7]`,
    expect: '/repos/:owner/:repo/contents/*',
  },
  {
    name: 'deep miss',
    method: 'GET',
    build: `'/repos/' + O[i & 7] + '/' + R[i & 7] + '/issues/' + N[i & 7] + '/nope'`,
    expect: null,
  },
  { name: 'shallow miss', method: 'GET', build: `'/' + W[i & 7]`, expect: null },
];

interface Finder {
  find(method: string, path: string): unknown;
}

type Loop = (n: number) => number;

let loopSerial = 0;

/**
 * The measured loop, compiled from a fresh source per (router, case): closures from one source share V8 type
 * feedback, so a shared loop would turn the `find` call site megamorphic and penalise whichever router runs last.
 * `p.indexOf('\0')` flattens the cons string the concatenation made (parser-produced URLs are flat); the
 * baseline runs the same builder without a router.
 */
function compileLoop(label: string, c: BenchCase, finder: Finder | null): Loop {
  const body = finder === null ? 'acc += p.length;' : `if (finder.find(${JSON.stringify(c.method)}, p) !== null) acc++;`;
  const source = `// ${label} / ${c.name} #${loopSerial++}
    const { S, U, O, R, N, F, W } = pools;
    return function run(n) {
      let acc = 0;
      for (let i = 0; i < n; i++) {
        const p = ${c.build};
        acc += p.indexOf('\\u0000');
        ${body}
      }
      return acc;
    };`;
  return new Function('pools', 'finder', source)(POOLS, finder) as Loop;
}

interface Timing {
  nsPerOp: number;
  marginNs: number;
  rmePct: number;
  samples: number;
}

/** Sum of every loop result, reported in results.json so no loop's work is dead code. */
let checksum = 0;

function timeLoop(name: string, loop: Loop, quick: boolean): Timing {
  const bench = new Benchmark(name, () => {
    checksum += loop(OPS_PER_CALL);
  }, quick ? { maxTime: 0.25, minSamples: 5 } : { maxTime: 3, minSamples: 40 });
  bench.run({ async: false });
  if (bench.error) throw bench.error as Error;
  const nsPerOp = (bench.stats.mean * 1e9) / OPS_PER_CALL;
  return { nsPerOp, marginNs: (nsPerOp * bench.stats.rme) / 100, rmePct: bench.stats.rme, samples: bench.stats.sample.length };
}

function loadTable(): RouteSpec[] {
  // works from the sources (tsx/vitest) and from dist/ (the JSON is not copied by tsc)
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const candidate of [join(here, '../../scenarios/routes/github-api.json'), join(here, '../../../scenarios/routes/github-api.json')]) {
    try {
      return JSON.parse(readFileSync(candidate, 'utf8')) as RouteSpec[];
    } catch {
      // try the next location
    }
  }
  return JSON.parse(readFileSync(resolve('scenarios/routes/github-api.json'), 'utf8')) as RouteSpec[];
}

/** find-my-way called directly (no adapter): shows what the shared Router interface costs the reference. */
function directFindMyWay(table: RouteSpec[]): Finder {
  const fmw = FindMyWay({ maxParamLength: 1_000_000 });
  for (const r of table) fmw.on(r.method as 'GET', r.path, () => undefined, r.path);
  return { find: (method, path) => fmw.find(method as 'GET', path) };
}

const fmt = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(1));

interface Row {
  variant: string;
  reference: boolean;
  cases: Record<string, { raw: Timing; netNs: number }>;
}

export async function runRouterBench(opts: RouterBenchOptions = {}): Promise<RouterBenchResult> {
  const quick = opts.quick === true;
  const table = loadTable();

  // 1. correctness first: a fast wrong answer is worthless
  const finders: [string, Finder, boolean][] = [];
  const wanted = (name: string) => opts.variants === undefined || opts.variants.includes(name);
  for (const [name, factory] of Object.entries(routerVariants)) {
    if (!wanted(name)) continue;
    const router: Router<string> = factory<string>();
    for (const r of table) router.add(r.method, r.path, r.path);
    for (const c of CASES) {
      const sample = new Function('pools', `const { S, U, O, R, N, F, W } = pools; const i = 3; return ${c.build};`)(POOLS) as string;
      const got = router.find(c.method, sample)?.value ?? null;
      if (got !== c.expect) throw new Error(`router ${name}: ${c.method} ${sample} gave ${String(got)}, expected ${String(c.expect)}`);
    }
    finders.push([name, router, referenceRouters.includes(name)]);
  }
  if (wanted('find-my-way-direct')) finders.push(['find-my-way (direct, no adapter)', directFindMyWay(table), true]);

  // 2. baseline: building (and flattening) the path alone
  const baseline: Record<string, Timing> = {};
  for (const c of CASES) {
    const loop = compileLoop('baseline', c, null);
    loop(20_000);
    baseline[c.name] = timeLoop(`baseline ${c.name}`, loop, quick);
  }

  // 3. every router × case
  const rows: Row[] = [];
  for (const [name, finder, reference] of finders) {
    const row: Row = { variant: name, reference, cases: {} };
    for (const c of CASES) {
      const loop = compileLoop(name, c, finder);
      loop(20_000); // warm-up: let the JIT optimise this loop + the router's find for this shape
      const raw = timeLoop(`${name} ${c.name}`, loop, quick);
      row.cases[c.name] = { raw, netNs: raw.nsPerOp - baseline[c.name].nsPerOp };
    }
    rows.push(row);
    process.stderr.write(`router ${name}: ${CASES.map((c) => `${c.name} ${fmt(row.cases[c.name].netNs)}`).join(', ')} ns/op net\n`);
  }

  const fmwRow = rows.find((r) => r.variant === 'find-my-way');
  const ratios: Record<string, Record<string, number>> = {};
  for (const v of ['hybrid', 'radix']) {
    const row = rows.find((r) => r.variant === v);
    if (row === undefined || fmwRow === undefined) continue;
    ratios[v] = {};
    for (const c of CASES) ratios[v][c.name] = row.cases[c.name].netNs / fmwRow.cases[c.name].netNs;
  }

  const json = {
    benchmark: 'router',
    startedAt: new Date().toISOString(),
    environment: environment(quick),
    method: {
      table: `scenarios/routes/github-api.json (${table.length} routes)`,
      timing: `benchmark.js, ${OPS_PER_CALL} finds per call, ns/op = mean call time / ${OPS_PER_CALL}, margin = 95% confidence (rme)`,
      path: 'fresh path per find, built by runtime concatenation and flattened; params vary over 8 values',
      net: 'raw ns/op minus the baseline loop that only builds + flattens the same path',
      interface: 'variants and adapters through the shared Router interface (adapters add method fallback and a result object); "find-my-way (direct)" calls find-my-way.find itself',
    },
    cases: CASES.map((c) => ({ name: c.name, method: c.method, build: c.build, expect: c.expect })),
    defaultVariant: DEFAULT_ROUTER,
    baseline,
    results: rows,
    ratioToFindMyWay: ratios,
    checksum,
  };

  const header = `| variant | ${CASES.map((c) => c.name).join(' | ')} |`;
  const sep = `|---|${CASES.map(() => '---:').join('|')}|`;
  const lines = [
    '# Router micro-benchmark',
    '',
    `Node ${process.version}, ${String(json.environment.cpu)} × ${cpus().length}${quick ? ' — **quick run, not for quoting**' : ''}.`,
    `Table: ${json.method.table}. Default variant: \`${DEFAULT_ROUTER}\`. Reference adapters: ${referenceRouters.join(', ')}.`,
    '',
    '## Net ns per find (router only; baseline subtracted), ± 95% margin of the raw measurement',
    '',
    header,
    sep,
    ...rows.map(
      (r) => `| ${r.variant}${r.reference ? ' *(ref)*' : ''} | ${CASES.map((c) => `${fmt(r.cases[c.name].netNs)} ± ${fmt(r.cases[c.name].raw.marginNs)}`).join(' | ')} |`,
    ),
    `| *baseline (build path only)* | ${CASES.map((c) => `${fmt(baseline[c.name].nsPerOp)} ± ${fmt(baseline[c.name].marginNs)}`).join(' | ')} |`,
    '',
    '## Ratio to find-my-way (net; < 1 is faster)',
    '',
    header,
    sep,
    ...Object.entries(ratios).map(([v, r]) => `| ${v} | ${CASES.map((c) => r[c.name].toFixed(2)).join(' | ')} |`),
    '',
    '## Cases',
    '',
    ...CASES.map((c) => `- **${c.name}**: \`${c.method} ${c.build}\` → ${c.expect === null ? 'no match' : `\`${c.expect}\``}`),
    '',
    `Timing: ${json.method.timing}. Path: ${json.method.path}. Net: ${json.method.net}. Interface: ${json.method.interface}.`,
    '',
  ];
  const markdown = lines.join('\n');
  const dir = opts.write === false ? undefined : writeReport('router', json, markdown, opts);
  return { json, markdown, dir };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const only = process.argv.find((a) => a.startsWith('--variants='));
  const result = await runRouterBench({
    quick: process.argv.includes('--quick'),
    variants: only === undefined ? undefined : only.slice('--variants='.length).split(','),
  });
  process.stdout.write(result.markdown);
  if (result.dir !== undefined) process.stdout.write(`\nwritten to ${result.dir}\n`);
}
