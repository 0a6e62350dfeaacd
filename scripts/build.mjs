#!/usr/bin/env node
// Plain JS on purpose: it decides whether dist/ must be rebuilt, so it has to run before any build exists.
//
//   node scripts/build.mjs             build now (what `npm run build` does): a full tsc, then the schema
//   node scripts/build.mjs --if-stale  build only when a source is newer than the last successful build
//
// Others import ensureBuilt() from here: scripts/run.mjs (npm start and the bench/scenario scripts) and the
// vitest global setup, so neither a start nor a bare `npx vitest` runs code older than its sources.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
const STAMP = join(DIST, '.build-stamp.json');
// Inside dist/ so that deleting dist/ also forgets it: tsc --incremental trusts this file and would not
// re-emit outputs that were removed behind its back.
const BUILD_INFO = join(DIST, '.tsbuildinfo');
const SOURCE_DIRS = ['core', 'variants', 'scripts', 'scenarios'];
const SOURCE_FILES = ['tsconfig.json', 'package.json'];
// Files the runtime reads as they are (the admin dashboard's page): copied to the same place under dist/, so the
// production install, which ships dist/core only, has them. Part of the sources: editing one makes dist/ stale.
const ASSET_DIRS = ['core/dashboard/static'];

/**
 * Calls onFile for every file under dir, depth first, and afterDir for every folder below dir once its content
 * was visited (it may remove it then). A folder that does not exist has no files.
 */
function walk(dir, onFile, afterDir = () => {}) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      walk(p, onFile, afterDir);
      afterDir(p);
    } else onFile(p, e.name);
  }
}

/** Every input of the build: the .ts files tsconfig.json compiles, the assets copied as they are, and the two files that steer it. */
function sources() {
  const out = [];
  const collect = (p, name) => {
    if (name.endsWith('.ts') || ASSET_DIRS.some((a) => p.startsWith(join(ROOT, a)))) out.push(p);
  };
  for (const d of SOURCE_DIRS) walk(join(ROOT, d), collect);
  for (const f of SOURCE_FILES) if (existsSync(join(ROOT, f))) out.push(join(ROOT, f));
  return out.sort();
}

/**
 * Why dist/ is out of date, or null when it is current. The stamp holds the time the last successful build
 * *started* (a file saved while tsc was running is newer than that, so it triggers the next build) and the
 * list of sources it saw (a deleted or renamed file changes the list even when no mtime moved).
 */
export function staleReason(entry = 'dist/core/cli.js') {
  if (!existsSync(join(ROOT, entry))) return `${entry} is missing`;
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(STAMP, 'utf8'));
  } catch {
    return 'no build stamp (dist/ was not built by scripts/build.mjs)';
  }
  const files = sources();
  const list = files.map((f) => relative(ROOT, f)).join('\n');
  if (stamp.sources !== list) return 'the set of source files changed';
  for (const f of files) {
    let mtimeMs;
    try {
      mtimeMs = statSync(f).mtimeMs;
    } catch {
      return `${relative(ROOT, f)} vanished while checking`;
    }
    if (mtimeMs > stamp.startedAt) return `${relative(ROOT, f)} changed`;
  }
  return null;
}

function tscPath() {
  try {
    return createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    return null;
  }
}

/**
 * Removes what tsc emitted for a source that no longer exists (moved or deleted): tsc never deletes, and a stale
 * dist/core/<old>.js would still be importable and shipped by `npm pack`.
 */
function pruneOrphans(files) {
  const compiled = new Set(files.filter((f) => f.endsWith('.ts')).map((f) => relative(ROOT, f).slice(0, -3)));
  const isAsset = (p) => ASSET_DIRS.some((a) => p.startsWith(join(DIST, a)));
  const removeOrphan = (p, name) => {
    if (/\.js(\.map)?$/.test(name) && !isAsset(p) && !compiled.has(relative(DIST, p).replace(/\.js(\.map)?$/, ''))) rmSync(p);
  };
  const removeEmpty = (p) => {
    if (readdirSync(p).length === 0) rmSync(p, { recursive: true });
  };
  for (const d of SOURCE_DIRS) walk(join(DIST, d), removeOrphan, removeEmpty);
}

/**
 * Compiles (incrementally unless full) and emits the schema; writes the stamp only when tsc reported no error.
 * Returns { ok, output }: with type errors tsc still emits, so callers that can live with a typing mistake in
 * someone's half-edited file (the test setup) may go on; `npm start` and `npm run build` stop.
 */
export function build({ full = false, quiet = false } = {}) {
  const tsc = tscPath();
  if (tsc === null) return { ok: false, output: 'typescript is not installed (run `npm ci`; a production install runs dist/ as built)' };
  const startedAt = Date.now();
  const files = sources();
  if (full) rmSync(BUILD_INFO, { force: true });
  const args = [tsc, '-p', join(ROOT, 'tsconfig.json'), '--incremental', '--tsBuildInfoFile', BUILD_INFO];
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
  let output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  let ok = r.status === 0;
  pruneOrphans(files);
  for (const a of ASSET_DIRS) {
    rmSync(join(DIST, a), { recursive: true, force: true });
    // a checkout without the folder (the launcher test's two-file project) has nothing to copy
    if (existsSync(join(ROOT, a))) cpSync(join(ROOT, a), join(DIST, a), { recursive: true });
  }
  if (existsSync(join(DIST, 'scripts/emit-schema.js'))) {
    const s = spawnSync(process.execPath, [join(DIST, 'scripts/emit-schema.js')], { cwd: ROOT, encoding: 'utf8' });
    output += `${s.stdout ?? ''}${s.stderr ?? ''}`;
    ok = ok && s.status === 0;
  } else ok = false;
  if (ok) {
    mkdirSync(DIST, { recursive: true });
    const tmp = `${STAMP}.${process.pid}`;
    writeFileSync(tmp, JSON.stringify({ startedAt, sources: files.map((f) => relative(ROOT, f)).join('\n') }));
    renameSync(tmp, STAMP);
  }
  if (!quiet && output.trim() !== '') process.stderr.write(output);
  return { ok, output };
}

/**
 * Builds when stale. Returns true when dist/ can be run: fresh, rebuilt cleanly, or (allowTypeErrors) rebuilt
 * with type errors but with `entry` emitted. Without a compiler (a production install) a stale tree runs as is.
 */
export function ensureBuilt({ entry = 'dist/core/cli.js', allowTypeErrors = false, log = (m) => process.stderr.write(`${m}\n`) } = {}) {
  const reason = staleReason(entry);
  if (reason === null) return true;
  if (tscPath() === null) {
    if (existsSync(join(ROOT, entry))) return true;
    log(`${entry} is missing and typescript is not installed: run \`npm ci && npm run build\``);
    return false;
  }
  log(`building (${reason})…`);
  // A missing output with a build-info file present would not be re-emitted by an incremental tsc.
  const { ok } = build({ full: !existsSync(join(ROOT, entry)) });
  if (ok) return true;
  if (allowTypeErrors && existsSync(join(ROOT, entry))) {
    log('build reported errors (see above); running what tsc emitted');
    return true;
  }
  return false;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--if-stale')) process.exit(ensureBuilt() ? 0 : 1);
  process.exit(build({ full: true }).ok ? 0 : 1);
}
