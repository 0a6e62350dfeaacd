import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { processTree, stopProcess } from '../../scripts/scenario/processes.js';
import { until } from '../support/wait.js';

/** The harness's process stop (scripts/scenario/processes.ts): gateways, stubs and loaders all go through it. */

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A parent that starts a long-lived child and prints its pid (its SIGTERM handler is set first); on SIGTERM it exits or not. */
function parentLeavingOrphan(ignoreTerm: boolean) {
  const script = `
    const { spawn } = require('node:child_process');
    process.on('SIGTERM', () => { if (!${ignoreTerm}) process.exit(0); });
    const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    process.stdout.write(String(c.pid) + '\\n');
    setInterval(() => {}, 1000);`;
  return spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
}

async function firstLine(child: ReturnType<typeof spawn>): Promise<number> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
  });
}

describe('stopProcess', () => {
  it('a parent that exits on SIGTERM: its orphaned child (a cluster worker, say) is killed too', async () => {
    const parent = parentLeavingOrphan(false);
    const orphan = await firstLine(parent);
    await until(() => processTree(parent.pid!).includes(orphan), { message: 'child in the tree' });
    await stopProcess(parent, 2000);
    await until(() => !alive(orphan), { timeoutMs: 3000, message: `orphan ${orphan} still alive` });
  });

  it('a parent that ignores SIGTERM: the whole tree is killed after the grace period', async () => {
    const parent = parentLeavingOrphan(true);
    const child = await firstLine(parent);
    await until(() => processTree(parent.pid!).includes(child), { message: 'child in the tree' });
    const started = Date.now();
    await stopProcess(parent, 300);
    expect(Date.now() - started, `exit ${parent.exitCode} ${parent.signalCode}`).toBeGreaterThanOrEqual(250);
    expect(parent.signalCode).toBe('SIGKILL');
    await until(() => !alive(child), { timeoutMs: 3000, message: `child ${child} still alive` });
  });
});
