import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { REPORTS_DIR } from './paths.js';
import { reportDirName, updateLatest, writeReport } from './report/write.js';
import type { Results } from './results.js';

/**
 * Where runs land. By default a run is a scratch result: it goes to reports/runs/ (git-ignored), so running a
 * scenario, compare or profile never changes `git status`. `--publish` writes the committed reference layout
 * instead: reports/latest/<scenario>/ and a refreshed reports/index.md; reports/<scenario>/<timestamp>/ stays only
 * while the README or docs cite it (report/prune.ts).
 */
export const RUNS_DIR = join(REPORTS_DIR, 'runs');

export interface OutputOptions {
  /** root directory instead of reports/runs (default) or reports/ (with publish) */
  outDir?: string;
  /** write the committed reference layout: <root>/<scenario>/<timestamp>/ plus latest/ and index.md */
  publish?: boolean;
  /** a directory of run artefacts (HdrHistogram logs) copied into the report as <dir>/<as>/ */
  attach?: { from: string; as: string };
}

/** The directory one scenario run's report goes to. */
export function runDir(scenario: string, startedAt: string, opts: OutputOptions): string {
  const stamp = reportDirName(startedAt);
  if (opts.publish === true) return join(opts.outDir ?? REPORTS_DIR, scenario, stamp);
  return join(opts.outDir ?? RUNS_DIR, `${stamp}-${scenario}`);
}

/** The directory one profile goes to (profiles are never published: 10–40 MB of tool output each). */
export function profileDir(scenario: string, variantId: string, tool: string, startedAt: string, outDir?: string): string {
  return join(outDir ?? RUNS_DIR, `${reportDirName(startedAt)}-profile-${scenario}-${variantId.replace(/[=,/]/g, '-')}-${tool}`);
}

/** Writes the report where `opts` says; with publish, also refreshes latest/ and index.md. Returns where it lives. */
export async function saveRun(results: Results, opts: OutputOptions): Promise<string> {
  const dir = runDir(results.scenario.name, results.startedAt, opts);
  await writeReport(results, dir);
  if (opts.attach !== undefined) cpSync(opts.attach.from, join(dir, opts.attach.as), { recursive: true });
  if (opts.publish === true) return updateLatest(opts.outDir ?? REPORTS_DIR, results.scenario.name, dir);
  return dir;
}
