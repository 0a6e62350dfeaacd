import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { citingText, pruneReports } from '../../scripts/scenario/report/prune.js';
import { updateLatest } from '../../scripts/scenario/report/write.js';

let root: string;

function run(dir: string, startedAt = '2026-01-01T00:00:00.000Z'): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'report.md'), `# ${dir}\n`);
  writeFileSync(join(dir, 'results.json'), JSON.stringify({ startedAt }));
  return dir;
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'prune-test-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('published reports: the newest run per scenario and the runs a page cites', () => {
  it('removes uncited timestamped runs and keeps cited ones, for scenarios and micro families', () => {
    run(join(root, 'latest', 'peers'));
    const old = run(join(root, 'peers', '2026-01-01T00-00-00Z'));
    const cited = run(join(root, 'peers', '2026-01-02T00-00-00Z'));
    const newest = run(join(root, 'peers', '2026-01-03T00-00-00Z'));
    run(join(root, 'micro', 'router', 'latest'));
    const microOld = run(join(root, 'micro', 'router', '2026-01-01T00-00-00.123Z'));
    const microCited = run(join(root, 'micro', 'router', '2026-01-02T00-00-00.456Z'));

    const removed = pruneReports(root, 'see [run](reports/peers/2026-01-02T00-00-00Z/report.md) and micro/router/2026-01-02T00-00-00.456Z');

    expect(removed.sort()).toEqual([microOld, old, newest].sort());
    expect(existsSync(cited)).toBe(true);
    expect(existsSync(microCited)).toBe(true);
    expect(existsSync(join(root, 'latest', 'peers', 'report.md'))).toBe(true);
    expect(existsSync(join(root, 'micro', 'router', 'latest', 'report.md'))).toBe(true);
  });

  it('keeps the newest run of a scenario that has no latest/ copy', () => {
    run(join(root, 'routers', '2026-01-01T00-00-00Z'));
    const newest = run(join(root, 'routers', '2026-01-02T00-00-00Z'));
    pruneReports(root, '');
    expect(existsSync(newest)).toBe(true);
    expect(existsSync(join(root, 'routers', '2026-01-01T00-00-00Z'))).toBe(false);
  });

  it('publishing a run moves it to latest/, prunes its uncited copy and indexes latest with its timestamp', () => {
    const cited = run(join(root, 'peers', '2026-01-01T00-00-00Z'), '2026-01-01T00:00:00.000Z');
    const fresh = run(join(root, 'peers', '2026-02-01T00-00-00Z'), '2026-02-01T00:00:00.000Z');
    const lives = updateLatest(root, 'peers', fresh, 'peers/2026-01-01T00-00-00Z');
    expect(lives).toBe(join(root, 'latest', 'peers'));
    expect(existsSync(fresh)).toBe(false);
    expect(existsSync(cited)).toBe(true);
    const index = readFileSync(join(root, 'index.md'), 'utf8');
    expect(index).toContain('- [latest](latest/peers/report.md) (2026-02-01T00-00-00Z)');
    expect(index).toContain('- [2026-01-01T00-00-00Z](peers/2026-01-01T00-00-00Z/report.md)');
  });

  it('reads citations from README.md, CHANGELOG.md and every page under docs/', () => {
    writeFileSync(join(root, 'README.md'), 'a');
    mkdirSync(join(root, 'docs', 'deep'), { recursive: true });
    writeFileSync(join(root, 'docs', 'deep', 'page.md'), 'peers/2026-01-01T00-00-00Z');
    writeFileSync(join(root, 'docs', 'notes.txt'), 'peers/2026-09-09T00-00-00Z');
    const text = citingText(root);
    expect(text).toContain('peers/2026-01-01T00-00-00Z');
    expect(text).not.toContain('2026-09-09');
  });
});
