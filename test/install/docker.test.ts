import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, posix, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../support/http.js';
import { npmCiProduction, startInstalled, type InstalledGateway } from './support.js';

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * The Dockerfile, without Docker (images cannot be pulled on these machines): its runtime stage is replayed on
 * the host. A temp folder stands for the image's filesystem; each COPY puts there exactly what the stage copies
 * (from the build context, or from the build stage, whose /src is this checkout built by the test setup), each
 * RUN is its `npm ci`, run from the npm cache; then the stage's ENTRYPOINT + CMD start the gateway, which must
 * serve and exit 0 on SIGTERM. A RUN step this test cannot replay fails it rather than being skipped.
 */

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name: string | null;
  steps: Instruction[];
}

/** Instructions by stage: comments dropped, `\` continuations joined. Enough for this Dockerfile's syntax. */
function parseDockerfile(text: string): Stage[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const stages: Stage[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (m === null) throw new Error(`Dockerfile: cannot parse ${line}`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!;
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      stages.push({ from: f[1]!, name: f[2] ?? null, steps: [] });
    } else if (op !== 'ARG' || stages.length > 0) {
      const stage = stages.at(-1);
      if (stage === undefined) throw new Error(`Dockerfile: ${op} before FROM`);
      stage.steps.push({ op, args });
    }
  }
  return stages;
}

/** `--flag=value` options in front of an instruction's arguments, and the rest. */
function options(args: string): { flags: Record<string, string>; rest: string } {
  const flags: Record<string, string> = {};
  let rest = args;
  for (let m = /^--([\w-]+)=(\S+)\s+/.exec(rest); m !== null; m = /^--([\w-]+)=(\S+)\s+/.exec(rest)) {
    flags[m[1]!] = m[2]!;
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
}

const execForm = (args: string): string[] => {
  const v = JSON.parse(args) as unknown;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`not exec form: ${args}`);
  return v as string[];
};

const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const runtime = dockerfile.at(-1)!;
const build = dockerfile.find((s) => s.name === 'build')!;

describe('Dockerfile: shape', () => {
  it('two stages: build (npm ci + npm run build) and runtime', () => {
    expect(dockerfile.map((s) => s.name)).toEqual(['build', 'runtime']);
    const runs = build.steps.filter((s) => s.op === 'RUN').map((s) => options(s.args).rest);
    expect(runs).toEqual([expect.stringMatching(/^npm ci\b/), 'npm run build']);
    expect(runs[0]).not.toContain('--omit=dev');
  });

  it('the runtime stage runs as a non-root user and starts node in exec form (SIGTERM reaches the gateway)', () => {
    const user = runtime.steps.filter((s) => s.op === 'USER').at(-1)?.args ?? 'root';
    expect(user).toMatch(/^[1-9]\d*(:\d+)?$/); // numeric, so Kubernetes' runAsNonRoot can check it
    const entrypoint = execForm(runtime.steps.find((s) => s.op === 'ENTRYPOINT')!.args);
    expect(entrypoint).toEqual(['node', 'dist/core/cli.js']);
    execForm(runtime.steps.find((s) => s.op === 'CMD')!.args);
  });

  it('.dockerignore keeps host node_modules and dist/ out, and excludes nothing a COPY needs', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist']));
    const sources = dockerfile.flatMap((s) =>
      s.steps.filter((i) => i.op === 'COPY' && options(i.args).flags.from === undefined).flatMap((i) => options(i.args).rest.split(/\s+/).slice(0, -1)),
    );
    for (const src of sources) {
      expect(existsSync(join(ROOT, src)), `COPY ${src}: not in the build context`).toBe(true);
      for (const pattern of ignored)
        expect(src === pattern || src.startsWith(`${pattern}/`), `COPY ${src} is excluded by .dockerignore ${pattern}`).toBe(false);
    }
  });
});

describe('Dockerfile runtime stage replayed on the host', () => {
  let image: string;
  let workdir = '/';
  const env: Record<string, string> = {};
  let gw: InstalledGateway | undefined;
  /** a path of the image, inside the temp folder that stands for its filesystem */
  const inImage = (p: string): string => join(image, posix.resolve(workdir, p));

  beforeAll(async () => {
    image = mkdtempSync(join(tmpdir(), 'gw-image-'));
    const buildWorkdir = build.steps.filter((s) => s.op === 'WORKDIR').at(-1)!.args;
    for (const step of runtime.steps) {
      const { flags, rest } = options(step.args);
      if (step.op === 'WORKDIR') {
        workdir = posix.resolve(workdir, rest);
        mkdirSync(inImage('.'), { recursive: true });
      } else if (step.op === 'ENV') {
        const [k, v] = rest.split('=');
        env[k!] = v!;
      } else if (step.op === 'COPY') {
        const parts = rest.split(/\s+/);
        const dest = parts.pop()!;
        for (const src of parts) {
          // from the build stage: its WORKDIR is this checkout, built by the test setup exactly as `npm run build`
          const from = flags.from === undefined ? join(ROOT, src) : join(ROOT, posix.relative(buildWorkdir, src));
          const to = dest.endsWith('/') ? join(inImage(dest), posix.basename(src)) : inImage(dest);
          mkdirSync(dirname(to), { recursive: true });
          cpSync(from, to, { recursive: true });
        }
      } else if (step.op === 'RUN') {
        const cmd = rest.split(/\s+/);
        if (cmd[0] !== 'npm' || cmd[1] !== 'ci') throw new Error(`RUN ${rest}: this test cannot replay it on the host`);
        expect(cmd).toContain('--omit=dev');
        await npmCiProduction(inImage('.'), cmd.slice(2));
      }
    }
  }, 240_000);

  afterAll(() => {
    if (gw !== undefined && gw.proc.exitCode === null) gw.proc.kill('SIGKILL');
    if (image !== undefined) rmSync(image, { recursive: true, force: true });
  });

  it('holds the built gateway, production dependencies and the default config, nothing else', () => {
    expect(readdirSync(inImage('.')).sort()).toEqual(['dist', 'node_modules', 'package-lock.json', 'package.json']);
    expect(readdirSync(inImage('dist')).sort()).toEqual(['core', 'variants']);
    for (const dev of ['typescript', 'vitest', 'kubernetes-models']) expect(existsSync(inImage(`node_modules/${dev}`)), dev).toBe(false);
    expect(existsSync(inImage('/etc/ts-gateway/gateway.json'))).toBe(true);
  });

  it('ENTRYPOINT + CMD start the gateway on the default config; it serves, and exits 0 on SIGTERM', async () => {
    const argv = [...execForm(runtime.steps.find((s) => s.op === 'ENTRYPOINT')!.args), ...execForm(runtime.steps.find((s) => s.op === 'CMD')!.args)];
    // node is this node; absolute paths are paths of the image; ports become ephemeral and loopback-only here
    const hostArgv = argv.map((a, i) => (i === 0 && a === 'node' ? process.execPath : isAbsolute(a) ? inImage(a) : a));
    gw = await startInstalled([...hostArgv, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1'], inImage('.'), { ...process.env, ...env });
    const r = await request(`http://127.0.0.1:${gw.port}/ping`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('pong');
    gw.proc.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    expect(gw.output()).toContain('"msg":"stopped"');
  }, 90_000);
});
