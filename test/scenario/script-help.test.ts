import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };

/** Every harness script (scenario, compare, profile, report, bench*, soak, fuzz*) and the file npm runs for it. */
const SCRIPTS = Object.entries(pkg.scripts)
  .filter(([name]) => /^(scenario|compare|profile|report|bench|soak|fuzz)/.test(name))
  .map(([name, command]) => [name, /(dist\/\S+\.js)/.exec(command)![1]!] as const);

function run(file: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [file, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('every script explains itself', () => {
  it('covers the thirteen harness scripts', () => {
    expect(SCRIPTS.map(([name]) => name).sort()).toEqual(
      [
        'bench:alloc',
        'bench:core',
        'bench:grpc',
        'bench:memory',
        'bench:micro',
        'bench:proxy',
        'compare',
        'fuzz:http-engines',
        'fuzz:http-parser',
        'profile',
        'report',
        'scenario',
        'soak',
      ].sort(),
    );
  });

  it.each(SCRIPTS)('%s --help prints its options and exits 0', (name, file) => {
    const r = run(file, ['--help']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`npm run ${name} --`);
    expect(r.stdout).toMatch(/^ {2}-h, --help {2,}this text$/m);
    expect(r.stderr).toBe('');
  });

  it.each(SCRIPTS)('%s: an unknown option is one line and exit 2, not a stack', (_name, file) => {
    const r = run(file, ['--no-such-option']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("Unknown option '--no-such-option' (--help lists the options)\n");
  });

  it('compare names the scenario it runs and its ETA', () => {
    const r = run('dist/scripts/compare.js', ['router', '--eta']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^compare router runs the scenario routers: 11 variants × 5 repetitions × \(3 s warmup \+ 10 s\) \+ start-up ≈ 13 min 22 s\n$/);
  });

  it('the gateway bin names itself', () => {
    const r = run('dist/core/cli.js', ['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: ts-gateway \[options\]/m);
  });
});
