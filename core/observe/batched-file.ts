import { closeSync, openSync, write, writeSync } from 'node:fs';

/**
 * Appends lines to a file in batches: queued in memory, written once BATCH_BYTES are queued (one write in flight
 * at a time) and at least every FLUSH_MS. Measured against sonic-boom (pino.destination) with the same batching:
 * 0.6 against 2.5 µs of CPU per line, most of a static request's access-log cost. Lines are never split across
 * writes and the file is opened with O_APPEND, so several processes can append to one file.
 *
 * reopen() (logrotate moved the file) opens the path anew once the write in flight is done; close() writes what is
 * queued synchronously (a shutdown must not lose the last lines).
 */
const BATCH_BYTES = 8192;
const FLUSH_MS = 1000;

export class BatchedFile {
  private fd: number | null = null;
  private queued: string[] = [];
  private queuedBytes = 0;
  private writing = false;
  private reopenPending = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly path: string,
    /** an open or write failure (the lines of that batch are lost; the next batch tries again) */
    private readonly onError: (err: Error) => void,
  ) {
    this.open();
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  append(line: string): void {
    if (this.closed) return;
    this.queued.push(line);
    this.queuedBytes += line.length;
    if (this.queuedBytes >= BATCH_BYTES) this.flush();
  }

  reopen(): void {
    if (this.writing) this.reopenPending = true;
    else this.swapFd();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    // what is queued goes out now; a write still in flight keeps the fd open until it is done
    const rest = this.take();
    if (this.fd === null) return;
    try {
      if (rest !== '') writeSync(this.fd, rest);
    } catch (err) {
      this.onError(err as Error);
    }
    if (!this.writing) closeSync(this.fd);
  }

  private flush(): void {
    if (this.writing || this.queuedBytes === 0) return;
    if (this.fd === null) {
      this.open();
      if (this.fd === null) {
        this.take();
        return;
      }
    }
    this.writing = true;
    const fd = this.fd;
    write(fd, this.take(), null, 'utf8', (err) => {
      this.writing = false;
      if (err !== null) this.onError(err);
      if (this.closed) {
        closeSync(fd);
        return;
      }
      if (this.reopenPending) {
        this.reopenPending = false;
        this.swapFd();
      }
      if (this.queuedBytes >= BATCH_BYTES) this.flush();
    });
  }

  private take(): string {
    const text = this.queued.length === 1 ? this.queued[0]! : this.queued.join('');
    this.queued = [];
    this.queuedBytes = 0;
    return text;
  }

  private swapFd(): void {
    const old = this.fd;
    this.fd = null;
    this.open();
    if (old !== null) closeSync(old);
  }

  private open(): void {
    try {
      this.fd = openSync(this.path, 'a');
    } catch (err) {
      this.onError(err as Error);
    }
  }
}
