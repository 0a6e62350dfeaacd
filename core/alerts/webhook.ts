import { request as httpRequest, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { WebhookNotifierConfig } from '../config/types.js';

/** One delivery to send: the JSON body and the rule it reports on (for /alerts' lastNotifyError). */
export interface Delivery {
  rule: string;
  body: string;
}

/** Called after every attempt: null on success, else what went wrong (with the attempt number). */
export type DeliveryResult = (rule: string, error: string | null) => void;

export interface WebhookStats {
  delivered: number;
  failedAttempts: number;
  /** deliveries given up after maxAttempts */
  abandoned: number;
  /** deliveries dropped because the queue was full or the notifier closed */
  dropped: number;
}

/**
 * POSTs Alertmanager payloads to one receiver, one at a time (a firing is delivered before its resolution), from a
 * bounded queue. Nothing here is awaited by the evaluation loop: send() only enqueues. Every attempt has a deadline
 * (timeoutMs, connect to last byte), failures retry with exponential backoff, and close() waits at most a bounded
 * grace before it abandons what is left, so a dead, slow or hanging receiver costs memory bounded by maxQueue and
 * never blocks evaluation, requests or shutdown.
 */
export class WebhookNotifier {
  readonly stats: WebhookStats = { delivered: 0, failedAttempts: 0, abandoned: 0, dropped: 0 };
  private readonly queue: Delivery[] = [];
  private busy = false;
  private closed = false;
  private inFlight: ClientRequest | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private drained: (() => void) | null = null;

  constructor(
    readonly config: WebhookNotifierConfig,
    private readonly onResult: DeliveryResult,
  ) {}

  send(d: Delivery): void {
    if (this.closed) {
      this.stats.dropped++;
      return;
    }
    if (this.queue.length >= this.config.maxQueue) {
      const lost = this.queue.shift()!;
      this.stats.dropped++;
      this.onResult(lost.rule, `dropped: ${this.config.maxQueue} notifications already waiting for ${this.config.url}`);
    }
    this.queue.push(d);
    this.pump();
  }

  private pump(): void {
    if (this.busy || this.closed) return;
    const next = this.queue.shift();
    if (next === undefined) {
      this.drained?.();
      return;
    }
    this.busy = true;
    this.attempt(next, 1);
  }

  private attempt(d: Delivery, n: number): void {
    this.post(d.body, (error) => {
      this.inFlight = null;
      if (error === null) {
        this.stats.delivered++;
        this.onResult(d.rule, null);
        this.next();
        return;
      }
      this.stats.failedAttempts++;
      const giveUp = n >= this.config.maxAttempts || this.closed;
      this.onResult(d.rule, `attempt ${n}/${this.config.maxAttempts} to ${this.config.url}: ${error}${giveUp ? ' (given up)' : ''}`);
      if (giveUp) {
        this.stats.abandoned++;
        this.next();
        return;
      }
      const delay = Math.min(this.config.maxBackoffMs, this.config.backoffMs * 2 ** (n - 1));
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        if (this.closed) {
          this.stats.abandoned++;
          this.next();
        } else this.attempt(d, n + 1);
      }, delay);
      this.retryTimer.unref();
    });
  }

  private next(): void {
    this.busy = false;
    this.pump();
  }

  /** One POST; `done` is called exactly once, with null on a 2xx. */
  private post(body: string, done: (error: string | null) => void): void {
    let finished = false;
    const finish = (error: string | null): void => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      done(error);
    };
    // new URL and http.request throw, rather than emit 'error', for a URL or header they refuse. Thrown here the
    // notifier stayed busy for good (every later notification queued behind nothing), the evaluation that sent it
    // stopped halfway through its rules, and a retry would have thrown from a timer: an uncaught exception that
    // ends the primary. A refused request is a failed attempt like any other.
    let req: ClientRequest;
    try {
      const url = new URL(this.config.url);
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      req = send(url, {
        method: 'POST',
        headers: { ...this.config.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        // a fresh connection per attempt: a receiver that hung once must not hold a pooled socket for the next
        agent: false,
      });
    } catch (err) {
      queueMicrotask(() => done((err as Error).message));
      return;
    }
    this.inFlight = req;
    const deadline = setTimeout(() => {
      req.destroy();
      finish(`no answer within ${this.config.timeoutMs} ms`);
    }, this.config.timeoutMs);
    deadline.unref();
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => finish(res.statusCode! >= 200 && res.statusCode! < 300 ? null : `HTTP ${res.statusCode}`));
      res.on('error', (err) => finish(err.message));
    });
    req.on('error', (err) => finish(err.message));
    req.end(body);
  }

  /**
   * Stops taking notifications; resolves once the queue is delivered or `graceMs` has passed, whichever is first.
   * What is still queued or in flight then is abandoned (counted in stats.dropped / abandoned).
   */
  close(graceMs: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    const idle = !this.busy && this.queue.length === 0;
    if (idle) {
      this.closed = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const stop = (): void => {
        clearTimeout(timer);
        this.drained = null;
        this.closed = true;
        if (this.retryTimer !== null) clearTimeout(this.retryTimer);
        this.retryTimer = null;
        this.inFlight?.destroy();
        this.inFlight = null;
        this.stats.dropped += this.queue.length;
        this.queue.length = 0;
        resolve();
      };
      const timer = setTimeout(stop, graceMs);
      timer.unref();
      this.drained = stop;
    });
  }
}
