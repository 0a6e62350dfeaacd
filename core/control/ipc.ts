import type { Worker } from 'node:cluster';

/**
 * Sends over a cluster IPC channel that the other side may have just closed.
 *
 * A peer killed with SIGKILL closes its end at once, but this process only learns of it when the event loop
 * reads the channel's EOF: until then `isConnected()` / `process.connected` still say true, the write fails
 * with EPIPE, and without a callback Node reports that as an `'error'` event on the Worker (or on `process`).
 * Nobody listens for those, so one worker dying between two metrics polls used to end the primary. With a
 * callback Node hands the error to it instead of emitting it. A lost message to a dead peer needs no handling
 * of its own: its `'exit'` (primary side) or `'disconnect'` (worker side) handler does the accounting, and
 * `onClosed` lets a caller waiting for an answer stop waiting.
 */
export function sendToWorker(worker: Worker, msg: unknown, onClosed?: (err: Error) => void): boolean {
  if (!worker.isConnected()) {
    onClosed?.(new Error('worker IPC channel closed'));
    return false;
  }
  return worker.send(msg as Parameters<Worker['send']>[0], (err) => {
    if (err !== null) onClosed?.(err);
  });
}

/** The worker side of sendToWorker: a message to the primary, which may be gone. */
export function sendToPrimary(msg: unknown, onClosed?: (err: Error) => void): boolean {
  if (process.send === undefined || !process.connected) {
    onClosed?.(new Error('primary IPC channel closed'));
    return false;
  }
  return process.send(msg, undefined, undefined, (err: Error | null) => {
    if (err !== null) onClosed?.(err);
  });
}
