import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Tests that spawn the CLI need dist/; `npm test` builds first, a bare `npx vitest` builds here if missing. */
export default function setup(): void {
  if (!existsSync('dist/core/cli.js')) execFileSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' });
}
