import type { IncomingHttpHeaders } from 'node:http';

/**
 * An incremental HTTP/1.1 response parser (RFC 9112) for the h1 upstream client: status line, header fields,
 * then the body framed by Content-Length, chunked coding or the connection's end.
 *
 * Strict where leniency would let an upstream smuggle or desynchronise a pooled connection: bare CR/LF/NUL,
 * obs-fold, repeated differing Content-Length, Content-Length together with Transfer-Encoding, malformed chunk
 * sizes and oversize heads are all protocol errors (the proxy answers 502 and the connection is closed).
 */

/** How the response body is delimited. */
export const enum Framing {
  None,
  Length,
  Chunked,
  UntilClose,
}

const enum Phase {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
  Done,
}

export interface ParsedHead {
  statusCode: number;
  headers: IncomingHttpHeaders;
  framing: Framing;
  /** body bytes for Framing.Length */
  contentLength: number;
  /** the connection may carry another request after this response */
  keepAlive: boolean;
  /** a Keep-Alive: timeout=N hint in ms, or -1 */
  keepAliveHintMs: number;
}

/** What the parser reports to (one connection's current exchange). */
export interface ResponseSink {
  /**
   * The head of the final (non-1xx) response. `wholeBody` is the complete body when it arrived in the same
   * chunk as the head (Content-Length framing), or null when the body follows (onBody/onEnd) or there is none.
   */
  onHead(head: ParsedHead, wholeBody: Buffer | null): void;
  onBody(chunk: Buffer): void;
  /** the response is complete; `trailing` is true when bytes followed it (the connection must not be reused) */
  onEnd(trailing: boolean): void;
}

export class ParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParseError';
  }
}

export const MAX_HEAD_BYTES = 64 * 1024;
const MAX_CHUNK_LINE = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** NUL, a CR not followed by LF, or an LF not preceded by CR */
const BAD_LINE_BREAK = /\0|\r(?!\n)|(?<!\r)\n/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: |$)/;
const DIGITS = /^\d+$/;
const HEX = /^[0-9a-fA-F]{1,12}$/;
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i;

/** Node's rules for repeated fields (IncomingMessage#headers): these keep the first value. */
const FIRST_WINS = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after',
  'server', 'user-agent',
]);

function trimOws(v: string): string {
  let s = 0;
  let e = v.length;
  while (s < e && (v.charCodeAt(s) === 32 || v.charCodeAt(s) === 9)) s++;
  while (e > s && (v.charCodeAt(e - 1) === 32 || v.charCodeAt(e - 1) === 9)) e--;
  return s === 0 && e === v.length ? v : v.slice(s, e);
}

function hasToken(list: string, token: string): boolean {
  // the values real upstreams send: no lower-casing or splitting for them
  if (list === 'keep-alive') return token === 'keep-alive';
  if (list === 'close') return token === 'close';
  const l = list.toLowerCase();
  if (l === token) return true;
  for (const t of l.split(',')) if (t.trim() === token) return true;
  return false;
}

let lastHint = '';
let lastHintMs = -1;

/** Parse one response head (status line + fields, without the blank line). */
export function parseHead(text: string, requestWasHead: boolean): ParsedHead {
  if (BAD_LINE_BREAK.test(text)) throw new ParseError('bare CR, LF or NUL in the response head');
  let eol = text.indexOf('\r\n');
  const statusLine = eol === -1 ? text : text.slice(0, eol);
  const m = STATUS_LINE.exec(statusLine);
  if (m === null) throw new ParseError(`malformed status line: ${JSON.stringify(statusLine.slice(0, 64))}`);
  const minor = m[1] === '1';
  const statusCode = Number(m[2]);
  if (statusCode < 100) throw new ParseError(`invalid status code ${statusCode}`);

  const headers = Object.create(null) as Record<string, string | string[]>;
  let contentLength = -1;
  let transferEncoding: string | null = null;
  let connection: string | null = null;
  let keepAliveHint: string | null = null;
  while (eol !== -1) {
    const start = eol + 2;
    eol = text.indexOf('\r\n', start);
    const line = eol === -1 ? text.slice(start) : text.slice(start, eol);
    const c0 = line.charCodeAt(0);
    if (c0 === 32 || c0 === 9) throw new ParseError('obsolete line folding in a response header');
    const colon = line.indexOf(':');
    if (colon <= 0) throw new ParseError(`malformed header line: ${JSON.stringify(line.slice(0, 64))}`);
    const rawName = line.slice(0, colon);
    if (!TOKEN.test(rawName)) throw new ParseError(`invalid header name: ${JSON.stringify(rawName.slice(0, 64))}`);
    const name = rawName.toLowerCase();
    const value = trimOws(line.slice(colon + 1));
    switch (name) {
      case 'content-length': {
        if (!DIGITS.test(value)) throw new ParseError(`invalid content-length: ${JSON.stringify(value.slice(0, 32))}`);
        const n = Number(value);
        if (!Number.isSafeInteger(n)) throw new ParseError('content-length too large');
        if (contentLength !== -1 && contentLength !== n) throw new ParseError('conflicting content-length values');
        contentLength = n;
        break;
      }
      case 'transfer-encoding':
        transferEncoding = transferEncoding === null ? value : `${transferEncoding}, ${value}`;
        break;
      case 'connection':
        connection = connection === null ? value : `${connection}, ${value}`;
        break;
      case 'keep-alive':
        keepAliveHint = value;
        break;
    }
    const prev = headers[name];
    if (prev === undefined) {
      headers[name] = name === 'set-cookie' ? [value] : value;
    } else if (name === 'set-cookie') {
      (prev as string[]).push(value);
    } else if (!FIRST_WINS.has(name)) {
      headers[name] = `${prev as string}${name === 'cookie' ? '; ' : ', '}${value}`;
    }
  }

  let keepAlive = minor ? connection === null || !hasToken(connection, 'close') : connection !== null && hasToken(connection, 'keep-alive');
  let framing: Framing;
  if (requestWasHead || statusCode === 204 || statusCode === 304 || statusCode < 200) {
    framing = Framing.None;
  } else if (transferEncoding !== null) {
    if (contentLength !== -1) throw new ParseError('both content-length and transfer-encoding');
    const codings = transferEncoding.toLowerCase().split(',');
    if (codings[codings.length - 1]!.trim() === 'chunked') {
      framing = Framing.Chunked;
    } else {
      // RFC 9112 §6.3: a response whose final coding is not chunked runs until the connection closes
      framing = Framing.UntilClose;
      keepAlive = false;
    }
  } else if (contentLength !== -1) {
    framing = contentLength === 0 ? Framing.None : Framing.Length;
  } else {
    framing = Framing.UntilClose;
    keepAlive = false;
  }
  let keepAliveHintMs = -1;
  if (keepAliveHint !== null) {
    // an upstream sends the same hint every time: parse it once
    if (keepAliveHint !== lastHint) {
      const t = KEEP_ALIVE_TIMEOUT.exec(keepAliveHint);
      lastHint = keepAliveHint;
      lastHintMs = t === null ? -1 : Number(t[1]) * 1000;
    }
    keepAliveHintMs = lastHintMs;
  }
  return { statusCode, headers, framing, contentLength: contentLength === -1 ? 0 : contentLength, keepAlive, keepAliveHintMs };
}

/**
 * The last response head parsed for one target, byte for byte. An upstream answers with the same head over
 * and over (only Date changes, once a second), so a byte comparison usually replaces the parse. The headers
 * object is then shared between responses: it is frozen, and every consumer copies it (buildResponseHeaders).
 */
export class HeadCache {
  private bytes: Buffer | null = null;
  private wasHead = false;
  private head: ParsedHead | null = null;
  hits = 0;

  parse(buf: Buffer, start: number, end: number, requestWasHead: boolean): ParsedHead {
    const cached = this.bytes;
    const len = end - start;
    if (cached !== null && cached.length === len && this.wasHead === requestWasHead && buf.compare(cached, 0, len, start, end) === 0) {
      this.hits++;
      return this.head!;
    }
    const head = parseHead(buf.toString('latin1', start, end), requestWasHead);
    Object.freeze(head.headers);
    for (const name in head.headers) {
      const v = head.headers[name];
      if (Array.isArray(v)) Object.freeze(v);
    }
    this.bytes = Buffer.from(buf.subarray(start, end));
    this.wasHead = requestWasHead;
    this.head = head;
    return head;
  }
}

/** One connection's response parser: feed it every chunk read from the socket with execute(). */
export class ResponseParser {
  private phase = Phase.Done;
  private requestWasHead = false;
  /** bytes of a head split over several reads */
  private pending: Buffer | null = null;
  /** body bytes still expected (Length), or left in the current chunk (ChunkData) */
  private remaining = 0;
  /** a chunk-size or trailer line split over several reads */
  private line = '';
  private trailerBytes = 0;
  /** CRLF bytes after chunk data already seen (0..2) */
  private crlfSeen = 0;
  private halted = false;

  constructor(
    private readonly sink: ResponseSink,
    private readonly cache: HeadCache = new HeadCache(),
  ) {}

  /** Expect the response to a new request. */
  start(requestWasHead: boolean): void {
    this.phase = Phase.Head;
    this.requestWasHead = requestWasHead;
    this.pending = null;
    this.remaining = 0;
    this.line = '';
    this.trailerBytes = 0;
    this.crlfSeen = 0;
  }

  /** true while some of the response has been received (a head byte or more) */
  get started(): boolean {
    return this.phase !== Phase.Head || this.pending !== null;
  }

  /** The connection ended: completes an until-close body; anything else unfinished is the caller's error. */
  finishAtEof(): boolean {
    if (this.phase !== Phase.UntilClose) return false;
    this.phase = Phase.Done;
    this.sink.onEnd(false);
    return true;
  }

  /** Stop parsing (the connection is being torn down); execute() returns at once. */
  halt(): void {
    this.phase = Phase.Done;
    this.halted = true;
  }

  /**
   * Throws ParseError; the caller then closes the connection. onEnd is called exactly once per response, with
   * trailing = true when more bytes followed it in this chunk.
   */
  execute(chunk: Buffer): void {
    if (this.phase === Phase.Done) throw new ParseError('data from the upstream while no request was waiting');
    this.halted = false;
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      switch (this.phase) {
        case Phase.Head:
          off = this.head(chunk, off);
          break;
        case Phase.Length: {
          const n = len - off < this.remaining ? len - off : this.remaining;
          this.remaining -= n;
          const part = off === 0 && n === len ? chunk : chunk.subarray(off, off + n);
          off += n;
          if (this.remaining === 0) this.phase = Phase.Done;
          this.sink.onBody(part);
          break;
        }
        case Phase.ChunkSize:
          off = this.chunkSize(chunk, off);
          break;
        case Phase.ChunkData: {
          const n = len - off < this.remaining ? len - off : this.remaining;
          this.remaining -= n;
          const part = chunk.subarray(off, off + n);
          off += n;
          if (this.remaining === 0) {
            this.phase = Phase.ChunkDataEnd;
            this.crlfSeen = 0;
          }
          this.sink.onBody(part);
          break;
        }
        case Phase.ChunkDataEnd:
          while (off < len && this.crlfSeen < 2) {
            if (chunk[off] !== (this.crlfSeen === 0 ? 13 : 10)) throw new ParseError('missing CRLF after chunk data');
            off++;
            this.crlfSeen++;
          }
          if (this.crlfSeen === 2) {
            this.phase = Phase.ChunkSize;
            this.line = '';
          }
          break;
        case Phase.Trailers:
          off = this.trailers(chunk, off);
          break;
        case Phase.UntilClose:
          this.sink.onBody(off === 0 ? chunk : chunk.subarray(off));
          off = len;
          break;
      }
      // a sink callback may have torn the connection down (client gone, body destroyed)
      if (this.halted) return;
      if (this.phase === Phase.Done) {
        this.sink.onEnd(off < len);
        return;
      }
    }
  }

  private head(chunk: Buffer, off: number): number {
    let buf = chunk;
    let base = off;
    let searchFrom = off;
    if (this.pending !== null) {
      const prevLen = this.pending.length;
      buf = Buffer.concat([this.pending, off === 0 ? chunk : chunk.subarray(off)]);
      base = 0;
      // the terminator may straddle the two pieces
      searchFrom = prevLen > 3 ? prevLen - 3 : 0;
    }
    const end = buf.indexOf('\r\n\r\n', searchFrom, 'latin1');
    if (end === -1) {
      if (buf.length - base > MAX_HEAD_BYTES) throw new ParseError(`response head larger than ${MAX_HEAD_BYTES} bytes`);
      this.pending = buf !== chunk ? buf : Buffer.from(chunk.subarray(base));
      return chunk.length;
    }
    if (end - base > MAX_HEAD_BYTES) throw new ParseError(`response head larger than ${MAX_HEAD_BYTES} bytes`);
    const head = this.cache.parse(buf, base, end, this.requestWasHead);
    const bodyStart = end + 4;
    // where the body starts in `chunk` (a pending prefix was all head)
    const consumed = this.pending === null ? bodyStart : chunk.length - (buf.length - bodyStart);
    this.pending = null;
    if (head.statusCode < 200) {
      // 1xx interim answers (100 Continue, 103 Early Hints) are not forwarded; the final response follows.
      // 101 would switch protocols, which a plain request never asks for.
      if (head.statusCode === 101) throw new ParseError('unexpected 101 Switching Protocols');
      return consumed;
    }
    switch (head.framing) {
      case Framing.None:
        this.phase = Phase.Done;
        this.sink.onHead(head, null);
        return consumed;
      case Framing.Length:
        if (chunk.length - consumed >= head.contentLength) {
          // the whole body came with the head: hand it over as one buffer, no stream needed
          this.phase = Phase.Done;
          this.sink.onHead(head, chunk.subarray(consumed, consumed + head.contentLength));
          return consumed + head.contentLength;
        }
        this.phase = Phase.Length;
        this.remaining = head.contentLength;
        break;
      case Framing.Chunked:
        this.phase = Phase.ChunkSize;
        this.line = '';
        break;
      case Framing.UntilClose:
        this.phase = Phase.UntilClose;
        break;
    }
    this.sink.onHead(head, null);
    return consumed;
  }

  /** Read a line ending in CRLF into this.line; returns the new offset and whether the line is complete. */
  private readLine(chunk: Buffer, off: number, max: number): [number, boolean] {
    const lf = chunk.indexOf(10, off);
    const end = lf === -1 ? chunk.length : lf + 1;
    this.line += chunk.toString('latin1', off, end);
    if (this.line.length > max) throw new ParseError('chunk-size or trailer line too long');
    return [end, lf !== -1];
  }

  private chunkSize(chunk: Buffer, off: number): number {
    const [next, complete] = this.readLine(chunk, off, MAX_CHUNK_LINE);
    if (!complete) return next;
    const line = this.line;
    this.line = '';
    if (line.length < 2 || line.charCodeAt(line.length - 2) !== 13) throw new ParseError('chunk-size line without CRLF');
    let sizeEnd = line.length - 2;
    const semi = line.indexOf(';');
    if (semi !== -1 && semi < sizeEnd) sizeEnd = semi;
    const sizeText = trimOws(line.slice(0, sizeEnd));
    if (!HEX.test(sizeText)) throw new ParseError(`invalid chunk size: ${JSON.stringify(sizeText.slice(0, 32))}`);
    if (BAD_LINE_BREAK.test(line.slice(0, -2))) throw new ParseError('bare CR, LF or NUL in a chunk-size line');
    const size = parseInt(sizeText, 16);
    if (size === 0) {
      this.phase = Phase.Trailers;
      this.trailerBytes = 0;
    } else {
      this.phase = Phase.ChunkData;
      this.remaining = size;
    }
    return next;
  }

  /** Trailer fields are read and dropped (a proxy may discard them, RFC 9110 §6.5.1); a blank line ends them. */
  private trailers(chunk: Buffer, off: number): number {
    const [next, complete] = this.readLine(chunk, off, MAX_TRAILER_BYTES);
    this.trailerBytes += next - off;
    if (this.trailerBytes > MAX_TRAILER_BYTES) throw new ParseError('trailer section too large');
    if (!complete) return next;
    const line = this.line;
    this.line = '';
    if (line.length < 2 || line.charCodeAt(line.length - 2) !== 13) throw new ParseError('trailer line without CRLF');
    if (line.length === 2) this.phase = Phase.Done;
    return next;
  }
}
