/** npm run report -- <report dir>: re-renders report.md, charts and report.html from results.json. */
import { rerender } from './scenario/report/write.js';

async function main(): Promise<void> {
  const dirs = process.argv.slice(2);
  if (dirs.length === 0) {
    process.stderr.write('usage: npm run report -- <reports/<scenario>/<timestamp>> [more dirs…]\n');
    process.exit(2);
  }
  for (const dir of dirs) {
    await rerender(dir);
    process.stdout.write(`re-rendered ${dir}/report.md, report.html and charts\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
