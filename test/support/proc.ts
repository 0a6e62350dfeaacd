import { readFileSync } from 'node:fs';

/**
 * True once `pid` has exited and released its descriptors: gone, or a zombie whose threads are all gone. A
 * node process's main thread turns Z while its other threads are still exiting, and its descriptors (an IPC
 * channel, say) close only with the last of them.
 */
export function exitedOrZombie(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return /^State:\s+Z/m.test(status) && /^Threads:\s+1$/m.test(status);
  } catch {
    return true;
  }
}

/**
 * Blocks this thread until `pid` has exited. Blocking is the point: this process's event loop must not run
 * (and learn of the exit) before the caller acts in the window where the peer is dead and nobody knows yet.
 */
export function blockUntilExited(pid: number, timeoutMs = 5000): void {
  const deadline = Date.now() + timeoutMs;
  while (!exitedOrZombie(pid)) if (Date.now() > deadline) throw new Error(`process ${pid} did not exit within ${timeoutMs} ms`);
}
