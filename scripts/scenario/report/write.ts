import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Results } from '../results.js';
import { validateResults } from '../results.js';
import { cpuChart, latencyChart, ratioChart, throughputChart } from './charts.js';
import { renderHtml } from './html.js';
import { CHARTS, renderMarkdown } from './markdown.js';

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
 * archive tools), and reports/index.md lists every report per scenario, newest first.
 */
export function updateLatest(root: string, scenario: string, dir: string): void {
  const latest = join(root, 'latest', scenario);
  rmSync(latest, { recursive: true, force: true });
  mkdirSync(latest, { recursive: true });
  cpSync(dir, latest, { recursive: true });
  writeIndex(root);
}

export function writeIndex(root: string): void {
  const lines = ['# Reports', '', 'Newest first per scenario. `latest/<scenario>/` is a copy of the newest one.', ''];
  const scenarios = existsSync(root)
    ? readdirSync(root, { withFileTypes: true })
        .filter((d) => d.isDirectory() && d.name !== 'latest' && d.name !== 'profiles' && d.name !== 'micro' && d.name !== 'runs')
        .map((d) => d.name)
        .sort()
    : [];
  for (const s of scenarios) {
    const runs = readdirSync(join(root, s), { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(root, s, d.name, 'results.json')))
      .map((d) => d.name)
      .sort()
      .reverse();
    if (runs.length === 0) continue;
    lines.push(`## ${s}`, '');
    if (existsSync(join(root, 'latest', s, 'report.md'))) lines.push(`- [latest](${relative(root, join(root, 'latest', s, 'report.md'))})`);
    for (const r of runs) lines.push(`- [${r}](${s}/${r}/report.md)`);
    lines.push('');
  }
  writeFileSync(join(root, 'index.md'), lines.join('\n'));
}
