import type { IncomingHttpHeaders } from 'node:http';
import { FIRST_WINS, MAX_CHUNK_LINE, MAX_CHUNK_SIZE_DIGITS, trimOws } from '../../shared/http1-syntax.js';

/**
 * An incremental HTTP/1.1 response parser (RFC 9112) for the h1 upstream client: status line, header fields,
 * then the body framed by Content-Length, chunked coding or the connection's end.
 *
 * Strict where leniency would let an upstream smuggle or desynchronise a pooled connection: bare CR/LF/NUL,
 * control bytes, obs-fold, repeated differing Content-Length, Content-Length together with Transfer-Encoding,
 * malformed chunk-size lines or trailers and oversize heads are all protocol errors (the proxy answers 502 and
 * the connection is closed). Control bytes matter beyond smuggling: node:http's writeHead throws on a header
 * value that holds one (and on a status outside 100-999), so such a head must never reach the server side.
 *
 * It refuses everything llhttp (node's own client parser) refuses — test/proxy/h1-parser.test.ts checks that
 * differentially — and is stricter where llhttp 9 lets through what cannot be forwarded or is pointless:
 * - a status code below 100 (`000`, `099`): node:http's writeHead throws on it, so it cannot be forwarded;
 * - control bytes in the reason phrase (never forwarded, but no legitimate server sends them);
 * - a chunk extension with an empty name or value (`;=b`, `;a=`): RFC 9112 §7.1.1 requires tokens there;
 * - a chunk size above 2^48 after leading zeros (llhttp allows up to 2^64): no real chunk is 256 TiB, and
 *   larger sizes would lose precision as a JS number.
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
const MAX_TRAILER_BYTES = 16 * 1024;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/**
 * A control byte (HTAB excepted; RFC 9110 §5.5), a CR not followed by LF, or an LF not preceded by CR: the
 * bytes node:http's validateHeaderValue refuses, plus bare line breaks. obs-text (0x80-0xff) stays legal.
 */
// eslint-disable-next-line no-control-regex -- matching control bytes is the point
const BAD_HEAD_BYTE = /[\0-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: |$)/;
const DIGITS = /^\d+$/;
/**
 * RFC 9112 §7.1: chunk-size [ chunk-ext ] CRLF, chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ).
 * No BWS at all: llhttp 9 refuses it (HPE_STRICT), and upstreams that send it are not seen in practice.
 */
const CHUNK_LINE =
  /^([0-9A-Fa-f]+)(?:;[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:=(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+|"(?:[\t !#-[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"))?)*\r\n$/;
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i;

function hasToken(list: string, token: string): boolean {
  // the values real upstreams send: no lower-casing or splitting for them
  if (list === 'keep-alive') return token === 'keep-alive';
  if (list === 'close') return token === 'close';
  const l = list.toLowerCase();
  if (l === token) return true;
  for (const t of l.split(',')) if (t.trim() === token) return true;
  return false;
}

/** The KMP step for CRLFCRLF: `m` bytes of it matched so far, then byte `b`. */
function nextMatch(m: number, b: number): number {
  if (b === (m === 0 || m === 2 ? 13 : 10)) return m + 1;
  return b === 13 ? 1 : 0;
}

let lastHint = '';
let lastHintMs = -1;

/** Parse one response head (status line + fields, without the blank line). */
export function parseHead(text: string, requestWasHead: boolean): ParsedHead {
  if (BAD_HEAD_BYTE.test(text)) throw new ParseError('control byte or bare CR/LF in the response head');
  let eol = text.indexOf('\r\n');
  const statusLine = eol === -1 ? text : text.slice(0, eol);
  const m = STATUS_LINE.exec(statusLine);
  if (m === null) throw new ParseError(`malformed status line: ${JSON.stringify(statusLine.slice(0, 64))}`);
  const minor = m[1] === '1';
  // 3 digits, first non-zero: 100-999, exactly what node:http's writeHead accepts
  const statusCode = Number(m[2]);

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
    // No body is read here, whatever the head says. If the upstream writes one anyway, those bytes would be
    // read as the answer to the next request on this connection — another client's (response-queue
    // poisoning). A HEAD answer's Content-Length describes the GET body, so nothing tells a harmless HEAD
    // answer from one followed by a body: never reuse after HEAD; after 1xx/204/304 only when no body is
    // announced. See docs/reliability.md "Bodies where none may be".
    if (requestWasHead || transferEncoding !== null || contentLength > 0) keepAlive = false;
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
  /**
   * Bytes of a head split over several reads, kept as a list and joined once when the head is complete:
   * joining on every read made a head dripped byte by byte quadratic (64 KiB cost ~0.5 s of CPU).
   */
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** how many bytes of CRLFCRLF end the pending bytes (0..3): the terminator may straddle reads */
  private matched = 0;
  /** the last pending byte (a CR there makes an LF at the start of the next read legal) */
  private lastByte = -1;
  /** an interim (1xx) head of this exchange announced a body: the connection must not be reused */
  reuseForbidden = false;
  /** body bytes still expected (Length), or left in the current chunk (ChunkData) */
  private remaining = 0;
  /** a chunk-size or trailer line split over several reads */
  private line = '';
  private trailerBytes = 0;
  /** the trailer section of the response being parsed (name, value pairs as received), null while it has none */
  trailerFields: string[] | null = null;
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
    this.pending.length = 0;
    this.pendingLen = 0;
    this.matched = 0;
    this.lastByte = -1;
    this.reuseForbidden = false;
    this.remaining = 0;
    this.line = '';
    this.trailerBytes = 0;
    this.trailerFields = null;
    this.crlfSeen = 0;
  }

  /** true while some of the response has been received (a head byte or more) */
  get started(): boolean {
    return this.phase !== Phase.Head || this.pendingLen > 0;
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
    let end: number;
    let consumed: number;
    if (this.pendingLen === 0) {
      end = chunk.indexOf('\r\n\r\n', off, 'latin1');
      if (end === -1) return this.holdHead(chunk, off);
      consumed = end + 4;
    } else {
      // a terminator begun in the pending bytes completes within this read's first 3 bytes
      let headEnd = -1;
      let m = this.matched;
      for (let i = off; m > 0 && i < chunk.length && i < off + 3; i++) {
        m = nextMatch(m, chunk[i]!);
        if (m === 4) {
          headEnd = i + 1;
          break;
        }
      }
      if (headEnd === -1) {
        const e = chunk.indexOf('\r\n\r\n', off, 'latin1');
        if (e === -1) return this.holdHead(chunk, off);
        headEnd = e + 4;
      }
      if (this.pendingLen + headEnd - off - 4 > MAX_HEAD_BYTES) throw new ParseError(`response head larger than ${MAX_HEAD_BYTES} bytes`);
      this.pending.push(chunk.subarray(off, headEnd));
      buf = Buffer.concat(this.pending, this.pendingLen + headEnd - off);
      base = 0;
      end = buf.length - 4;
      consumed = headEnd;
      this.pending.length = 0;
      this.pendingLen = 0;
    }
    if (end - base > MAX_HEAD_BYTES) throw new ParseError(`response head larger than ${MAX_HEAD_BYTES} bytes`);
    const head = this.cache.parse(buf, base, end, this.requestWasHead);
    if (head.statusCode < 200) {
      // 1xx interim answers (100 Continue, 103 Early Hints) are not forwarded; the final response follows.
      // 101 would switch protocols, which a plain request never asks for.
      if (head.statusCode === 101) throw new ParseError('unexpected 101 Switching Protocols');
      if (!head.keepAlive) this.reuseForbidden = true;
      this.matched = 0;
      this.lastByte = -1;
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

  /**
   * Keep a head's bytes until its end arrives. Only the new bytes are looked at: a bare LF (or a CR followed
   * by anything but LF) is refused at once, since such a head never ends with CRLFCRLF and would otherwise
   * wait for the headers deadline.
   */
  private holdHead(chunk: Buffer, off: number): number {
    const len = chunk.length;
    if (this.pendingLen + len - off > MAX_HEAD_BYTES) throw new ParseError(`response head larger than ${MAX_HEAD_BYTES} bytes`);
    for (let i = chunk.indexOf(10, off); i !== -1; i = chunk.indexOf(10, i + 1)) {
      if ((i > off ? chunk[i - 1] : this.lastByte) !== 13) throw new ParseError('bare LF in the response head');
    }
    if (this.lastByte === 13 && chunk[off] !== 10) throw new ParseError('bare CR in the response head');
    for (let i = chunk.indexOf(13, off); i !== -1 && i < len - 1; i = chunk.indexOf(13, i + 1)) {
      if (chunk[i + 1] !== 10) throw new ParseError('bare CR in the response head');
    }
    // a CRLFCRLF prefix can only sit in the last 3 bytes
    let m = this.matched;
    let i = off;
    if (len - off > 3) {
      m = 0;
      i = len - 3;
    }
    for (; i < len; i++) m = nextMatch(m, chunk[i]!);
    this.matched = m;
    this.lastByte = chunk[len - 1]!;
    // copied: the read buffer may be reused (see connection.ts READ_BUFFER)
    this.pending.push(Buffer.from(chunk.subarray(off)));
    this.pendingLen += len - off;
    return len;
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
    const m = CHUNK_LINE.exec(line);
    if (m === null) throw new ParseError(`invalid chunk-size line: ${JSON.stringify(line.slice(0, 32))}`);
    let digits = m[1]!;
    // leading zeros of any length are legal (RFC 9112 §7.1 chunk-size = 1*HEXDIG)
    let z = 0;
    while (z < digits.length - 1 && digits.charCodeAt(z) === 48) z++;
    if (z > 0) digits = digits.slice(z);
    if (digits.length > MAX_CHUNK_SIZE_DIGITS) throw new ParseError('chunk size too large');
    const sizeText = digits;
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

  /**
   * Trailer fields, validated like header lines and kept as received (the proxy decides which are forwarded:
   * core/proxy/trailers.ts); a blank line ends them.
   */
  private trailers(chunk: Buffer, off: number): number {
    const [next, complete] = this.readLine(chunk, off, MAX_TRAILER_BYTES);
    this.trailerBytes += next - off;
    if (this.trailerBytes > MAX_TRAILER_BYTES) throw new ParseError('trailer section too large');
    if (!complete) return next;
    const line = this.line;
    this.line = '';
    if (line.length < 2 || line.charCodeAt(line.length - 2) !== 13) throw new ParseError('trailer line without CRLF');
    if (line.length === 2) {
      this.phase = Phase.Done;
      return next;
    }
    // validated like header lines: a bad trailer is as much a sign of a broken or hostile upstream
    const field = line.slice(0, -2);
    const c0 = field.charCodeAt(0);
    if (c0 === 32 || c0 === 9) throw new ParseError('obsolete line folding in a trailer');
    const colon = field.indexOf(':');
    if (colon <= 0 || !TOKEN.test(field.slice(0, colon))) throw new ParseError(`malformed trailer line: ${JSON.stringify(field.slice(0, 64))}`);
    if (BAD_HEAD_BYTE.test(field)) throw new ParseError('control byte or bare CR/LF in a trailer');
    const name = field.slice(0, colon);
    // as llhttp: a length after the body that the length framed is a desynchronisation attempt, not a field
    if (name.length === 14 && name.toLowerCase() === 'content-length') throw new ParseError('Content-Length in a trailer section');
    (this.trailerFields ??= []).push(name, trimOws(field.slice(colon + 1)));
    return next;
  }
}
