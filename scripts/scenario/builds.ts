import { execFileSync } from 'node:child_process';
import { existsSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GATEWAY_CLI, ROOT } from './paths.js';

/**
 * The `build` matrix dimension: the same scenario against two builds of the gateway, interleaved in one run, so
 * an optimisation gets a before/after report from the harness itself.
 *
 *   "current"       the working tree's dist/ (what `npm run build` produced)
 *   "<rev>"         the gateway as of a git revision
 *   "revert:<rev>"  HEAD with exactly that commit reverted: the cleanest "before" for one change
 *
 * Other builds are checked out with `git worktree` into the temp directory (sharing this node_modules) and
 * compiled with tsc once; later runs reuse them.
 */

function git(args: string[], cwd = ROOT): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** The gateway CLI of a build spec, building it first if needed. */
export function gatewayCliFor(spec: string | undefined): string {
  if (spec === undefined || spec === 'current') return GATEWAY_CLI;
  const revert = spec.startsWith('revert:');
  const rev = git(['rev-parse', '--short=12', revert ? spec.slice(7) : spec]);
  const head = revert ? git(['rev-parse', '--short=12', 'HEAD']) : '';
  const dir = join(tmpdir(), revert ? `gw-build-${head}-minus-${rev}` : `gw-build-${rev}`);
  const cli = join(dir, 'dist', 'core', 'cli.js');
  if (existsSync(cli)) return cli;
  if (!existsSync(dir)) {
    git(['worktree', 'add', '--detach', dir, revert ? head : rev]);
    if (revert) git(['-c', 'user.name=bench', '-c', 'user.email=bench@localhost', 'revert', '--no-edit', rev], dir);
  }
  if (!existsSync(join(dir, 'node_modules'))) symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: dir, stdio: 'inherit' });
  return cli;
}
