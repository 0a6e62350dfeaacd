#!/usr/bin/env node
// Launcher for the npm scripts: `node scripts/run.mjs dist/core/cli.js --help` rebuilds dist/ only when a source
// changed since the last build (scripts/build.mjs), then runs the module in this same process, so a warm start
// costs one directory walk instead of a full tsc (~20 s), and signals reach the gateway without a middleman.
import { isAbsolute, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureBuilt, ROOT } from './build.mjs';

const [target, ...rest] = process.argv.slice(2);
if (target === undefined || !target.startsWith('dist/')) {
  process.stderr.write('usage: node scripts/run.mjs dist/<module>.js [args...]\n');
  process.exit(2);
}
if (!ensureBuilt({ entry: target })) process.exit(1);

const file = isAbsolute(target) ? target : join(ROOT, target);
// The module sees the argv it would see if started directly: its flags at argv[2], and argv[1] naming it, which
// is what cluster.fork re-executes (workers start dist/core/cli.js itself, no second freshness check) and what
// the scripts' "am I the main module" tests compare with import.meta.url.
process.argv = [process.argv[0], file, ...rest];
await import(pathToFileURL(file).href);
