import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest ancestor with a package.json (works from scripts/… and dist/scripts/…). */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'tsconfig.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
}

export const ROOT = findRoot();

/**
 * Child-process entry points always run from dist/ (Node 20 cannot execute the .ts sources), even when the
 * runner itself is imported from source by vitest.
 */
export function distScript(relative: string): string {
  return join(ROOT, 'dist', 'scripts', 'scenario', relative);
}

export const GATEWAY_CLI = join(ROOT, 'dist', 'core', 'cli.js');
export const SCENARIO_DIR = join(ROOT, 'scenarios');
export const REPORTS_DIR = join(ROOT, 'reports');
