import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** npm as a user runs it, bounded: an install from the cache takes tens of seconds on a loaded machine. */
export const npm = (args: string[], cwd: string) => execFileP('npm', args, { cwd, encoding: 'utf8', timeout: 180_000, maxBuffer: 16 * 1024 * 1024 });

/**
 * The production install command, offline-first: --prefer-offline reuses the npm cache the development install
 * filled (these machines reach no registry), --ignore-scripts as in the README's production install.
 */
export const npmCiProduction = (cwd: string, extra: string[] = []) =>
  npm(['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', ...extra], cwd);

export interface InstalledGateway {
  proc: ChildProcess;
  port: number;
  /** null when the admin listener is disabled */
  adminPort: number | null;
  exited: Promise<number | null>;
  output: () => string;
}

/** Starts an installed gateway and resolves once its "gateway listening" line names its ports. */
export async function startInstalled(argv: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<InstalledGateway> {
  const proc = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  let out = '';
  const ports = await new Promise<{ port: number; adminPort: number | null }>((res, rej) => {
    const onData = (c: Buffer): void => {
      out += c.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"msg":"gateway listening"')) continue;
        try {
          const j = JSON.parse(line) as { port: number; admin: string };
          res({ port: j.port, adminPort: j.admin === 'disabled' ? null : Number(j.admin.slice(j.admin.lastIndexOf(':') + 1)) });
        } catch {
          /* a line still being written */
        }
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => rej(new Error(`gateway exited ${code}:\n${out}`)));
  });
  return { proc, ...ports, exited, output: () => out };
}
