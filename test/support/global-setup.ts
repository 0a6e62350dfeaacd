import { ensureBuilt } from '../../scripts/build.mjs';
import { missingServicesLine } from './services.js';

/**
 * Tests that spawn the CLI or the scenario scripts run dist/. `npm test` builds first; a bare `npx vitest` gets
 * the same freshness check as `npm start`, so it never runs JavaScript older than its TypeScript. Type errors
 * in a file someone is still editing do not stop the run: tsc emits anyway, and the tests judge the behaviour.
 */
export default function setup(): void {
  if (!ensureBuilt({ allowTypeErrors: true })) throw new Error('build failed: dist/core/cli.js was not produced (see the tsc output above)');
  const missing = missingServicesLine();
  if (missing !== null) process.stderr.write(`${missing}\n`);
}
