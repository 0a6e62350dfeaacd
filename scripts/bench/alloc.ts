/**
 * Heap bytes allocated per `router.find`, measured (issue 8: "zero per-request allocations in the router match
 * path for static routes — show it with a heap-allocation measurement, not an assumption").
 *
 *   node dist/scripts/bench/alloc.js [--n 1000000] [--variants hybrid,radix] [--out DIR] [--no-write]
 *
 * Method (Node 20 has no per-isolate "total allocated bytes" counter, so the young generation is the counter):
 * - the script re-spawns itself with --expose-gc and a 512 MB semi-space (--min/--max-semi-space-size), so N
 *   finds fit in new space and NO scavenge runs during a measurement (checked: GC events in the window are
 *   counted with a PerformanceObserver and a measurement with any GC is retried with a smaller N, then reported);
 * - the N request paths are built BEFORE the window as fresh sequential strings decoded from bytes (no cached
 *   hash; what node's HTTP parser hands over as req.url) and kept in an array: the loop only reads them;
 * - each router's loop is compiled from its own source (no shared, megamorphic call site), warmed up on another
 *   array of paths until optimised, and every result is stored into a sink array so escape analysis cannot
 *   delete an allocation the gateway would really make (its match escapes into the request context);
 * - bytes/find = (new-space bytes used after − before, for the find loop − the same loop without find) ÷ N;
 * - a calibration loop allocating one known object per iteration shows the method sees allocations.
 * Writes {results.json,report.md} to the git-ignored reports/runs/<timestamp>-micro-alloc/; with --publish to the
 * committed reports/micro/alloc/<timestamp>/ and reports/micro/alloc/latest/ (harness.ts, writeMicroReport).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import type { Router } from '../../core/contracts/router.js';
import { routerVariants } from '../../variants/router/index.js';
import { exitWithUsageError, parseCommandLine } from '../lib/command-line.js';
import { writeMicroReport } from './harness.js';

const SEMI_SPACE_MB = 512;
const gc = (globalThis as { gc?: () => void }).gc;

const HELP = `npm run bench:alloc -- [options]
Heap bytes per router.find for every router variant (static, 1 param, wildcard), measured in new space with no
GC in the window. Writes reports/runs/<timestamp>-micro-alloc/ (git-ignored).

options:
  --n N             lookups per case (default 1000000, at least 1000)
  --variants A,B    only these router variants (default: all)
  --out DIR         write under DIR instead of reports/runs/
  --no-write        print only
  --publish         write the committed reports/micro/alloc/ instead
  -h, --help        this text
`;
// Parsed before the re-run below, so --help and a mistyped option answer at once.
const { values } = parseCommandLine(HELP, () =>
  parseArgs({
    options: { n: { type: 'string' }, variants: { type: 'string' }, out: { type: 'string' }, 'no-write': { type: 'boolean' }, publish: { type: 'boolean' } },
  }),
);

if (gc === undefined) {
  // re-run under the flags the method needs; the child does the work and writes the report
  const r = spawnSync(
    process.execPath,
    [
      '--expose-gc',
      `--max-semi-space-size=${SEMI_SPACE_MB}`,
      `--min-semi-space-size=${SEMI_SPACE_MB}`,
      fileURLToPath(import.meta.url),
      ...process.argv.slice(2),
    ],
    { stdio: 'inherit' },
  );
  process.exit(r.status ?? 1);
}

const N = Number(values.n ?? 1_000_000);
if (!Number.isInteger(N) || N < 1000) exitWithUsageError('--n must be an integer ≥ 1000');
const names = values.variants !== undefined ? values.variants.split(',') : Object.keys(routerVariants);
for (const n of names)
  if (routerVariants[n] === undefined) exitWithUsageError(`unknown router variant "${n}" (known: ${Object.keys(routerVariants).join(', ')})`);

const POOLS = {
  S: Array<string>(8).fill('repositories'),
  U: ['octocat', 'torvalds', 'gaearon', 'sindresorhus', 'tj', 'mcollina', 'yyx990803', 'addyosmani'],
  O: ['nodejs', 'fastify', 'honojs', 'vercel', 'denoland', 'microsoft', 'facebook', 'google'],
  R: ['node', 'fastify', 'hono', 'next.js', 'deno', 'TypeScript', 'react', 'zx'],
  F: ['src/index.ts', 'lib/router.js', 'README.md', 'a/b/c/d.json', 'docs/api.md', 'test/x.test.ts', 'package.json', 'src/a/b.ts'],
};

interface Case {
  name: string;
  method: string;
  build: (i: number) => string;
  expect: string;
}

// the same cases (and route table) as scripts/bench/router.ts, so bytes and ns/op line up
const CASES: Case[] = [
  { name: 'static', method: 'GET', build: (i) => '/search/' + POOLS.S[i & 7], expect: '/search/repositories' },
  { name: '1 param', method: 'GET', build: (i) => '/users/' + POOLS.U[i & 7], expect: '/users/:user' },
  {
    name: 'wildcard',
    method: 'GET',
    build: (i) => '/repos/' + POOLS.O[i & 7] + '/' + POOLS.R[i & 7] + '/contents/' + POOLS.F[i & 7],
    expect: '/repos/:owner/:repo/contents/*',
  },
];

function routeTable(): Array<{ method: string; path: string }> {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const c of [join(here, '../../scenarios/routes/github-api.json'), join(here, '../../../scenarios/routes/github-api.json')]) {
    try {
      return JSON.parse(readFileSync(c, 'utf8')) as Array<{ method: string; path: string }>;
    } catch {
      // try the next location (run from scripts/ or from dist/scripts/)
    }
  }
  throw new Error('scenarios/routes/github-api.json not found');
}

/**
 * Fresh sequential strings, as node's HTTP parser hands over req.url: decoded from bytes (a new SeqString, no
 * cached hash). A concatenated-then-flattened string would stay a ConsString wrapper, which V8 may copy when it
 * is used as a Map key: an allocation the gateway never sees, so it would be charged to the router wrongly.
 */
function freshPaths(c: Case, n: number, salt: number): string[] {
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = Buffer.from(c.build(i + salt), 'latin1').toString('latin1');
  return out;
}

type Loop = (paths: string[], n: number) => number;
let serial = 0;

/** One compiled loop per (router, case): its own call-site feedback; results escape into `sink`. */
function compileLoop(label: string, method: string, router: Router<string> | null): Loop {
  const call = router === null ? 'const r = p;' : `const r = router.find(${JSON.stringify(method)}, p);`;
  const src = `// ${label} #${serial++}
    const sink = new Array(256).fill(null);
    return function loop(paths, n) {
      let acc = 0;
      for (let i = 0; i < n; i++) {
        const p = paths[i];
        ${call}
        sink[i & 255] = r;
        if (r !== null) acc++;
      }
      return acc;
    };`;
  return new Function('router', src)(router) as Loop;
}

function newSpaceUsed(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_used_size;
}

let gcEvents = 0;
const observer = new PerformanceObserver((list) => {
  gcEvents += list.getEntries().length;
});
observer.observe({ entryTypes: ['gc'] });
const flushObserver = () => new Promise<void>((r) => setTimeout(r, 20));

interface Window {
  bytes: number;
  gcs: number;
  hits: number;
}

async function measureWindow(loop: Loop, paths: string[], n: number): Promise<Window> {
  gc!();
  gc!();
  await flushObserver();
  const gcBefore = gcEvents;
  const before = newSpaceUsed();
  const hits = loop(paths, n);
  const after = newSpaceUsed();
  await flushObserver();
  return { bytes: after - before, gcs: gcEvents - gcBefore, hits };
}

interface Measurement {
  router: string;
  case: string;
  n: number;
  /** bytes per find, net of the empty loop; medians of 3 windows */
  bytesPerFind: number;
  rawBytesPerFind: number;
  emptyLoopBytesPerIter: number;
  gcsDuringWindows: number;
  matched: boolean;
}

async function measure(routerName: string, c: Case, n: number): Promise<Measurement> {
  const router = routerVariants[routerName]!<string>();
  for (const r of routeTable()) router.add(r.method, r.path, r.path);
  const m = router.find(c.method, c.build(0));
  const matched = m !== null && m.value === c.expect;
  const findLoop = compileLoop(`${routerName}/${c.name}`, c.method, router);
  const emptyLoop = compileLoop(`empty/${routerName}/${c.name}`, c.method, null);
  // warm-up on other strings until both loops are optimised (several full passes over 100k paths)
  const warm = freshPaths(c, 100_000, 7);
  for (let k = 0; k < 20; k++) {
    findLoop(freshPaths(c, 100_000, k), 100_000);
    emptyLoop(warm, 100_000);
  }
  const paths = freshPaths(c, n, 1_000_003);
  const raw: number[] = [];
  const empty: number[] = [];
  let gcs = 0;
  for (let rep = 0; rep < 3; rep++) {
    // every window sees strings never hashed before: rebuild them (outside the window)
    const fresh = rep === 0 ? paths : freshPaths(c, n, 2_000_003 * (rep + 1));
    const w = await measureWindow(findLoop, fresh, n);
    const e = await measureWindow(emptyLoop, fresh, n);
    gcs += w.gcs + e.gcs;
    raw.push(w.bytes / n);
    empty.push(e.bytes / n);
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[1]!;
  return {
    router: routerName,
    case: c.name,
    n,
    bytesPerFind: med(raw) - med(empty),
    rawBytesPerFind: med(raw),
    emptyLoopBytesPerIter: med(empty),
    gcsDuringWindows: gcs,
    matched,
  };
}

async function calibration(n: number): Promise<number> {
  const src = `const sink = new Array(256).fill(null);
    return function loop(paths, n) { for (let i = 0; i < n; i++) sink[i & 255] = { a: i }; return n; };`;
  const loop = new Function(src)() as Loop;
  for (let k = 0; k < 20; k++) loop([], 100_000);
  const w = await measureWindow(loop, [], n);
  return w.bytes / n;
}

/** Own variants whose static matches must not allocate (README: zero allocations in the static match). */
const ZERO_ALLOC_STATIC = ['hybrid', 'compiled'];

async function main(): Promise<void> {
  const started = new Date();
  const results: Measurement[] = [];
  process.stderr.write(`alloc: ${names.length} routers × ${CASES.length} cases × 3 windows of ${N} finds (semi-space ${SEMI_SPACE_MB} MB, --expose-gc)\n`);
  for (const name of names) {
    for (const c of CASES) {
      let m = await measure(name, c, N);
      // a scavenge inside a window would hide allocations: retry with fewer finds until none runs (and report it)
      for (let n = N >> 3; m.gcsDuringWindows > 0 && n >= 1000; n >>= 3) m = await measure(name, c, n);
      results.push(m);
      process.stderr.write(
        `  ${name.padEnd(14)} ${c.name.padEnd(9)} ${m.bytesPerFind.toFixed(3)} B/find${m.gcsDuringWindows > 0 ? ` (${m.gcsDuringWindows} GCs in windows!)` : ''}\n`,
      );
    }
  }
  const calib = await calibration(N);
  const hybridStatic = results.find((r) => r.router === 'hybrid' && r.case === 'static');
  const zero = (b: number) => b < 1;
  const json = {
    kind: 'alloc',
    startedAt: started.toISOString(),
    node: process.version,
    v8: process.versions.v8,
    method:
      'new-space bytes used after − before a window of N finds on pre-built fresh sequential strings (decoded from bytes, like req.url), minus the same loop without find; ' +
      `--expose-gc, semi-space ${SEMI_SPACE_MB} MB so no scavenge runs inside a window (GC events counted); results stored to a sink so allocations escape; median of 3 windows`,
    n: N,
    calibration: { loop: 'sink[i & 255] = { a: i }', bytesPerIter: calib },
    results,
    verdict:
      hybridStatic === undefined
        ? null
        : { hybridStaticBytesPerFind: hybridStatic.bytesPerFind, zeroAllocation: zero(hybridStatic.bytesPerFind) && hybridStatic.gcsDuringWindows === 0 },
    // the same check for every own variant that promises zero-allocation static matches
    staticVerdicts: ZERO_ALLOC_STATIC.flatMap((router) => {
      const r = results.find((x) => x.router === router && x.case === 'static');
      return r === undefined ? [] : [{ router, bytesPerFind: r.bytesPerFind, zeroAllocation: zero(r.bytesPerFind) && r.gcsDuringWindows === 0 }];
    }),
  };
  const md = renderMarkdown(json, results, calib);
  process.stdout.write(`${md}\n`);
  if (values['no-write'] !== true) {
    const dir = writeMicroReport('alloc', json, md, { ...(values.out !== undefined ? { outDir: values.out } : {}), publish: values.publish === true, started });
    process.stderr.write(`report: ${join(dir, 'report.md')}\n`);
  }
  observer.disconnect();
}

function renderMarkdown(
  json: {
    method: string;
    n: number;
    verdict: { hybridStaticBytesPerFind: number; zeroAllocation: boolean } | null;
    staticVerdicts: { router: string; bytesPerFind: number; zeroAllocation: boolean }[];
  },
  results: Measurement[],
  calib: number,
): string {
  const cell = (r: Measurement | undefined) =>
    r === undefined
      ? '–'
      : `${r.bytesPerFind.toFixed(2)}${r.matched ? '' : ' (no match!)'}${r.gcsDuringWindows > 0 ? ' (GC in window: lower bound)' : ''}${r.n !== json.n ? ` (${r.n.toLocaleString('en-US')} finds)` : ''}`;
  const lines = [
    '# Router: heap bytes allocated per find',
    '',
    `Node ${process.version} (V8 ${process.versions.v8}), ${json.n.toLocaleString('en-US')} finds per window, GitHub API route table.`,
    '',
    `Method: ${json.method}.`,
    '',
    `Calibration: a loop storing one \`{ a: i }\` per iteration measures **${calib.toFixed(2)} B/iteration** (one small object: the method sees single allocations).`,
    '',
    json.staticVerdicts
      .map(
        (v) =>
          `**${v.router}, static route: ${v.bytesPerFind.toFixed(3)} B/find → ${v.zeroAllocation ? 'zero allocations per static match' : 'ALLOCATES on static matches'}.**`,
      )
      .join(' ') + (json.staticVerdicts.length > 0 ? ' (Any heap object is ≥ 16 B, so < 1 B/find means no per-find allocation.)' : ''),
    '',
    '| router | static | 1 param | wildcard |',
    '| --- | ---: | ---: | ---: |',
  ];
  const routers = [...new Set(results.map((r) => r.router))];
  for (const name of routers) {
    const by = (c: string) => results.find((r) => r.router === name && r.case === c);
    lines.push(`| \`${name}\` | ${cell(by('static'))} | ${cell(by('1 param'))} | ${cell(by('wildcard'))} |`);
  }
  lines.push(
    '',
    'Bytes per find, net of the empty loop (medians of 3 windows). Param and wildcard matches allocate their params object by contract (`RouteMatch.params`).',
    '',
    'Reproduce: `npm run bench:alloc` (or `node dist/scripts/bench/alloc.js --n 1000000`).',
    '',
  );
  return lines.join('\n');
}

await main();
