import { STATUS_CODES, validateHeaderName, validateHeaderValue, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Stream } from 'node:stream';
import type { ServerResponse } from '../../../core/contracts/server.js';
import type { PooledWriter } from '../../pool/buffer/index.js';
import { dateLine } from './date.js';
import type { OwnRequest } from './request.js';

/** What a response needs from its connection (connection.ts). */
export interface ResponseOwner {
  readonly socket: Socket;
  /** `Keep-Alive: timeout=N\r\n` as node:http sends it, or '' when keep-alive has no timeout */
  readonly keepAliveLine: string;
  /** `Strict-Transport-Security: ...\r\n` on a TLS listener with server.hsts, unless the answer sets its own; else '' */
  readonly hstsLine: string;
  /** the last byte of `res` went to the socket */
  onResponseFinished(res: OwnResponse): void;
  /** a write returned false: emit 'drain' on `res` when the socket drains */
  waitDrain(res: OwnResponse): void;
  /** cut the connection */
  destroy(): void;
  /**
   * Set when the engine runs with a pooled head buffer (OwnEngineOptions.headPool): a head joined to a small body
   * goes out through a BufferPool slab instead of a latin1 string (issue 18's BufferPool measurement); else null.
   */
  readonly headWriter: PooledWriter | null;
}

type HeaderValue = number | string | readonly string[];
type WriteCallback = (err?: Error | null) => void;

// node:http's own checks (_http_common.js): a name or value passing these passes validateHeaderName/Value; one
// failing them is handed to node's validator, which throws node's error (ERR_INVALID_HTTP_TOKEN, ...).
const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;
const INVALID_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/;
const NON_ASCII = /[\u0080-\uffff]/;
const CHUNKED = /(?:^|\W)chunked(?:$|\W)/i;
const CLOSE = /(?:^|\W)close(?:$|\W)/i;

/** Names already checked: an answer repeats the same few names on every request (bounded: cleared when full). */
const VALID_NAMES = new Set<string>();

function checkName(name: unknown): void {
  if (VALID_NAMES.has(name as string)) return;
  if (typeof name !== 'string' || !TOKEN.test(name)) validateHeaderName(name as string);
  if (VALID_NAMES.size >= 1024) VALID_NAMES.clear();
  VALID_NAMES.add(name as string);
}

function checkValue(name: string, value: unknown): void {
  if (value === undefined || INVALID_VALUE_CHAR.test(value as string)) validateHeaderValue(name, value as string);
}

function codeError<E extends Error>(err: E, code: string): E {
  (err as E & { code: string }).code = code;
  return err;
}

/** node's ERR_HTTP_HEADERS_SENT */
function headersSentError(action: string): Error {
  return codeError(new Error(`Cannot ${action} headers after they are sent to the client`), 'ERR_HTTP_HEADERS_SENT');
}

const STATUS_LINES = new Map<number, string>();
function statusLine(status: number): string {
  let line = STATUS_LINES.get(status);
  if (line === undefined) {
    line = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'unknown'}\r\n`;
    STATUS_LINES.set(status, line);
  }
  return line;
}

/** Byte length of a body chunk, or a TypeError as node's (ERR_INVALID_ARG_TYPE) for anything not a string or bytes. */
function byteLength(chunk: unknown, encoding: BufferEncoding): number {
  if (typeof chunk === 'string') {
    if (encoding === 'latin1' || encoding === 'binary' || encoding === 'ascii') return chunk.length;
    return Buffer.byteLength(chunk, encoding);
  }
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  throw codeError(new TypeError('The "chunk" argument must be of type string or an instance of Buffer or Uint8Array'), 'ERR_INVALID_ARG_TYPE');
}

/** A small Buffer body is sent as latin1 text joined to the head: one write, no copy into a new Buffer. */
const JOIN_BUFFER_MAX = 2048;

function finishNT(res: OwnResponse): void {
  res.finishNow();
}

/** Which field lines of an answer the engine must know about (RFC 9112 §6, §9.6). */
const enum Seen {
  Date = 1,
  Connection = 2,
  ContentLength = 4,
  TransferEncoding = 8,
  Close = 16,
  Chunked = 32,
  Hsts = 64,
}

/**
 * One answer, written the way node:http's ServerResponse is used by the pipeline (core/data/response.ts):
 * writeHead() then end(), or writeHead() then a piped body. The head is validated and serialized by writeHead()
 * (so a refused name or value throws before any byte is on the wire) but written with the first body bytes:
 * `end(body)` is one socket write, with a Content-Length the engine adds when none was set. A body written in
 * pieces without a length is chunked (HTTP/1.1) or delimited by the close (HTTP/1.0).
 */
export class OwnResponse extends Stream implements ServerResponse {
  statusCode = 200;
  statusMessage: string | undefined = undefined;
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  writable = true;
  /** a write returned false and 'drain' has not been emitted yet */
  writableNeedDrain = false;
  /** the connection closes after this answer */
  last = false;
  readonly req: OwnRequest;
  private readonly owner: ResponseOwner;
  /** headers set before writeHead (setHeader): lower-cased name → [name as set, value] */
  private fields: Record<string, [string, HeaderValue]> | null = null;
  /** the status line and field lines serialized by writeHead, until the head goes out with the first body bytes */
  private headText = '';
  private seen = 0;
  private hasBody = true;
  private headWritten = false;
  /** the body goes out in chunked coding */
  private chunked = false;
  /** addTrailers' field lines, sent after the last chunk (a body not in chunked coding has no place for them) */
  private trailerText = '';

  constructor(owner: ResponseOwner, req: OwnRequest) {
    super();
    this.owner = owner;
    this.req = req;
  }

  get socket(): Socket | null {
    return this.destroyed ? null : this.owner.socket;
  }

  get connection(): Socket | null {
    return this.socket;
  }

  get finished(): boolean {
    return this.writableEnded;
  }

  setHeader(name: string, value: HeaderValue): this {
    if (this.headersSent) throw headersSentError('set');
    checkName(name);
    checkValue(name, value);
    (this.fields ??= Object.create(null) as Record<string, [string, HeaderValue]>)[name.toLowerCase()] = [name, value];
    return this;
  }

  getHeader(name: string): number | string | string[] | undefined {
    const e = this.fields?.[name.toLowerCase()];
    return e === undefined ? undefined : (e[1] as number | string | string[]);
  }

  getHeaderNames(): string[] {
    return this.fields === null ? [] : Object.keys(this.fields);
  }

  getHeaders(): OutgoingHttpHeaders {
    const out = Object.create(null) as OutgoingHttpHeaders;
    if (this.fields !== null) for (const k in this.fields) out[k] = this.fields[k]![1] as OutgoingHttpHeader;
    return out;
  }

  hasHeader(name: string): boolean {
    return this.fields !== null && this.fields[name.toLowerCase()] !== undefined;
  }

  removeHeader(name: string): void {
    if (this.headersSent) throw headersSentError('remove');
    if (this.fields !== null) delete this.fields[name.toLowerCase()];
  }

  writeHead(statusCode: number, reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[], headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this {
    if (this.headersSent) throw headersSentError('write');
    if (typeof reason === 'string') this.statusMessage = reason;
    else headers = reason;
    const status = statusCode | 0;
    if (status < 100 || status > 999) throw codeError(new RangeError(`Invalid status code: ${String(statusCode)}`), 'ERR_HTTP_INVALID_STATUS_CODE');
    const message = this.statusMessage;
    if (message !== undefined && INVALID_VALUE_CHAR.test(message)) throw codeError(new TypeError('Invalid character in statusMessage'), 'ERR_INVALID_CHAR');
    let text = message === undefined ? statusLine(status) : `HTTP/1.1 ${status} ${message}\r\n`;
    this.seen = 0;
    let fields = this.fields;
    if (Array.isArray(headers)) {
      // [[name, value], ...] or [name, value, name, value, ...]: every pair is a field line of its own
      fields ??= Object.create(null) as Record<string, [string, HeaderValue]>;
      const pairs = headers.length > 0 && Array.isArray(headers[0]);
      const step = pairs ? 1 : 2;
      if (!pairs && headers.length % 2 !== 0) throw codeError(new TypeError("The argument 'headers' is invalid"), 'ERR_INVALID_ARG_VALUE');
      for (let i = 0; i < headers.length; i += step) {
        const [k, v] = pairs ? (headers[i] as unknown as [string, HeaderValue]) : [headers[i] as string, headers[i + 1] as HeaderValue];
        checkName(k);
        checkValue(k, v);
        const lower = k.toLowerCase();
        const prev = fields[lower];
        fields[lower] = prev === undefined ? [k, v] : [prev[0], ([] as string[]).concat(prev[1] as string, v as string)];
      }
    } else if (headers !== undefined && headers !== null) {
      if (fields !== null) {
        for (const k in headers) if (k !== '') this.setHeader(k, headers[k] as HeaderValue);
      } else {
        // the usual case: every field comes from this object; validated and serialized in one pass. Own names
        // only, as node's _storeHeader takes them; Object.keys, not for-in: the gateway's headers objects have a
        // null prototype (dictionary mode), where for-in re-checks every name and measured slower
        const names = Object.keys(headers);
        for (let i = 0; i < names.length; i++) {
          const k = names[i]!;
          const v = headers[k];
          checkName(k);
          checkValue(k, v);
          text += this.fieldLines(k, null, v as HeaderValue);
        }
      }
    }
    if (fields !== null) for (const lower in fields) text += this.fieldLines(fields[lower]![0], lower, fields[lower]![1]);
    this.statusCode = status;
    this.headText = text;
    this.hasBody = this.req.method !== 'HEAD' && status !== 204 && status !== 304 && (status < 100 || status > 199);
    this.headersSent = true;
    return this;
  }

  /** The field lines of one header (one per array element), noting the fields the framing depends on. */
  private fieldLines(name: string, lower: string | null, value: HeaderValue): string {
    const n = name.length;
    if (n === 4 || n === 10 || n === 14 || n === 17 || n === 25) {
      const l = lower ?? name.toLowerCase();
      if (l === 'date') this.seen |= Seen.Date;
      else if (l === 'connection') {
        this.seen |= Seen.Connection;
        if (CLOSE.test(String(value))) this.seen |= Seen.Close;
      } else if (l === 'content-length') this.seen |= Seen.ContentLength;
      else if (l === 'transfer-encoding') {
        this.seen |= Seen.TransferEncoding;
        if (CHUNKED.test(String(value))) this.seen |= Seen.Chunked;
      } else if (l === 'strict-transport-security') this.seen |= Seen.Hsts;
    }
    if (typeof value === 'string') return `${name}: ${value}\r\n`;
    // as node's _storeHeader: anything but an array is one line of its String() (a plugin's null is "null")
    if (!Array.isArray(value)) return `${name}: ${String(value as unknown)}\r\n`;
    let out = '';
    for (const v of value) out += `${name}: ${v}\r\n`;
    return out;
  }

  /** The head to send: writeHead's lines plus Date, Connection and the body's framing. `bodyLength` -1: not known. */
  private finalHead(bodyLength: number): string {
    if (!this.headersSent) this.writeHead(this.statusCode);
    const seen = this.seen;
    const req = this.req;
    // an Expect: 100-continue request neither invited nor whole: whether its body follows is unknown, so the
    // connection cannot carry another request; a body that arrived whole anyway leaves it in sync
    let last = !req.head.keepAlive || (seen & Seen.Close) !== 0 || (!req.continued && !req.complete);
    let framing = '';
    if ((seen & (Seen.ContentLength | Seen.TransferEncoding)) === 0) {
      if (!this.hasBody) {
        // HEAD, 1xx, 204, 304: no body, no framing field (as node:http)
      } else if (bodyLength >= 0) framing = `Content-Length: ${bodyLength}\r\n`;
      else if (req.httpVersionMinor === 1) {
        framing = 'Transfer-Encoding: chunked\r\n';
        this.chunked = true;
      } else last = true; // HTTP/1.0: the close delimits the body (RFC 9112 §6.3)
    } else if ((seen & Seen.Chunked) !== 0 && this.hasBody) this.chunked = true;
    let text = this.headText;
    if ((seen & Seen.Hsts) === 0) text += this.owner.hstsLine;
    if ((seen & Seen.Date) === 0) text += dateLine();
    if ((seen & Seen.Connection) === 0) text += last ? 'Connection: close\r\n' : `Connection: keep-alive\r\n${this.owner.keepAliveLine}`;
    this.last = last;
    this.headWritten = true;
    return `${text}${framing}\r\n`;
  }

  /**
   * node's addTrailers: an object (an array value gives one field line per element) or [name, value] pairs,
   * each name and value checked as a header's; replaces what an earlier call added.
   */
  addTrailers(headers: OutgoingHttpHeaders | ReadonlyArray<readonly [string, string]>): void {
    let text = '';
    const add = (name: string, value: unknown): void => {
      checkName(name);
      if (Array.isArray(value)) {
        for (const v of value as unknown[]) {
          checkValue(name, v);
          text += `${name}: ${String(v)}\r\n`;
        }
      } else {
        checkValue(name, value);
        text += `${name}: ${String(value)}\r\n`;
      }
    };
    if (Array.isArray(headers)) for (const [name, value] of headers as ReadonlyArray<readonly [string, string]>) add(name, value);
    else for (const name of Object.keys(headers)) add(name, (headers as OutgoingHttpHeaders)[name]);
    this.trailerText = text;
  }

  writeContinue(): void {
    if (this.headersSent || this.destroyed) return;
    this.req.continued = true;
    this.owner.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
  }

  flushHeaders(): void {
    if (this.headWritten || this.destroyed) return;
    this.owner.socket.write(this.finalHead(-1), 'latin1');
  }

  write(chunk: Uint8Array | string, cb?: WriteCallback): boolean;
  write(chunk: Uint8Array | string, encoding?: BufferEncoding, cb?: WriteCallback): boolean;
  write(chunk: Uint8Array | string, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (this.writableEnded) {
      const err = codeError(new Error('write after end'), 'ERR_STREAM_WRITE_AFTER_END');
      if (cb !== undefined) process.nextTick(cb, err);
      return false;
    }
    if (this.destroyed) return false;
    const enc = encoding ?? 'utf8';
    const len = byteLength(chunk, enc);
    const socket = this.owner.socket;
    const head = this.headWritten ? null : this.finalHead(-1);
    if (!this.hasBody || len === 0) {
      if (head !== null) socket.write(head, 'latin1');
      if (cb !== undefined) process.nextTick(cb);
      return true;
    }
    const pooled = this.owner.headWriter;
    if (head !== null && pooled !== null && !this.chunked && cb === undefined && typeof chunk !== 'string' && pooled.fits(head.length + len)) {
      const sent = pooled.write(head, chunk);
      if (!sent) {
        this.writableNeedDrain = true;
        this.owner.waitDrain(this);
      }
      return sent;
    }
    socket.cork();
    if (head !== null) socket.write(head, 'latin1');
    let ok: boolean;
    if (this.chunked) {
      socket.write(`${len.toString(16)}\r\n`, 'latin1');
      socket.write(chunk, enc);
      ok = socket.write('\r\n', 'latin1', cb);
    } else ok = socket.write(chunk, enc, cb);
    socket.uncork();
    if (!ok) {
      this.writableNeedDrain = true;
      this.owner.waitDrain(this);
    }
    return ok;
  }

  end(cb?: () => void): this;
  end(chunk: Uint8Array | string, cb?: () => void): this;
  end(chunk: Uint8Array | string, encoding?: BufferEncoding, cb?: () => void): this;
  end(data?: Uint8Array | string | (() => void), encoding?: BufferEncoding | (() => void), callback?: () => void): this {
    let chunk: Uint8Array | string | undefined;
    let enc: BufferEncoding = 'utf8';
    let cb = callback;
    if (typeof data === 'function') cb = data;
    else {
      chunk = data;
      if (typeof encoding === 'function') cb = encoding;
      else if (encoding !== undefined) enc = encoding;
    }
    if (this.writableEnded) return this;
    const len = chunk === undefined || chunk === null ? 0 : byteLength(chunk, enc);
    if (this.destroyed) {
      this.writableEnded = true;
      this.writable = false;
      return this;
    }
    if (cb !== undefined) this.once('finish', cb);
    const socket = this.owner.socket;
    if (!this.headWritten && this.trailerText !== '' && this.hasBody) {
      // a whole body with trailers: chunked (when nothing else frames it), so the trailer section has a place
      const head = this.finalHead(-1);
      socket.cork();
      socket.write(head, 'latin1');
      if (this.chunked) {
        if (len > 0) {
          socket.write(`${len.toString(16)}\r\n`, 'latin1');
          socket.write(chunk!, enc);
          socket.write('\r\n', 'latin1');
        }
        socket.write(`0\r\n${this.trailerText}\r\n`, 'latin1');
      } else if (len > 0) socket.write(chunk!, enc);
      socket.uncork();
    } else if (!this.headWritten) {
      const head = this.finalHead(this.hasBody ? len : 0);
      const pooled = this.owner.headWriter;
      if (pooled !== null && pooled.fits(head.length + len) && (typeof chunk !== 'string' || enc === 'latin1' || enc === 'binary')) {
        pooled.write(head, len === 0 || !this.hasBody ? undefined : chunk);
      } else if (len === 0 || !this.hasBody) socket.write(head, 'latin1');
      else if (typeof chunk === 'string') {
        if (enc === 'latin1' || enc === 'binary' || ((enc === 'utf8' || enc === 'utf-8' || enc === 'ascii') && !NON_ASCII.test(head)))
          socket.write(head + chunk, enc);
        else {
          socket.cork();
          socket.write(head, 'latin1');
          socket.write(chunk, enc);
          socket.uncork();
        }
      } else if (len <= JOIN_BUFFER_MAX && Buffer.isBuffer(chunk)) socket.write(head + chunk.toString('latin1'), 'latin1');
      else {
        socket.cork();
        socket.write(head, 'latin1');
        socket.write(chunk!);
        socket.uncork();
      }
    } else if (this.hasBody) {
      if (len > 0) {
        socket.cork();
        if (this.chunked) {
          socket.write(`${len.toString(16)}\r\n`, 'latin1');
          socket.write(chunk!, enc);
          socket.write(`\r\n0\r\n${this.trailerText}\r\n`, 'latin1');
        } else socket.write(chunk!, enc);
        socket.uncork();
      } else if (this.chunked) socket.write(this.trailerText === '' ? '0\r\n\r\n' : `0\r\n${this.trailerText}\r\n`, 'latin1');
    }
    this.writableEnded = true;
    this.writable = false;
    process.nextTick(finishNT, this);
    return this;
  }

  /** (connection.ts's and end()'s) the last byte is with the socket: 'finish', then the connection moves on */
  finishNow(): void {
    if (this.destroyed || this.writableFinished) return;
    this.writableFinished = true;
    this.emit('finish');
    this.owner.onResponseFinished(this);
  }

  /** the connection closed before this answer finished, or after it: 'close' once */
  closeNow(): void {
    if (!this.writableFinished) this.destroyed = true;
    this.writable = false;
    this.emit('close');
  }

  destroy(_error?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.writable = false;
    this.owner.destroy();
    return this;
  }

  cork(): void {
    this.owner.socket.cork();
  }

  uncork(): void {
    this.owner.socket.uncork();
  }

  setTimeout(ms: number, cb?: () => void): this {
    this.owner.socket.setTimeout(ms, cb);
    return this;
  }
}
