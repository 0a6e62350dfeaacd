import { createHash } from 'node:crypto';
import { PassThrough, pipeline, Readable } from 'node:stream';
import type { MirrorConfig, RouteConfig } from '../config/types.js';
import { UpstreamClientError, type UpstreamRequestOptions, type UpstreamResponse } from '../contracts/upstream.js';
import type { RequestState } from '../data/request-state.js';
import { buildRequestHeaders, buildResponseHeaders, forwardingInfo } from './headers.js';
import { DigestTap, MirrorComparison, namedHeaders, sha256, type AnswerSide } from './mirror-compare.js';
import { upstreamTarget, type ProxyPath } from './path.js';
import type { Target } from './target.js';
import type { TrustedProxies } from './trust.js';
import type { UpstreamGroup } from './upstream.js';

/** Sent on every mirrored request, so the mirror can tell shadow traffic from real traffic (side effects, logs). */
export const MIRROR_HEADER = 'x-gateway-mirror';

function noop(): void {}

/**
 * A route's `mirror`: sends a copy of `percent` of its requests to another upstream and throws the answers away,
 * or, with `compare`, compares each with the primary's. Bounded so that a slow or dead mirror costs the primary
 * nothing it cannot measure: at most `maxConcurrent` mirrored exchanges per worker (past it a request is not
 * mirrored and counted as dropped), each ending within `timeoutMs`, each holding at most `maxBodyBytes` of
 * request body; the mirror's answer body is read and digested as it streams, never held.
 */
export class RouteMirror {
  sent = 0;
  completed = 0;
  inFlight = 0;
  readonly dropped = { concurrency: 0, bodyTooLarge: 0, noTarget: 0, clientAborted: 0 };
  readonly failed = { timeout: 0, error: 0 };
  /** mirror.compare's counters and kept pairs; null without compare */
  readonly comparison: MirrorComparison | null;
  /** exchanges holding a slot: cut when the generation closes, so a stuck mirror never holds a reload or shutdown */
  private readonly live = new Set<MirrorExchange>();
  /** the share of requests mirrored so far, in percent: a request is mirrored each time it reaches 100 */
  private share = 0;

  constructor(
    readonly routeName: string,
    readonly route: RouteConfig,
    readonly cfg: MirrorConfig,
    readonly group: UpstreamGroup,
    private readonly trust: TrustedProxies,
  ) {
    this.comparison = cfg.compare ? new MirrorComparison(cfg.keepDifferences) : null;
  }

  /**
   * Starts mirroring this request (a body is captured from here on; the copy goes out with dispatch() or once the
   * body is complete), or returns null when it is not mirrored (not in the sampled share, at the
   * concurrency cap, body over maxBodyBytes). Sampling is a running share, not a dice roll: 25 % mirrors exactly
   * every fourth request.
   */
  begin(ctx: RequestState, path: ProxyPath): MirrorExchange | null {
    const cfg = this.cfg;
    this.share += cfg.percent;
    if (this.share < 100) return null;
    this.share -= 100;
    if (this.inFlight >= cfg.maxConcurrent) {
      this.dropped.concurrency++;
      return null;
    }
    const req = ctx.req!;
    const hasBody = ctx.requestBody !== null;
    // a body a hook already read to its end has nothing left to copy (and no 'end' to wait for)
    const copyBody = hasBody && cfg.body && !req.readableEnded;
    if (copyBody) {
      const length = req.headers['content-length'];
      if (length !== undefined && Number(length) > cfg.maxBodyBytes) {
        this.dropped.bodyTooLarge++;
        return null;
      }
    }
    const headers = buildRequestHeaders(req, forwardingInfo(req, this.trust), this.route.requestHeaders, false, ctx.upstreamHeaders);
    headers[MIRROR_HEADER] = '1';
    if (hasBody && !copyBody) headers['content-length'] = '0';
    const x = new MirrorExchange(this, ctx.method, upstreamTarget(ctx.url, ctx.params, path), ctx.url, headers, req.headers.host);
    this.inFlight++;
    this.live.add(x);
    if (copyBody) x.capture(req);
    return x;
  }

  /** One mirrored exchange is over (answered, failed or abandoned): its slot is free. */
  release(x: MirrorExchange): void {
    this.inFlight--;
    this.live.delete(x);
  }

  /** The generation is closing: every exchange in flight is cut now (each counts as failed). */
  close(): void {
    for (const x of [...this.live]) x.cut();
  }

  stats(): Record<string, unknown> {
    return {
      upstream: this.cfg.upstream,
      percent: this.cfg.percent,
      sent: this.sent,
      completed: this.completed,
      inFlight: this.inFlight,
      dropped: { ...this.dropped },
      failed: { ...this.failed },
      compare: this.comparison === null ? null : this.comparison.stats(),
    };
  }
}

/**
 * One mirrored request: captures the request body while the primary streams it (the primary reads a PassThrough
 * fed from the same stream), sends the copy, reads the answer, and for `compare` waits for both answers.
 */
export class MirrorExchange {
  /** what the primary must read the request body from instead of the client's request (null: no body copied) */
  primaryBody: PassThrough | null = null;
  private primary: AnswerSide | null = null;
  private mirror: AnswerSide | null = null;
  private mirrorError: string | null = null;
  /** the mirror's part is over (answered, failed or never sent) */
  private mirrorDone = false;
  private primaryDone = false;
  private primaryIncomplete = false;
  private timer: NodeJS.Timeout | null = null;
  private timedOut = false;
  private inFlight: UpstreamRequestOptions | null = null;
  private answerBody: Readable | null = null;

  constructor(
    private readonly owner: RouteMirror,
    private readonly method: string,
    private readonly path: string,
    private readonly url: string,
    private readonly headers: Record<string, string | string[]>,
    private readonly clientHost: string | undefined,
  ) {}

  /** Tee the client's body: the primary reads primaryBody; a copy up to maxBodyBytes is kept, then sent. */
  capture(req: Readable): void {
    const max = this.owner.cfg.maxBodyBytes;
    const tee = new PassThrough();
    // the primary's reader sees a cut body by its early 'close' (as with the client's request itself)
    tee.on('error', noop);
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      req.removeListener('data', onData);
      req.removeListener('end', onEnd);
      req.removeListener('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= max) {
        chunks.push(chunk);
        return;
      }
      // chunked, so no Content-Length to refuse it by up front: given up once it passes the bound
      stop();
      chunks.length = 0;
      this.owner.dropped.bodyTooLarge++;
      this.abandon();
    };
    const onEnd = (): void => {
      stop();
      setImmediate(sendWithBody, this, Buffer.concat(chunks, size));
    };
    const onClose = (): void => {
      if (req.readableEnded) return;
      stop();
      // the primary must see the body end early too, as it would reading the request itself
      tee.destroy(new Error('the client request body ended early'));
      this.owner.dropped.clientAborted++;
      this.abandon();
    };
    // both listeners go on in this same turn, before the stream starts flowing: neither misses a chunk
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onClose);
    req.pipe(tee);
    this.primaryBody = tee;
  }

  /**
   * Called once the primary request is on its way: a copy without a body to wait for goes out after the I/O
   * callbacks already due (setImmediate), so the mirror's work (a connection, a write) never comes before the
   * primary's, nor before the other requests' answers that arrived in the same turn.
   */
  dispatch(): void {
    if (this.primaryBody === null) setImmediate(sendWithoutBody, this);
  }

  /** Never sent (body too large, client gone): the slot is freed and the comparison skipped. */
  private abandon(): void {
    this.mirrorDone = true;
    this.mirrorError = null;
    this.owner.release(this);
    this.skipComparison();
  }

  send(body: Buffer | null): void {
    const owner = this.owner;
    const cfg = owner.cfg;
    const now = Date.now();
    const target = owner.group.pick(now, null, 0);
    if (target === null) {
      owner.dropped.noTarget++;
      this.abandon();
      return;
    }
    const headers = this.headers;
    headers.host = owner.route.preserveHost && this.clientHost !== undefined ? this.clientHost : target.host;
    if (body !== null) headers['content-length'] = String(body.length);
    const probe = target.dispatch();
    const options: UpstreamRequestOptions = {
      method: this.method,
      path: target.basePath === '' ? this.path : target.basePath + this.path,
      headers,
      body: body === null ? null : Readable.from([body], { objectMode: false }),
      headersTimeoutMs: cfg.timeoutMs,
      idleTimeoutMs: cfg.timeoutMs,
      abort: null,
    };
    this.inFlight = options;
    owner.sent++;
    this.timer = setTimeout(() => this.expire(), cfg.timeoutMs);
    this.timer.unref();
    const sentAt = performance.now();
    target.client.request(options).then(
      (res) => this.answered(res, target, probe, sentAt),
      (err: unknown) => {
        target.complete(false, probe, Date.now());
        this.failed(err instanceof UpstreamClientError ? err.kind : 'reset');
      },
    );
  }

  /** timeoutMs passed: whatever is in flight is cut (the exchange then fails as a timeout). */
  private expire(): void {
    this.timer = null;
    this.timedOut = true;
    this.cut();
  }

  /** Aborts the request or destroys the answer's body, whichever is in flight; the exchange then fails. */
  cut(): void {
    const abort = this.inFlight?.abort;
    if (abort !== null && abort !== undefined) abort();
    else this.answerBody?.destroy();
  }

  private answered(res: UpstreamResponse, target: Target, probe: boolean, sentAt: number): void {
    const ms = performance.now() - sentAt;
    const status = res.statusCode;
    const success = status !== 502 && status !== 503 && status !== 504;
    const compare = this.owner.cfg.compare;
    const side = compare
      ? { status, headers: namedHeaders(buildResponseHeaders(res.headers, this.owner.route.responseHeaders, false), this.owner.cfg.compareHeaders), ms }
      : null;
    const body = res.body;
    if (Buffer.isBuffer(body)) {
      target.complete(success, probe, Date.now());
      this.finished(side === null ? null : { ...side, bodySha256: sha256(body) });
      return;
    }
    // read to the end so its connection goes back to the pool; digested as it streams, never kept
    const hash = compare ? createHash('sha256') : null;
    this.answerBody = body;
    body.on('error', noop);
    body.on('data', (chunk: Buffer) => hash?.update(chunk));
    body.once('close', () => {
      this.answerBody = null;
      if (body.readableEnded) {
        target.complete(success, probe, Date.now());
        this.finished(side === null ? null : { ...side, bodySha256: hash!.digest('hex') });
      } else {
        target.complete(false, probe, Date.now());
        this.failed('body');
      }
    });
  }

  private finished(side: AnswerSide | null): void {
    this.clearTimer();
    this.owner.completed++;
    this.owner.release(this);
    this.mirror = side;
    this.mirrorDone = true;
    this.settle();
  }

  private failed(kind: string): void {
    this.clearTimer();
    // the client's own headers timeout is set to timeoutMs too: whichever fires first, it is the mirror's timeout
    const timeout = this.timedOut || kind === 'headers-timeout';
    if (timeout) this.owner.failed.timeout++;
    else this.owner.failed.error++;
    this.owner.release(this);
    this.mirrorError = timeout ? `timeout after ${this.owner.cfg.timeoutMs} ms` : `${kind} error`;
    this.mirrorDone = true;
    this.settle();
  }

  private clearTimer(): void {
    this.inFlight = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * The primary's answer is staged on ctx, `ms` after it was sent. With compare, its body is digested on its way
   * to the client (ctx.body becomes a pass-through that hashes); the comparison runs once both bodies are read.
   */
  primaryAnswered(ctx: RequestState, ms: number): void {
    if (!this.owner.cfg.compare) return;
    const side = { status: ctx.statusCode, headers: namedHeaders(ctx.responseHeaders ?? {}, this.owner.cfg.compareHeaders), ms };
    const body = ctx.body;
    if (Buffer.isBuffer(body) || body === null || body === undefined) {
      this.primaryIs({ ...side, bodySha256: sha256(Buffer.isBuffer(body) ? body : Buffer.alloc(0)) });
      return;
    }
    if (!(body instanceof Readable)) {
      this.skipComparison();
      return;
    }
    const tap = new DigestTap((digest) => this.primaryIs({ ...side, bodySha256: digest }));
    ctx.body = tap;
    // pipeline: a client that leaves destroys the tap, and with it the upstream body (its connection is released)
    pipeline(body, tap, (err) => {
      if (err !== null && err !== undefined) this.skipComparison();
    });
  }

  /** The primary failed (no answer to compare) or its body was cut: nothing to compare. */
  primaryFailed(): void {
    // a body the primary never read must still drain, or the client's connection stalls on the unread bytes
    const tee = this.primaryBody;
    if (tee !== null && !tee.readableEnded) tee.resume();
    this.skipComparison();
  }

  private primaryIs(side: AnswerSide): void {
    this.primary = side;
    this.primaryDone = true;
    this.settle();
  }

  private skipComparison(): void {
    if (this.primaryIncomplete || this.owner.comparison === null) return;
    this.primaryIncomplete = true;
    this.owner.comparison.skipped++;
  }

  private settle(): void {
    const comparison = this.owner.comparison;
    if (!this.primaryDone || !this.mirrorDone || this.primaryIncomplete || comparison === null) return;
    // never sent at all (abandoned) leaves no error: that request is not a comparison
    if (this.mirror === null && this.mirrorError === null) return;
    comparison.add(this.method, this.url, this.primary!, this.mirror, this.mirrorError);
  }
}

function sendWithoutBody(x: MirrorExchange): void {
  x.send(null);
}

function sendWithBody(x: MirrorExchange, body: Buffer): void {
  x.send(body);
}
