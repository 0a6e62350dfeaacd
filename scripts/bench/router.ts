/**
 * Micro-benchmark of the router variants (and the reference adapters) on the GitHub REST API route table.
 *
 *   npm run build && node dist/scripts/bench/router.js [--quick] [--publish] [--variants=compiled,hybrid,find-my-way-compiled,find-my-way-direct,find-my-way-compiled-direct,large]
 *
 * Every measured call builds a FRESH request path by runtime string concatenation: a reused constant string
 * carries a cached hash, which flatters Map-based routers. The fresh string is flattened (as a parser-produced
 * req.url is flat) inside the same builder, and a baseline loop that only builds + flattens the string is
 * measured too; its cost is subtracted to give the router's own ns/op ("net").
 * Writes {results.json,report.md} to the git-ignored reports/runs/<timestamp>-micro-router/; with --publish to the
 * committed reports/micro/router/<timestamp>/ and reports/micro/router/latest/ (harness.ts, writeMicroReport).
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Benchmark from 'benchmark';
import FindMyWay from 'find-my-way';
import type { Router } from '../../core/contracts/router.js';
import { CODE_BUDGET_CHARS, compiledSources, createRouter as createCompiledRouter } from '../../variants/router/compiled/index.js';
import { DEFAULT_ROUTER, referenceRouters, routerVariants } from '../../variants/router/index.js';
import { environment, writeReport } from './harness.js';

export interface RouterBenchOptions {
  /** short runs to check the harness works (numbers are not meant to be quoted) */
  quick?: boolean;
  /** write results.json/report.md (default true): to reports/runs/, or with publish to reports/micro/ (harness.ts) */
  write?: boolean;
  outDir?: string;
  publish?: boolean;
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

/** Interleaved rounds per cell (full runs); each round times a cell for MAX_TIME_S. */
const ROUNDS = 3;
const MAX_TIME_S = 1;

function timeLoop(name: string, loop: Loop, quick: boolean): Timing {
  const bench = new Benchmark(
    name,
    () => {
      checksum += loop(OPS_PER_CALL);
    },
    quick ? { maxTime: 0.25, minSamples: 5 } : { maxTime: MAX_TIME_S, minSamples: 20 },
  );
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
function directFindMyWay(table: RouteSpec[], compile = false): Finder {
  const fmw = FindMyWay({ maxParamLength: 1_000_000 });
  for (const r of table) fmw.on(r.method as 'GET', r.path, () => undefined, r.path);
  if (compile) fmw.compile();
  return { find: (method, path) => fmw.find(method as 'GET', path) };
}

/** Own variants whose ratios to the references are reported, and the references they are divided by. */
const RATIO_VARIANTS = ['compiled', 'hybrid', 'radix'];
const RATIO_REFERENCES = ['find-my-way-compiled', 'find-my-way'];

/**
 * Large-table cost (issue 15): the GitHub table under 9 prefixes (/api/v0 … /api/v8), cut to 2,000 routes, next to
 * the 237-route table. Traffic is spread evenly over every route of the table (4,096 instantiated paths, fresh
 * strings), the case where generated code per route stops fitting the CPU caches. Reports the generated code size,
 * the time to compile it, and ns/op (raw: path building included, the same for every row).
 */
const FORCED = 'compiled (code budget off)';
const LARGE_VARIANTS: Record<string, (<T>() => Router<T>) | undefined> = {
  compiled: routerVariants.compiled,
  // the generated code even where it is over budget: what the budget protects against
  [FORCED]: <T>() => createCompiledRouter<T>({ codeBudgetChars: Infinity }),
  'find-my-way-compiled': routerVariants['find-my-way-compiled'],
  hybrid: routerVariants.hybrid,
};

interface LargeRow {
  variant: string;
  routes: number;
  addMs: number;
  compileMs: number;
  codeBytes: number | null;
  spreadNs: Timing;
}

function largeTable(table: RouteSpec[], size: number): RouteSpec[] {
  const out: RouteSpec[] = [];
  for (let k = 0; out.length < size; k++) for (const r of table) if (out.length < size) out.push({ method: r.method, path: `/api/v${k}${r.path}` });
  return out;
}

/** Instantiated request paths over the whole table, split in two halves so each find gets a fresh concatenation. */
function spreadTraffic(table: RouteSpec[]): { heads: string[]; tails: string[]; methods: string[]; expect: string[] } {
  const heads: string[] = [];
  const tails: string[] = [];
  const methods: string[] = [];
  const expect: string[] = [];
  for (let i = 0; i < 4096; i++) {
    const r = table[(i * 7919) % table.length]!;
    const path = r.path.replace(/:\w+/g, (m) => `${m.slice(1)}${i & 15}`).replace('*', 'src/a.ts');
    const cut = path.length >> 1;
    heads.push(path.slice(0, cut));
    tails.push(path.slice(cut));
    methods.push(r.method);
    expect.push(r.path);
  }
  return { heads, tails, methods, expect };
}

/** Generated-code size of a router, when it exposes it: own `compiled` sources, find-my-way's raw find matchers. */
function codeSize(name: string, router: Router<string>): number | null {
  if (name === 'compiled' || name === FORCED) {
    const src = compiledSources(router as Router<unknown>);
    // tables over the code budget run as a tree walk: their generated source is not code that runs
    return src === undefined ? null : Object.values(src).reduce((n, s) => n + (s.interpreted ? 0 : s.source.length), 0);
  }
  if (name === 'find-my-way-compiled') {
    type Compiled = { find: { source?: string } } | null;
    type Fmw = { _compiledGET: Compiled; _compiledTrees: Record<string, Compiled> };
    const r = router as unknown as { exact: Fmw; any: Fmw };
    let n = 0;
    for (const fmw of [r.exact, r.any]) for (const c of [fmw._compiledGET, ...Object.values(fmw._compiledTrees)]) n += c?.find.source?.length ?? 0;
    return n;
  }
  return null;
}

function runLarge(base: RouteSpec[], quick: boolean): LargeRow[] {
  const rows: LargeRow[] = [];
  for (const size of [base.length, 2000]) {
    const table = size === base.length ? base : largeTable(base, size);
    const traffic = spreadTraffic(table);
    const methods = [...new Set(table.map((r) => r.method))];
    for (const [name, factory] of Object.entries(LARGE_VARIANTS)) {
      if (factory === undefined) continue;
      const router = factory<string>();
      const t0 = performance.now();
      for (const r of table) router.add(r.method, r.path, r.path);
      const t1 = performance.now();
      for (const m of methods) router.find(m, '/'); // compiles every method table (lazy variants)
      const t2 = performance.now();
      for (let i = 0; i < 4096; i++) {
        const got = router.find(traffic.methods[i]!, traffic.heads[i]! + traffic.tails[i]!)?.value ?? null;
        if (got !== traffic.expect[i])
          throw new Error(`large table, router ${name}: ${traffic.methods[i]!} ${traffic.heads[i]! + traffic.tails[i]!} gave ${String(got)}`);
      }
      const loop = new Function(
        'router',
        't',
        `// large ${name} ${size} #${loopSerial++}
        const { heads, tails, methods } = t;
        return function run(n) {
          let acc = 0;
          for (let i = 0; i < n; i++) {
            const j = i & 4095;
            const p = heads[j] + tails[j];
            acc += p.indexOf('\\u0000');
            if (router.find(methods[j], p) !== null) acc++;
          }
          return acc;
        };`,
      )(router, traffic) as Loop;
      // big generated functions reach optimised code late (every branch needs feedback first): warm up longer
      for (let k = 0; k < (quick ? 1 : 5); k++) loop(100_000);
      rows.push({
        variant: name,
        routes: size,
        addMs: t1 - t0,
        compileMs: t2 - t1,
        codeBytes: codeSize(name, router),
        spreadNs: timeLoop(`large ${name} ${size}`, loop, quick),
      });
      const last = rows[rows.length - 1]!;
      process.stderr.write(
        `router ${name}, ${size} routes: ${fmt(last.spreadNs.nsPerOp)} ns/op spread, compile ${last.compileMs.toFixed(1)} ms, code ${String(last.codeBytes)} B\n`,
      );
    }
  }
  return rows;
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
  if (wanted('find-my-way-compiled-direct')) finders.push(['find-my-way compiled (direct, no adapter)', directFindMyWay(table, true), true]);

  // 2 + 3. baseline (building and flattening the path alone) and every router × case, INTERLEAVED: ROUNDS rounds,
  // each timing every case for the baseline and every router back to back, so a load change on a shared machine
  // hits all rows of a round alike; a cell is the median of its rounds.
  const rounds = quick ? 1 : ROUNDS;
  const baselineLoops = CASES.map((c) => compileLoop('baseline', c, null));
  const routerLoops = finders.map(([name, finder]) => CASES.map((c) => compileLoop(name, c, finder)));
  for (const l of baselineLoops) l(20_000);
  for (const ls of routerLoops) for (const l of ls) l(20_000); // warm-up: let the JIT optimise loop + find
  const baselineSamples: Timing[][] = CASES.map(() => []);
  const routerSamples: Timing[][][] = finders.map(() => CASES.map(() => []));
  for (let round = 0; round < rounds; round++) {
    CASES.forEach((c, ci) => {
      baselineSamples[ci]!.push(timeLoop(`baseline ${c.name}`, baselineLoops[ci]!, quick));
      finders.forEach(([name], fi) => routerSamples[fi]![ci]!.push(timeLoop(`${name} ${c.name}`, routerLoops[fi]![ci]!, quick)));
    });
    process.stderr.write(`round ${round + 1}/${rounds} done\n`);
  }
  const median = (xs: Timing[]): Timing => [...xs].sort((a, b) => a.nsPerOp - b.nsPerOp)[xs.length >> 1]!;
  const baseline: Record<string, Timing> = {};
  CASES.forEach((c, ci) => (baseline[c.name] = median(baselineSamples[ci]!)));
  const rows: Row[] = finders.map(([name, , reference], fi) => {
    const row: Row = { variant: name, reference, cases: {} };
    CASES.forEach((c, ci) => {
      const raw = median(routerSamples[fi]![ci]!);
      row.cases[c.name] = { raw, netNs: raw.nsPerOp - baseline[c.name]!.nsPerOp };
    });
    process.stderr.write(`router ${name}: ${CASES.map((c) => `${c.name} ${fmt(row.cases[c.name]!.netNs)}`).join(', ')} ns/op net\n`);
    return row;
  });

  // 4. large-table cost of the generated-code routers (skipped when --variants names a subset without them)
  const large = opts.variants === undefined || opts.variants.includes('large') ? runLarge(table, quick) : [];

  // ratios["compiled ÷ find-my-way-compiled"][case]: own variant over reference, net ns (< 1 is faster)
  const ratios: Record<string, Record<string, number>> = {};
  for (const ref of RATIO_REFERENCES) {
    const refRow = rows.find((r) => r.variant === ref);
    for (const v of RATIO_VARIANTS) {
      const row = rows.find((r) => r.variant === v);
      if (row === undefined || refRow === undefined) continue;
      const key = `${v} ÷ ${ref}`;
      ratios[key] = {};
      for (const c of CASES) ratios[key]![c.name] = row.cases[c.name]!.netNs / refRow.cases[c.name]!.netNs;
    }
  }

  const json = {
    benchmark: 'router',
    startedAt: new Date().toISOString(),
    environment: environment(quick),
    method: {
      table: `scenarios/routes/github-api.json (${table.length} routes)`,
      timing: `benchmark.js, ${OPS_PER_CALL} finds per call, ns/op = mean call time / ${OPS_PER_CALL}, margin = 95% confidence (rme); ${quick ? 1 : ROUNDS} interleaved round(s) (every case: baseline and each router back to back), each cell the median round`,
      path: 'fresh path per find, built by runtime concatenation and flattened; params vary over 8 values',
      net: 'raw ns/op minus the baseline loop that only builds + flattens the same path',
      interface:
        'variants and adapters through the shared Router interface (adapters add method fallback and a result object); "find-my-way (direct)" calls find-my-way.find itself',
    },
    cases: CASES.map((c) => ({ name: c.name, method: c.method, build: c.build, expect: c.expect })),
    defaultVariant: DEFAULT_ROUTER,
    baseline,
    results: rows,
    ratios,
    large,
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
      (r) =>
        `| ${r.variant}${r.reference ? ' *(ref)*' : ''} | ${CASES.map((c) => `${fmt(r.cases[c.name]!.netNs)} ± ${fmt(r.cases[c.name]!.raw.marginNs)}`).join(' | ')} |`,
    ),
    `| *baseline (build path only)* | ${CASES.map((c) => `${fmt(baseline[c.name]!.nsPerOp)} ± ${fmt(baseline[c.name]!.marginNs)}`).join(' | ')} |`,
    '',
    '## Ratios to the find-my-way references (net; < 1 is faster)',
    '',
    header,
    sep,
    ...Object.entries(ratios).map(([v, r]) => `| ${v} | ${CASES.map((c) => r[c.name]!.toFixed(2)).join(' | ')} |`),
    '',
    ...(large.length === 0
      ? []
      : [
          '## Large tables: generated code, compile time, ns/op with traffic spread over every route',
          '',
          `GitHub table (237 routes) and the same table under 9 prefixes cut to 2,000 routes; 4,096 request paths spread evenly over the table, fresh strings; ns/op raw (path building included, the same work for every row). Code: characters of generated source that runs (\`compiled\` walks a method table whose code would exceed its budget of ${CODE_BUDGET_CHARS.toLocaleString('en')} characters, and counts 0 for it; \`${FORCED}\` runs the generated code regardless; find-my-way: its raw \`find\` matchers only). Compile: first lookup of every method after adding all routes.`,
          '',
          '| variant | routes | ns/op spread | code (chars) | compile ms | add ms |',
          '|---|---:|---:|---:|---:|---:|',
          ...large.map(
            (r) =>
              `| ${r.variant} | ${r.routes} | ${fmt(r.spreadNs.nsPerOp)} ± ${fmt(r.spreadNs.marginNs)} | ${r.codeBytes === null ? '—' : r.codeBytes.toLocaleString('en')} | ${r.compileMs.toFixed(1)} | ${r.addMs.toFixed(1)} |`,
          ),
          '',
        ]),
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
    publish: process.argv.includes('--publish'),
  });
  process.stdout.write(result.markdown);
  if (result.dir !== undefined) process.stdout.write(`\nwritten to ${result.dir}\n`);
}
