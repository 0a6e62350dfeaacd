import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from '../paths.js';
import type { Results } from '../results.js';
import { validateResults } from '../results.js';
import { capacityChart } from './capacity.js';
import { cpuChart, latencyChart, ratioChart, throughputChart } from './charts.js';
import { renderHtml } from './html.js';
import { CHARTS, renderMarkdown } from './markdown.js';
import { citingText, pruneReports, timestampedRuns } from './prune.js';

/** reports/<scenario>/<this>: sortable, filesystem-safe UTC timestamp. */
export function reportDirName(iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

/** Renders everything a report directory holds from a Results object (the run, or a re-render). */
export async function writeReport(results: Results, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  await renderReport(results, dir);
}

async function renderReport(results: Results, dir: string): Promise<void> {
  const pngs: Partial<Record<keyof typeof CHARTS, Buffer>> = {
    throughput: await throughputChart(results),
    latency: await latencyChart(results),
  };
  const ratio = await ratioChart(results);
  if (ratio !== null) pngs.ratio = ratio;
  const cpu = await cpuChart(results);
  if (cpu !== null) pngs.cpu = cpu;
  const capacity = await capacityChart(results);
  if (capacity !== null) pngs.capacity = capacity;
  for (const [k, png] of Object.entries(pngs)) writeFileSync(join(dir, CHARTS[k as keyof typeof CHARTS].file), png);
  writeFileSync(join(dir, 'report.md'), renderMarkdown(results, Object.keys(pngs) as Array<keyof typeof CHARTS>));
  writeFileSync(join(dir, 'report.html'), renderHtml(results, pngs));
}

/** `npm run report -- <dir>`: re-render report.md, charts and HTML from results.json, without re-running. */
export async function rerender(dir: string): Promise<Results> {
  const file = join(dir, 'results.json');
  if (!existsSync(file)) throw new Error(`no results.json in ${dir}`);
  const results = JSON.parse(readFileSync(file, 'utf8')) as Results;
  const problems = validateResults(results);
  if (problems.length > 0) throw new Error(`${file} does not match the results schema:\n  ${problems.join('\n  ')}`);
  await renderReport(results, dir);
  return results;
}

/**
 * reports/latest/<scenario>/ becomes a copy of the newest report (a copy, not a symlink: it survives git and
 * archive tools); timestamped runs that no page cites are then pruned (prune.ts), and reports/index.md lists what
 * is left per scenario. Returns where the run now lives: its timestamped directory if a page cites it, else latest/.
 */
export function updateLatest(root: string, scenario: string, dir: string, citations = citingText(ROOT)): string {
  const latest = join(root, 'latest', scenario);
  rmSync(latest, { recursive: true, force: true });
  mkdirSync(latest, { recursive: true });
  cpSync(dir, latest, { recursive: true });
  pruneReports(root, citations);
  writeIndex(root);
  return existsSync(dir) ? dir : latest;
}

/** The timestamp a report directory was measured at, from its results.json (latest/ copies carry no name for it). */
function measuredAt(dir: string): string | undefined {
  try {
    const { startedAt } = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as { startedAt?: unknown };
    return typeof startedAt === 'string' ? reportDirName(startedAt) : undefined;
  } catch {
    return undefined;
  }
}

export function writeIndex(root: string): void {
  const lines = [
    '# Reports',
    '',
    'Per scenario: `latest/<scenario>/` is the newest published run; older runs stay only while the README or docs cite them.',
    '',
  ];
  const dirs = (p: string) => (existsSync(p) ? readdirSync(p, { withFileTypes: true }).filter((d) => d.isDirectory()) : []);
  const skip = new Set(['latest', 'profiles', 'micro', 'runs']);
  const scenarios = [
    ...new Set([
      ...dirs(root)
        .filter((d) => !skip.has(d.name))
        .map((d) => d.name),
      ...dirs(join(root, 'latest')).map((d) => d.name),
    ]),
  ].sort();
  for (const s of scenarios) {
    const runs = timestampedRuns(join(root, s))
      .filter((r) => existsSync(join(root, s, r, 'results.json')))
      .reverse();
    const latest = join(root, 'latest', s);
    const hasLatest = existsSync(join(latest, 'report.md'));
    if (runs.length === 0 && !hasLatest) continue;
    lines.push(`## ${s}`, '');
    if (hasLatest) {
      const at = measuredAt(latest);
      lines.push(`- [latest](${relative(root, join(latest, 'report.md'))})${at !== undefined ? ` (${at})` : ''}`);
    }
    for (const r of runs) lines.push(`- [${r}](${s}/${r}/report.md)`);
    lines.push('');
  }
  writeFileSync(join(root, 'index.md'), lines.join('\n'));
}
