import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What the committed reports/ tree keeps, so that it holds what a reader needs and not every run ever published:
 * - `latest/<scenario>/` (and `micro/<family>/latest/`): the newest run, always;
 * - `<scenario>/<timestamp>/` (and `micro/<family>/<timestamp>/`): only while README.md, CHANGELOG.md or a page
 *   under docs/ cites it, because a figure quoted in prose must keep pointing at the run that measured it.
 * An uncited timestamped run is a duplicate of latest/ or superseded by it; git history still has it.
 */

const STAMP = /^\d{4}-\d{2}-\d{2}T[\d.-]+Z$/;

/** The text of every page that may cite a published run: README.md, CHANGELOG.md and docs/**.md of `repoRoot`. */
export function citingText(repoRoot: string): string {
  const files = ['README.md', 'CHANGELOG.md'].map((f) => join(repoRoot, f));
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.md')) files.push(p);
    }
  };
  walk(join(repoRoot, 'docs'));
  return files
    .filter((f) => existsSync(f))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
}

/** The timestamped run directories directly under `dir`, oldest first. */
export function timestampedRuns(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && STAMP.test(d.name))
    .map((d) => d.name)
    .sort();
}

/** The folders of `reportsRoot` that hold `<timestamp>/` runs: one per scenario, one per micro-benchmark family. */
function runParents(reportsRoot: string): Array<{ label: string; dir: string; latest: string }> {
  const out: Array<{ label: string; dir: string; latest: string }> = [];
  if (!existsSync(reportsRoot)) return out;
  for (const d of readdirSync(reportsRoot, { withFileTypes: true })) {
    if (!d.isDirectory() || d.name === 'latest' || d.name === 'runs' || d.name === 'profiles') continue;
    if (d.name === 'micro') {
      for (const f of readdirSync(join(reportsRoot, 'micro'), { withFileTypes: true })) {
        const dir = join(reportsRoot, 'micro', f.name);
        if (f.isDirectory()) out.push({ label: f.name, dir, latest: join(dir, 'latest') });
      }
    } else out.push({ label: d.name, dir: join(reportsRoot, d.name), latest: join(reportsRoot, 'latest', d.name) });
  }
  return out;
}

/**
 * Removes every timestamped run under `reportsRoot` that `citations` does not name as `<scenario>/<timestamp>`.
 * Only runs whose newest state is kept elsewhere are removed: a scenario without `latest/` keeps its newest run.
 * Returns the removed directories.
 */
export function pruneReports(reportsRoot: string, citations: string): string[] {
  const removed: string[] = [];
  for (const { label, dir, latest } of runParents(reportsRoot)) {
    const runs = timestampedRuns(dir);
    const newest = runs.at(-1);
    for (const stamp of runs) {
      if (citations.includes(`${label}/${stamp}`)) continue;
      if (stamp === newest && !existsSync(join(latest, 'report.md'))) continue;
      const p = join(dir, stamp);
      rmSync(p, { recursive: true, force: true });
      removed.push(p);
    }
    if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true, force: true });
  }
  return removed;
}
