import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { ServerRequest } from '../../../core/contracts/server.js';
import { toNodeHeaders } from './headers.js';
import { BodyKind, type RequestHead } from './parser.js';
import type { OwnResponse } from './response.js';

/** What a request needs from its connection (connection.ts), kept narrow so the two files do not import each other. */
export interface RequestOwner {
  readonly socket: Socket;
  /** something asked for body bytes: resume the socket if the body's backpressure paused it */
  onBodyRead(req: OwnRequest): void;
  /** the request was destroyed before it was complete: the connection cannot carry anything after it */
  onRequestAborted(req: OwnRequest): void;
}

const NO_TRAILERS = Object.freeze({}) as Record<string, string>;
const NO_RAW_TRAILERS = Object.freeze([]) as unknown as string[];

/**
 * One request, as node:http's IncomingMessage presents it: a Readable whose body arrives through `push` (the
 * body-limit plugin wraps `push` to count bytes, so the engine always calls it as a method), with the head's
 * fields as properties. A request without a body is ended lazily, on its first read: pushing null eagerly
 * costs a nextTick per request that nothing but a reader would ever notice.
 */
export class OwnRequest extends Readable implements ServerRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  httpVersion: string;
  readonly httpVersionMajor = 1;
  httpVersionMinor: number;
  readonly socket: Socket;
  complete = false;
  aborted = false;
  /** shared empty ones until a chunked body ends with trailer fields (connection.ts replaces them) */
  trailers: Record<string, string> = NO_TRAILERS;
  rawTrailers: string[] = NO_RAW_TRAILERS;
  /** the response to this request, once it was handed to the pipeline */
  res: OwnResponse | null = null;
  /** the parser's view of the head (framing, keep-alive, upgrade, 100-continue) */
  readonly head: RequestHead;
  /** `100 Continue` went out (or the expectation needs none) */
  continued: boolean;
  /** the answer is out before the body was read: the rest of the body is discarded, not buffered */
  dumped = false;
  /** a body-less request was read before the parser reported its end: end it when it does */
  endWanted = false;

  constructor(
    readonly owner: RequestOwner,
    head: RequestHead,
  ) {
    super();
    this.head = head;
    this.method = head.method;
    this.url = head.target;
    this.rawHeaders = head.rawHeaders;
    this.headers = toNodeHeaders(head.rawHeaders, head.names);
    this.httpVersionMinor = head.versionMinor;
    this.httpVersion = head.versionMinor === 1 ? '1.1' : '1.0';
    this.socket = owner.socket;
    this.continued = !head.expectContinue;
  }

  /** Connection is node's alias of socket. */
  get connection(): Socket {
    return this.socket;
  }

  override _read(): void {
    if (this.head.body === BodyKind.None) {
      // nothing to wait for: the body-less request ends on its first read
      if (this.complete) this.push(null);
      else this.endWanted = true;
      return;
    }
    this.owner.onBodyRead(this);
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (!this.readableEnded || !this.complete) {
      this.aborted = true;
      this.emit('aborted');
    }
    // as node: destroying a request whose body is still arriving cuts its connection
    if (!this.complete) this.owner.onRequestAborted(this);
    // node emits 'error' on a destroyed request only when someone listens for it (backward compatibility)
    cb(err !== null && this.listenerCount('error') > 0 ? err : null);
  }

  setTimeout(ms: number, cb?: () => void): this {
    this.socket.setTimeout(ms, cb);
    return this;
  }
}

/** node's connResetException('aborted'): what a request whose client went away mid-body is destroyed with. */
export function abortedError(): Error {
  const err = new Error('aborted') as NodeJS.ErrnoException;
  err.code = 'ECONNRESET';
  return err;
}
