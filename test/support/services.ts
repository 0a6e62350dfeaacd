import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { it } from 'vitest';

export interface Tool {
  available: boolean;
  /** Empty when available; otherwise "<name> not installed (<install command>)". */
  skipReason: string;
}

/** CI=true (any value but empty/false/0, as CI services set it) turns a missing service into a failure. */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.CI ?? '').trim().toLowerCase();
  return v !== '' && v !== 'false' && v !== '0';
}

/** The executable `name` resolves to on PATH, like `command -v`, without spawning a shell. */
export function onPath(name: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* not in this directory */
    }
  }
  return null;
}

const seen = new Map<string, Tool>();

/**
 * A system binary some tests need (redis-server, nginx, openssl, h2load, curl, cc). Call it at the top of the
 * test file, then gate the dependent tests with `describe.skipIf(!tool.available)` / `it.skipIf(...)`.
 *
 * When the binary is missing, one extra test named "<name> is installed" is registered in the calling file:
 * outside CI it is reported as skipped with the install command as its note (a fresh machine with only Node
 * and npm still gets a green run, and is told what it did not test); under CI=true it fails with the same text,
 * because CI promises to have installed every service (.ci/run) and a silent skip there would hide a gap.
 */
export function needTool(name: string, install: string, env: NodeJS.ProcessEnv = process.env): Tool {
  let tool = seen.get(name);
  if (tool === undefined) {
    tool = onPath(name, env.PATH ?? '') !== null ? { available: true, skipReason: '' } : { available: false, skipReason: `${name} not installed (${install})` };
    seen.set(name, tool);
  }
  if (!tool.available) {
    const reason = tool.skipReason;
    if (inCi(env)) {
      it(`${name} is installed`, () => {
        throw new Error(`${reason}: CI=true requires every service the tests use (.ci/run installs them)`);
      });
    } else {
      it(`${name} is installed`, (ctx) => {
        ctx.skip(`skipped: ${reason}`);
      });
    }
  }
  return tool;
}

/**
 * The services the suite uses, with the Debian/Ubuntu package that provides each. wrk is not among them: the
 * scenario runner falls back to autocannon without it, and no test depends on which loader ran.
 */
export const INSTALL = {
  'redis-server': 'apt-get install redis-server',
  nginx: 'apt-get install nginx',
  haproxy: 'apt-get install haproxy',
  caddy: 'apt-get install caddy',
  openssl: 'apt-get install openssl',
  h2load: 'apt-get install nghttp2-client',
  curl: 'apt-get install curl',
  cc: 'apt-get install gcc',
  // Debian's browser, driven by playwright-core (test/support/browser.ts); a downloaded browser is never used.
  chromium: 'apt-get install chromium',
  promtool: 'apt-get install prometheus',
} as const;

export type ServiceName = keyof typeof INSTALL;

export function needService(name: ServiceName): Tool {
  return needTool(name, INSTALL[name]);
}

/** One line naming every missing service, for the start of a run (the default reporter hides skip notes). */
export function missingServicesLine(env: NodeJS.ProcessEnv = process.env): string | null {
  const missing = (Object.keys(INSTALL) as ServiceName[]).filter((n) => onPath(n, env.PATH ?? '') === null);
  if (missing.length === 0) return null;
  const list = missing.map((n) => `${n} (${INSTALL[n]})`).join(', ');
  return inCi(env) ? `not installed, so their tests FAIL under CI=true: ${list}` : `not installed, so their tests are skipped: ${list}`;
}
