import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { rawErrorResponse } from '../../../core/base/raw-http.js';
import type { ServerEngineHandlers } from '../../../core/contracts/server.js';
import { PooledWriter, type BufferPool } from '../../pool/buffer/index.js';
import { HttpParserError } from './errors.js';
import { BodyKind, RequestParser, type RequestHead, type RequestSink } from './parser.js';
import { abortedError, OwnRequest, type RequestOwner } from './request.js';
import { OwnResponse, type ResponseOwner } from './response.js';
import { attachUserBuffer, pushReadsToStream } from './user-buffer.js';

/** What a connection reads from its engine (engine.ts); the engine's settings may change on a reload. */
export interface ConnectionHost {
  readonly handlers: ServerEngineHandlers;
  readonly maxHeaderSize: number;
  readonly keepAliveLine: string;
  readonly hstsLine: string;
  /** slabs for response heads (OwnEngineOptions.headPool), or null: heads go out as latin1 strings */
  readonly headPool: BufferPool | null;
  /** plain-TCP reads land here (user-buffer.ts), or null: 'data' events */
  readonly readBuffer: Buffer | null;
  /** a handler threw (counted; the connection is cut) */
  onHandlerError(err: unknown): void;
  forget(conn: Connection): void;
}

/** Why the socket is paused: any one reason keeps it paused. */
const enum Pause {
  /** a body consumer is not reading (push returned false) */
  Body = 1,
  /** too many parsed requests wait for their turn */
  Queue = 2,
  /** the connection is finishing (an error answer, an upgrade waiting for earlier answers) */
  Stop = 4,
}

/** Parsed requests waiting for earlier answers beyond which the socket stops being read. */
const MAX_QUEUED = 16;
const EMPTY = Buffer.alloc(0);

function noop(): void {}

/**
 * One client connection: bytes in through the parser, requests out to the pipeline one at a time, in arrival
 * order. Pipelined requests are parsed as they arrive but a request is handed to `handlers.request` only once
 * the answer before it finished, so answers can never overtake each other and the response writes straight to
 * the socket. A request waiting its turn buffers its body in its own Readable (backpressure pauses the socket).
 *
 * Timestamps (ms) are read by the engine's sweep (engine.ts), which answers 408 or closes an idle connection.
 */
export class Connection implements RequestSink, RequestOwner, ResponseOwner {
  readonly socket: Socket;
  readonly headWriter: PooledWriter | null;
  private readonly parser: RequestParser;
  /** requests parsed and not yet answered, in arrival order; [0] is the one being answered */
  private readonly queue: OwnRequest[] = [];
  /** the request whose body the parser is reading */
  private reading: OwnRequest | null = null;
  /** when the head being read began (0: none): headersTimeoutMs */
  headStart = 0;
  /** when the request being read began (0: none): requestTimeoutMs */
  requestStart = 0;
  /** when the connection went idle after an answer (0: not idle): keepAliveTimeoutMs */
  idleSince: number;
  closed = false;
  private paused = 0;
  /** fail() is aborting the request being read: its destroy must not cut the connection before the answer */
  private settling = false;
  /** the status of an error answer owed once the answers before it are out */
  private pendingError = 0;
  /** the client half-closed: close once the queued answers are out */
  private clientEnded = false;
  /** the response waiting for the socket's 'drain' */
  private drainWaiter: OwnResponse | null = null;
  /** bytes read past an upgrade (or CONNECT) head, for the upgrade handler */
  private upgradeHead: Buffer | null = null;
  /** reads land in the engine's shared readBuffer: bytes kept past read() are copied */
  private readonly volatile: boolean;
  private readonly dataListener = (chunk: Buffer): void => this.read(chunk);
  private readonly userRead = (n: number, buf: Buffer): boolean => {
    this.read(buf.subarray(0, n));
    return true;
  };
  private readonly endListener = (): void => this.clientEnd();
  private readonly closeListener = (): void => this.closedNow();
  private readonly drainListener = (): void => {
    const res = this.drainWaiter;
    if (res === null) return;
    this.drainWaiter = null;
    res.writableNeedDrain = false;
    res.emit('drain');
  };

  constructor(
    private readonly host: ConnectionHost,
    socket: Socket,
    now: number,
  ) {
    this.socket = socket;
    this.headWriter = host.headPool === null ? null : new PooledWriter(host.headPool, socket);
    this.idleSince = now;
    // an upgrade's body goes to the upgrade handler as tunnel bytes (as node:http): the gateway forwards the head
    // as received, so the upstream must get the body bytes it declares (test/server/common.case.ts)
    this.parser = new RequestParser(this, { maxHeaderSize: host.maxHeaderSize, upgradeAfterHead: true });
    // EPIPE/ECONNRESET are the client's business: 'close' follows and cleans up
    socket.on('error', noop);
    this.volatile = host.readBuffer !== null && attachUserBuffer(socket, host.readBuffer, this.userRead);
    if (!this.volatile) socket.on('data', this.dataListener);
    socket.on('end', this.endListener);
    socket.on('close', this.closeListener);
    socket.on('drain', this.drainListener);
  }

  get keepAliveLine(): string {
    return this.host.keepAliveLine;
  }

  get hstsLine(): string {
    return this.host.hstsLine;
  }

  /** no request in progress or queued (closeIdle may close it) */
  get idle(): boolean {
    return this.queue.length === 0 && this.reading === null && !this.parser.readingHead && this.upgradeHead === null;
  }

  private read(chunk: Buffer): void {
    if (this.upgradeHead !== null) {
      // an upgrade waits for the answers before it: everything after its head belongs to the new protocol
      this.upgradeHead = Buffer.concat([this.upgradeHead, chunk]);
      return;
    }
    if (this.pendingError !== 0 || this.closed) return;
    this.idleSince = 0;
    let consumed: number;
    try {
      consumed = this.parser.execute(chunk);
    } catch (err) {
      if (err instanceof HttpParserError) this.fail(err.statusCode);
      else this.handlerFailed(err);
      return;
    }
    if (this.parser.upgraded) {
      this.upgradeHead = consumed < chunk.length ? this.keep(chunk.subarray(consumed)) : EMPTY;
      this.pause(Pause.Stop);
      if (this.queue[0]?.head.upgrade === true) this.dispatch(this.queue[0]);
      return;
    }
    if (this.parser.readingHead) {
      if (this.headStart === 0) this.headStart = this.requestStart = Date.now();
    } else this.headStart = 0;
  }

  // ---- RequestSink: called by the parser, inside read()

  onHead(head: RequestHead): void {
    if (this.closed) return;
    const req = new OwnRequest(this, head);
    if (head.body !== BodyKind.None) {
      if (this.requestStart === 0) this.requestStart = Date.now();
      this.reading = req;
    }
    this.headStart = 0;
    const q = this.queue;
    q.push(req);
    if (q.length >= MAX_QUEUED) this.pause(Pause.Queue);
    // an upgrade is handed over once the parser says where its bytes begin (read())
    if (q.length === 1 && !head.upgrade) this.dispatch(req);
  }

  onBody(chunk: Buffer): void {
    const req = this.reading;
    if (req === null || req.dumped || req.destroyed) return;
    if (!req.push(this.keep(chunk))) this.pause(Pause.Body);
  }

  /** bytes that outlive read(): a copy when they sit in the shared read buffer */
  private keep(bytes: Buffer): Buffer {
    return this.volatile ? Buffer.from(bytes) : bytes;
  }

  onEnd(trailers: string[] | null): void {
    this.requestStart = 0;
    const req = this.reading ?? this.queue[this.queue.length - 1];
    this.reading = null;
    if (req === undefined) return;
    if (trailers !== null) {
      req.rawTrailers = trailers;
      req.trailers = {};
      for (let i = 0; i < trailers.length; i += 2) {
        const name = trailers[i]!.toLowerCase();
        if (req.trailers[name] === undefined) req.trailers[name] = trailers[i + 1]!;
      }
    }
    req.complete = true;
    if (req.head.body !== BodyKind.None) {
      this.resume(Pause.Body);
      if (!req.dumped && !req.destroyed) req.push(null);
    } else if (req.endWanted) req.push(null);
  }

  // ---- RequestOwner

  onBodyRead(req: OwnRequest): void {
    if (!req.continued && req.res !== null && !req.res.headersSent) req.res.writeContinue();
    if (req === this.reading) this.resume(Pause.Body);
  }

  onRequestAborted(req: OwnRequest): void {
    // the engine's own aborts (fail, closedNow) are already dealing with the connection
    if (!this.settling && !this.closed && (req === this.reading || this.queue.includes(req))) this.destroy();
  }

  // ---- ResponseOwner

  waitDrain(res: OwnResponse): void {
    this.drainWaiter = res;
  }

  onResponseFinished(res: OwnResponse): void {
    if (this.queue[0] !== res.req) return;
    this.queue.shift();
    if (this.drainWaiter === res) this.drainWaiter = null;
    const req = res.req;
    if (res.last || this.closed) {
      res.closeNow();
      this.endSoon();
      return;
    }
    if (!req.complete) {
      // answered before its body was read (a 413, a 401): the rest of the body is read and dropped
      req.dumped = true;
      this.resume(Pause.Body);
    }
    res.closeNow();
    if (this.closed) return;
    if ((this.paused & Pause.Queue) !== 0 && this.queue.length < MAX_QUEUED) this.resume(Pause.Queue);
    const next = this.queue[0];
    if (next !== undefined) {
      if (!next.head.upgrade || this.upgradeHead !== null) this.dispatch(next);
    } else if (this.pendingError !== 0) this.answerError(this.pendingError);
    else if (this.clientEnded) this.endSoon();
    else if (this.reading === null && !this.parser.readingHead) this.idleSince = Date.now();
  }

  // ----

  private dispatch(req: OwnRequest): void {
    const head = req.head;
    if (head.upgrade) {
      if (head.method === 'CONNECT') {
        // no route tunnels CONNECT (RFC 9110 §9.3.6)
        this.queue.length = 0;
        this.answerError(405, 'Method Not Allowed');
        return;
      }
      this.handOver(req);
      return;
    }
    const res = new OwnResponse(this, req);
    req.res = res;
    if (head.versionMinor === 1 && !head.expectContinue && req.headers.expect !== undefined) {
      // an expectation the gateway cannot meet (RFC 9110 §10.1.1): 417, as node:http's server answers it; the
      // request never reaches the pipeline and its body is read and dropped
      res.writeHead(417);
      res.end();
      return;
    }
    try {
      this.host.handlers.request(req, res);
    } catch (err) {
      this.handlerFailed(err);
    }
  }

  /** The socket belongs to the upgrade handler from here: the engine lets go of it. */
  private handOver(req: OwnRequest): void {
    const socket = this.socket;
    const head = this.upgradeHead ?? EMPTY;
    this.closed = true;
    this.queue.length = 0;
    this.host.forget(this);
    if (this.volatile) pushReadsToStream(socket);
    else socket.off('data', this.dataListener);
    socket.off('end', this.endListener);
    socket.off('close', this.closeListener);
    socket.off('drain', this.drainListener);
    // paused or not by the engine, the new owner starts reading when it attaches its own 'data' listener
    (socket as unknown as { readableFlowing: boolean | null }).readableFlowing = null;
    // as a 'data'-mode socket does, keep reading into the stream's buffer (up to its high-water mark) even
    // before the owner reads: a client's FIN must still end the stream of an owner that never reads
    if (this.volatile) socket.read(0);
    try {
      this.host.handlers.upgrade(req, socket, head);
    } catch (err) {
      this.host.onHandlerError(err);
      socket.destroy();
    }
  }

  /**
   * The request being read cannot be: a parse error (status from the parser) or a timeout (408). The answers
   * before it go out first; the connection closes after the error answer.
   */
  fail(status: number): void {
    if (this.closed || this.pendingError !== 0) return;
    this.pause(Pause.Stop);
    this.headStart = this.requestStart = 0;
    const req = this.reading;
    if (req !== null) {
      this.reading = null;
      if (this.queue[0] === req) {
        const res = req.res;
        this.queue.length = 0;
        this.settling = true;
        req.destroy(abortedError());
        this.settling = false;
        if (res !== null && res.headersSent) {
          // a status line inside a started answer would corrupt it: cut the connection
          this.destroy();
          return;
        }
        // the pipeline's answer, if it comes, goes nowhere: the error answer takes its place
        if (res !== null) res.closeNow();
      } else {
        this.queue.pop();
      }
    }
    if (this.queue.length === 0) this.answerError(status);
    else this.pendingError = status;
  }

  /** Writes the engine's own error answer and closes once it is flushed. */
  private answerError(status: number, reason?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.host.forget(this);
    const socket = this.socket;
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(rawErrorResponse(status, reason ?? STATUS_CODES[status] ?? 'Bad Request'), 'latin1', () => socket.destroy());
  }

  private handlerFailed(err: unknown): void {
    this.host.onHandlerError(err);
    this.destroy();
  }

  private clientEnd(): void {
    if (this.closed) return;
    if (this.pendingError !== 0) {
      // the error answer is owed after the earlier answers; then the connection closes anyway
      this.clientEnded = true;
      return;
    }
    try {
      this.parser.finish();
    } catch (err) {
      // the input ended inside a request: as for any request that cannot be parsed, the answers before it go
      // out, then the parser's error answer (node:http answers 400 here too), then the connection closes
      this.clientEnded = true;
      if (err instanceof HttpParserError) this.fail(err.statusCode);
      else this.destroy();
      return;
    }
    // The client will send nothing more: as node:http's server (httpAllowHalfOpen false) and nginx do, what it
    // asked and has not been answered yet is abandoned: its requests are aborted (a proxied one aborts its
    // upstream request) and the connection ends once what was written is flushed.
    this.clientEnded = true;
    const q = this.queue.splice(0);
    this.reading = null;
    this.endSoon();
    for (const req of q) {
      if (!req.destroyed) req.destroy(abortedError());
      const res = req.res;
      if (res !== null && !res.writableFinished) res.closeNow();
    }
  }

  /** ends the connection once what was written is flushed */
  private endSoon(): void {
    if (!this.closed) {
      this.closed = true;
      this.host.forget(this);
    }
    const socket = this.socket;
    if (socket.destroyed) return;
    if (socket.writableFinished) socket.destroy();
    else {
      socket.end();
      socket.once('finish', () => socket.destroy());
    }
  }

  /** Cuts the connection ('close' then aborts what is in flight). */
  destroy(): void {
    if (!this.closed) {
      this.closed = true;
      this.host.forget(this);
    }
    this.socket.destroy();
  }

  /** the socket closed: requests still arriving are aborted, an answer in progress gets 'close' without 'finish' */
  private closedNow(): void {
    if (!this.closed) {
      this.closed = true;
      this.host.forget(this);
    }
    const q = this.queue.splice(0);
    const reading = this.reading;
    this.reading = null;
    if (reading !== null && !q.includes(reading)) q.push(reading);
    for (const req of q) {
      if (!req.complete && !req.destroyed) req.destroy(abortedError());
      const res = req.res;
      if (res !== null && !res.writableFinished) res.closeNow();
    }
  }

  private pause(why: Pause): void {
    if (this.paused === 0) this.socket.pause();
    this.paused |= why;
  }

  private resume(why: Pause): void {
    if ((this.paused & why) === 0) return;
    this.paused &= ~why;
    if (this.paused === 0 && !this.closed) this.socket.resume();
  }
}
