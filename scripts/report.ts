/** npm run report -- <report dir>…: re-renders report.md, charts and report.html from results.json. */
import { parseArgs } from 'node:util';
import { parseCommandLine, reportFailure, UsageError } from './lib/command-line.js';
import { rerender } from './scenario/report/write.js';

const HELP = `npm run report -- <report dir> [more dirs…]
Re-renders report.md, report.html and the charts of a scenario report from its results.json, e.g.
npm run report -- reports/runs/2026-12-01T10-00-00Z-smoke

options:
  -h, --help    this text
`;

async function main(): Promise<void> {
  const { positionals: dirs } = parseCommandLine(HELP, () => parseArgs({ allowPositionals: true, options: {} }));
  if (dirs.length === 0) throw new UsageError('name a report folder (one holding results.json)');
  for (const dir of dirs) {
    await rerender(dir);
    process.stdout.write(`re-rendered ${dir}/report.md, report.html and charts\n`);
  }
}

main().catch(reportFailure);
