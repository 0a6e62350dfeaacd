import type { ChildProcess } from 'node:child_process';
import type { LoaderJob, LoaderOutcome } from './loader-child.js';
import { distScript } from './paths.js';
import { spawnNode, stopProcess, tail } from './processes.js';

export type { LoaderJob, LoaderOutcome };

/** Runner-side handle of the load-generator child process. */
export class Loader {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(o: LoaderOutcome): void; reject(e: Error): void }>();
  private readonly stderr = tail();

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (m: { type: string; id?: number; outcome?: LoaderOutcome; message?: string }) => {
      if (m.id === undefined) return;
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      this.pending.delete(m.id);
      if (m.type === 'result') p.resolve(m.outcome!);
      else p.reject(new Error(`load generator: ${m.message}`));
    });
    child.stderr?.on('data', (d: Buffer) => this.stderr.push(d));
    child.on('exit', (code, signal) => {
      for (const p of this.pending.values()) {
        p.reject(new Error(`load generator exited (code ${code}, signal ${signal})\n${this.stderr.text()}`));
      }
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  static async start(cpus: number[]): Promise<Loader> {
    const child = spawnNode([distScript('loader-child.js')], cpus, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const loader = new Loader(child);
    await new Promise<void>((resolve, reject) => {
      const onMsg = (m: { type: string }) => {
        if (m.type === 'ready') {
          child.off('message', onMsg);
          resolve();
        }
      };
      child.on('message', onMsg);
      child.once('exit', (code) => reject(new Error(`load generator failed to start (code ${code})\n${loader.stderr.text()}`)));
      child.once('error', reject);
    });
    return loader;
  }

  run(job: LoaderJob): Promise<LoaderOutcome> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ type: 'run', id, job });
    });
  }

  async stop(): Promise<void> {
    if (this.child.connected) this.child.disconnect();
    await stopProcess(this.child, 3000);
  }
}
