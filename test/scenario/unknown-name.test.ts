import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function run(script: string, args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [`dist/scripts/${script}`, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stderr: r.stderr };
}

describe('an unknown scenario name lists the available ones (exit 2, no stack trace)', () => {
  it.each([
    ['scenario.js', ['nosuch']],
    ['profile.js', ['nosuch', '--variant', 'router=hybrid', '--tool', 'flame']],
  ])('%s', (script, args) => {
    const r = run(script, args);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain('unknown scenario "nosuch"; available:');
    // scenarios/*.json and the h2load ones
    for (const name of ['smoke', 'routers', 'baseline', 'h2']) expect(r.stderr).toMatch(new RegExp(`\\b${name}\\b`));
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('a missing scenario file path says so (exit 2)', () => {
    const r = run('scenario.js', ['no/such/file.json']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/scenario file not found: .*no\/such\/file\.json/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('compare: an unknown comparison lists the known ones (exit 2)', () => {
    const r = run('compare.js', ['nosuch']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain('unknown comparison "nosuch"; available: router, pool, metrics, upstream, plugins, workers, baseline');
  });
});
