import { METHODS } from 'node:http';
import { MAX_CHUNK_LINE, MAX_CHUNK_SIZE_DIGITS, trimOws } from '../../shared/http1-syntax.js';
import { HttpParserError, type ParseErrorCode, type ParseErrorStatus } from './errors.js';

/**
 * An incremental HTTP/1.1 request parser (RFC 9112, RFC 9110) for the own server engine: request line, header
 * fields, then the body framed by Content-Length or chunked coding; pipelined requests in one read and a
 * request split over any number of reads give the same result (test/server/own-parser.test.ts).
 *
 * The reference is llhttp as node:http's server runs it (strict: no lenient flags, `maxHeaderSize` 16 KiB):
 * whatever it refuses, this parser refuses, and where both accept they agree on the method, target, version,
 * headers, body bytes, trailers, where each request ends, keep-alive and upgrade
 * (scripts/fuzz/, `npm run fuzz:http-parser`). It is stricter than llhttp 9 only in the cases
 * below; each one has a classifier of the same name in fuzz/stricter.ts, and the differential check allows a
 * difference only when one of those classifiers recognises it:
 * - `multipleSpaces`: more than one SP between the parts of the request line. RFC 9112 §3: request-line =
 *   method SP request-target SP HTTP-version; llhttp skips extra spaces, which hides a malformed line.
 * - `targetForm`: a request-target that is none of the four forms of RFC 9112 §3.2 for its method: `*` other
 *   than with OPTIONS (§3.2.4), CONNECT with anything but host:port (§3.2.3), `*x`, or an absolute-form whose
 *   authority is empty (RFC 9110 §4.2.1: a recipient MUST reject an http URI with an empty host).
 * - `versionNotHttp1`: HTTP/0.9 and HTTP/2.0 in an HTTP/1.x request line, answered 505 (RFC 9110 §15.6.6), and
 *   a request line without a version (llhttp reads it as HTTP/0.9, and the field lines after it as headers).
 * - `hostMissing`, `hostRepeated`: RFC 9112 §3.2 — a server MUST answer 400 to an HTTP/1.1 request without
 *   Host, and to any request with more than one Host field line (node:http's server does the first too, after
 *   its parser, through `requireHostHeader`).
 * - `emptyTransferEncoding`: a Transfer-Encoding field with no coding in it; llhttp ignores it and reads no
 *   body. RFC 9112 §6.1 defines it as a non-empty list; a field a front end may read differently is refused.
 * - `transferCodingNotChunked`: a coding other than chunked before the final chunked (`gzip, chunked`):
 *   RFC 9112 §6.1, a server SHOULD answer 501 to a transfer coding it does not understand.
 * - `contentLengthAboveSafeInteger`: a Content-Length above 2^53 - 1 (llhttp allows 2^64 - 1); answered 413.
 *   RFC 9112 §6.2: a recipient MUST prevent integer overflow; no real request body is 8 PiB.
 * - `chunkSizeAbove2e48`, `chunkExtensionEmpty`, `chunkLineTooLong`: a chunk size above 2^48, an extension
 *   with an empty name or value (RFC 9112 §7.1.1 requires tokens), or a chunk-size line longer than 4 KiB
 *   (llhttp has no bound: a client could stream extension bytes forever). The response parser
 *   (variants/upstream/h1/parser.ts) has the same three rules.
 * - `headTooLarge`: more than `maxHeadBytes` (default 2 × maxHeaderSize) of raw head or trailer bytes. node
 *   counts only target, names and values against maxHeaderSize (this parser counts the same way, so the 431
 *   boundary matches), which leaves whitespace and empty fields unbounded.
 * - `http10TransferEncodingCloses`: an HTTP/1.0 request with Transfer-Encoding is never kept alive: RFC 9112
 *   §6.1, the server MUST close the connection after processing it.
 * - `upgradeTransferEncoding`: an upgrade request (CONNECT, or Upgrade with Connection: upgrade) with a
 *   Transfer-Encoding field other than a valid chunked, or CONNECT with any. llhttp skips its framing checks
 *   for upgrades and hands the bytes after the head to the new protocol, so `chunked\t` or `chunked, gzip`
 *   pass; a CONNECT request has no content (RFC 9110 §9.3.6) and a body no one can frame (RFC 9112 §6.3) is
 *   refused instead.
 * - `upgradeIgnoredInHttp10`: Upgrade in an HTTP/1.0 request is not an upgrade (RFC 9110 §7.8: a server MUST
 *   ignore it); llhttp upgrades. The bytes after it are then read as the next request.
 * - `closeBeatsKeepAlive`: HTTP/1.0 with both `keep-alive` and `close` in Connection is not kept alive
 *   (RFC 9112 §9.6: close means the connection will not persist); llhttp keeps it.
 */

/** How the request body is delimited (RFC 9112 §6.3). */
export const enum BodyKind {
  None,
  Length,
  Chunked,
}

export interface RequestHead {
  method: string;
  /** the request-target as sent (origin-form, absolute-form, authority-form or `*`) */
  target: string;
  /** HTTP/1.<versionMinor> */
  versionMinor: number;
  /** field lines in arrival order: name, value, name, value… names as sent, values without surrounding OWS */
  rawHeaders: string[];
  /** the lower-cased name of each field line (rawHeaders[2i] lower-cased), for lookups */
  names: string[];
  body: BodyKind;
  /** body bytes for BodyKind.Length, else 0 */
  contentLength: number;
  /** the connection may carry another request after this one (RFC 9112 §9.3) */
  keepAlive: boolean;
  /**
   * CONNECT, or Upgrade with a Connection: upgrade: after this request (and its body, if any), the parser stops
   * and execute() returns the offset where the other protocol's bytes begin.
   */
  upgrade: boolean;
  /** Expect holds 100-continue (matched as node:http's server does) */
  expectContinue: boolean;
}

/** What the parser reports to (one connection). Buffers passed to onBody are views of the read: copy to keep. */
export interface RequestSink {
  onHead(head: RequestHead): void;
  onBody(chunk: Buffer): void;
  /** the request is complete; `trailers` as name, value pairs (chunked requests with trailer fields only) */
  onEnd(trailers: string[] | null): void;
}

export interface RequestParserOptions {
  /**
   * node's maxHeaderSize: a head whose target, field names and values (from the first non-blank byte) add up
   * to this many bytes or more is refused with 431, exactly where node:http refuses it. Trailers count apart.
   */
  maxHeaderSize?: number;
  /** bound on the raw bytes of a head or trailer section, whitespace included (default 2 × maxHeaderSize) */
  maxHeadBytes?: number;
  /**
   * An upgrade request's body, if it declares one, belongs to the new protocol: the parser stops right after the
   * head, as node:http's server does (its on_headers_complete returns 2 for an upgrade it has a listener for),
   * and the handler that takes the socket gets the body bytes as the first tunnel bytes. Default false: llhttp's
   * own behaviour, the body is read as the request's (the reference of the parser-level differential check).
   */
  upgradeAfterHead?: boolean;
}

export const DEFAULT_MAX_HEADER_SIZE = 16 * 1024;

const enum Phase {
  /** between requests: CR and LF are skipped (RFC 9112 §2.2), then a head begins */
  Idle,
  Head,
  Length,
  ChunkLine,
  ChunkData,
  ChunkDataCr,
  ChunkDataLf,
  Trailers,
  /** after a request that does not keep the connection alive: only CR/LF may follow (as llhttp) */
  Closed,
  Upgraded,
  Failed,
}

/** Sub-states of a chunk-size line (RFC 9112 §7.1): chunk-size [ chunk-ext ] CRLF */
const enum Chunk {
  SizeStart,
  Size,
  ExtNameStart,
  ExtName,
  ExtValueStart,
  ExtValue,
  Quoted,
  QuotedEscape,
  QuotedEnd,
  Lf,
}

function table(pred: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = pred(c) ? 1 : 0;
  return t;
}
const TCHARS = "!#$%&'*+-.^_`|~";
/** RFC 9110 §5.6.2 tchar */
const TCHAR = table((c) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || TCHARS.includes(String.fromCharCode(c)));
/** RFC 9110 §5.5 field-vchar / SP / HTAB: no control byte (HTAB excepted), no DEL; obs-text allowed */
const FIELD_CHAR = table((c) => c === 9 || (c >= 0x20 && c !== 0x7f));
/** visible ASCII: what llhttp lets into a path or query */
const TARGET_CHAR = table((c) => c > 0x20 && c < 0x7f);
/** the authority of an absolute-form target: llhttp's url server chars ('/', '?' end it) */
const SERVER_CHAR = table((c) => c > 0x20 && c < 0x7f && !'"#<>\\^`{|}/?'.includes(String.fromCharCode(c)));
/** RFC 3986 reg-name: unreserved / pct-encoded / sub-delims, for an authority-form host */
const REG_NAME_CHAR = table(
  (c) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || "-._~%!$&'()*+,;=".includes(String.fromCharCode(c)),
);
const IP_LITERAL_CHAR = table((c) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66) || c === 0x3a || c === 0x2e);
/** chunk extension quoted-string: qdtext and the bytes a quoted-pair may escape (RFC 9110 §5.6.4) */
const QDTEXT = table((c) => c === 9 || c === 0x20 || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80);
const QUOTED_PAIR = table((c) => c === 9 || (c >= 0x20 && c !== 0x7f));
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) HEX[0x41 + c] = HEX[0x61 + c] = 10 + c;

/** the methods llhttp accepts in node:http's server (node's http.METHODS), interned for a lookup without slicing */
const KNOWN_METHODS = new Set(METHODS);
/** `expect` as node:http's server tests it (continueExpression in _http_server.js) */
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;

/**
 * Buffer#latin1Slice: what toString('latin1', s, e) calls after checking its arguments and looking up the
 * encoding, which cost as much as the copy itself for the short strings of a head (a third of the parse time
 * of a typical GET, measured with --cpu-prof). Undocumented but present since node 0.x; the fallback keeps a
 * runtime without it working.
 */
type Latin1Buffer = Buffer & { latin1Slice?: (start: number, end: number) => string };
const latin1: (b: Buffer, s: number, e: number) => string =
  typeof (Buffer.prototype as Latin1Buffer).latin1Slice === 'function'
    ? (b, s, e) => (b as Latin1Buffer).latin1Slice!(s, e)
    : (b, s, e) => b.toString('latin1', s, e);

/** Longest value remembered per field slot: User-Agent and Accept fit, cookies usually do not. */
const CACHED_VALUE_MAX = 160;

/**
 * The strings of recently seen field lines, by a hash of the name's length and end bytes. Clients repeat their
 * field names, and most of their values, on every request: comparing a few bytes is several times cheaper than
 * making a string of them, and the strings are immutable, so every parser shares them.
 */
interface FieldSlot {
  nameBytes: Buffer;
  name: string;
  lower: string;
  /** the last value seen with this name: its bytes (valueLen of them) and its string */
  valueBytes: Buffer;
  valueLen: number;
  value: string;
}
const FIELD_SLOTS: Array<FieldSlot | undefined> = new Array<FieldSlot | undefined>(64);

function sameBytes(cached: Buffer, cachedLen: number, b: Buffer, s: number, len: number): boolean {
  if (cachedLen !== len) return false;
  for (let i = 0; i < len; i++) if (cached[i] !== b[s + i]) return false;
  return true;
}

/**
 * The offset of the first bare LF (not after a CR) or bare CR (followed by anything but LF) in chunk[from, end),
 * or -1; `prev` is the byte before `from` (-1: none). A CR in the last byte is undecided until the next read.
 */
function bareLineEnd(chunk: Buffer, from: number, prev: number): number {
  if (prev === 13 && from < chunk.length && chunk[from] !== 10) return from;
  for (let j = chunk.indexOf(10, from); j !== -1; j = chunk.indexOf(10, j + 1)) {
    if ((j > from ? chunk[j - 1] : prev) !== 13) return j;
  }
  for (let j = chunk.indexOf(13, from); j !== -1 && j + 1 < chunk.length; j = chunk.indexOf(13, j + 1)) {
    if (chunk[j + 1] !== 10) return j;
  }
  return -1;
}

/**
 * The known methods by their length and first byte, bytes and string: a request's method is then compared, not
 * sliced into a new string and hashed for the KNOWN_METHODS lookup (the slice was a fifth of parseHead's time
 * in a --cpu-prof profile of a GET).
 */
const METHOD_SLOTS = new Map<number, Array<{ bytes: Buffer; method: string }>>();
for (const m of KNOWN_METHODS) {
  const key = m.length * 256 + m.charCodeAt(0);
  let slot = METHOD_SLOTS.get(key);
  if (slot === undefined) METHOD_SLOTS.set(key, (slot = []));
  slot.push({ bytes: Buffer.from(m, 'latin1'), method: m });
}

/** The method in b[s, e) as the interned string, or null when it is not one node:http's server accepts. */
function methodString(b: Buffer, s: number, e: number): string | null {
  const slot = METHOD_SLOTS.get((e - s) * 256 + b[s]!);
  if (slot === undefined) return null;
  for (let i = 0; i < slot.length; i++) {
    const m = slot[i]!;
    if (sameBytes(m.bytes, m.bytes.length, b, s, e - s)) return m.method;
  }
  return null;
}

const UINT64_MAX_DIGITS = '18446744073709551615';

/** A decimal digit string above 2^64 - 1 (doubles cannot tell near that bound; the digits can). */
function aboveUint64(digits: string): boolean {
  let i = 0;
  while (i < digits.length - 1 && digits.charCodeAt(i) === 0x30) i++;
  const significant = digits.length - i;
  if (significant !== UINT64_MAX_DIGITS.length) return significant > UINT64_MAX_DIGITS.length;
  return digits.slice(i) > UINT64_MAX_DIGITS;
}

/** The KMP step for CRLFCRLF: `m` bytes of it matched so far, then byte `b`. */
function nextMatch(m: number, b: number): number {
  if (b === (m === 0 || m === 2 ? 13 : 10)) return m + 1;
  return b === 13 ? 1 : 0;
}

/** Lower-cases an ASCII name, returning the same string when it has no upper-case letter (the usual case). */
function lowerName(b: Buffer, s: number, e: number, raw: string): string {
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c >= 0x41 && c <= 0x5a) return raw.toLowerCase();
  }
  return raw;
}

/** The connection options llhttp recognises, one comma-separated element at a time. */
const enum ConnFlag {
  Close = 1,
  KeepAlive = 2,
  Upgrade = 4,
}
function connectionFlags(v: string): number {
  // the values real clients send, without splitting
  if (v === 'keep-alive' || v === 'Keep-Alive') return ConnFlag.KeepAlive;
  if (v === 'close' || v === 'Close') return ConnFlag.Close;
  let flags = 0;
  for (const part of v.split(',')) {
    // llhttp skips SP and HTAB before an option but only SP after it ("close\t" is no close option)
    let s = 0;
    let e = part.length;
    while (s < e && (part.charCodeAt(s) === 32 || part.charCodeAt(s) === 9)) s++;
    while (e > s && part.charCodeAt(e - 1) === 32) e--;
    const t = (s === 0 && e === part.length ? part : part.slice(s, e)).toLowerCase();
    if (t === 'close') flags |= ConnFlag.Close;
    else if (t === 'keep-alive') flags |= ConnFlag.KeepAlive;
    else if (t === 'upgrade') flags |= ConnFlag.Upgrade;
  }
  return flags;
}

/** One connection's request parser: feed it every read with execute(), and call finish() at the end of input. */
export class RequestParser {
  private phase = Phase.Idle;
  private readonly maxHeaderSize: number;
  private readonly upgradeAfterHead: boolean;
  private readonly maxHeadBytes: number;
  /** bytes of the stream before the current read, for error offsets */
  private base = 0;
  /** stream offset where the current request began */
  private messageStart = 0;
  /** head or trailer bytes split over several reads, joined once when the block is complete */
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** how many bytes of CRLFCRLF end what has been read of the current block (0..3) */
  private matched = 0;
  private head: RequestHead | null = null;
  /** body bytes left (Length) or left in the current chunk (ChunkData) */
  private remaining = 0;
  private chunkState = Chunk.SizeStart;
  private chunkLineLen = 0;
  private chunkDigits = 0;
  private chunkSize = 0;
  private error: HttpParserError | null = null;
  /** a trailer section said `Connection: close`: nothing may follow this request (llhttp's rule too) */
  private closeAfter = false;
  /**
   * The OWS after each field value of the head being parsed ('' nearly always): llhttp reads a trailing HTAB
   * after a Content-Length or a Connection option as part of the value, so those two look at it.
   */
  private readonly tails: string[] = [];

  constructor(
    private readonly sink: RequestSink,
    options: RequestParserOptions = {},
  ) {
    this.maxHeaderSize = options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
    this.maxHeadBytes = options.maxHeadBytes ?? 2 * this.maxHeaderSize;
    this.upgradeAfterHead = options.upgradeAfterHead ?? false;
  }

  /** a head has begun and its end has not been read yet: the engine's headers timeout runs meanwhile */
  get readingHead(): boolean {
    return this.phase === Phase.Head;
  }

  /** true after an upgrade (or CONNECT) request completed: the rest of the stream is not HTTP/1.1 */
  get upgraded(): boolean {
    return this.phase === Phase.Upgraded;
  }

  /**
   * Parses one read. Returns the bytes consumed: all of them, except after an upgrade request, where the rest
   * belongs to the new protocol. Throws HttpParserError (and keeps throwing it) on malformed input.
   */
  execute(chunk: Buffer): number {
    if (this.phase === Phase.Failed) throw this.error!;
    if (this.phase === Phase.Upgraded) return 0;
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      // a cast: TypeScript keeps the narrowing from the checks above although the cases below change the phase
      switch (this.phase as Phase) {
        case Phase.Idle: {
          let c = chunk[off]!;
          while (c === 13 || c === 10) {
            if (++off === len) break;
            c = chunk[off]!;
          }
          if (off === len) break;
          this.phase = Phase.Head;
          this.messageStart = this.base + off;
          this.matched = 0;
          off = this.readHead(chunk, off);
          break;
        }
        case Phase.Head:
          off = this.readHead(chunk, off);
          break;
        case Phase.Length: {
          const n = len - off < this.remaining ? len - off : this.remaining;
          this.remaining -= n;
          const part = off === 0 && n === len ? chunk : chunk.subarray(off, off + n);
          off += n;
          this.sink.onBody(part);
          if (this.remaining === 0) off = this.complete(off, null);
          break;
        }
        case Phase.ChunkLine:
          off = this.readChunkLine(chunk, off);
          break;
        case Phase.ChunkData: {
          const n = len - off < this.remaining ? len - off : this.remaining;
          this.remaining -= n;
          const part = chunk.subarray(off, off + n);
          off += n;
          if (this.remaining === 0) this.phase = Phase.ChunkDataCr;
          this.sink.onBody(part);
          break;
        }
        case Phase.ChunkDataCr:
          if (chunk[off] !== 13) this.fail('HPE_MISSING_CHUNK_CRLF', 'missing CRLF after chunk data', 400, off);
          off++;
          this.phase = Phase.ChunkDataLf;
          break;
        case Phase.ChunkDataLf:
          if (chunk[off] !== 10) this.fail('HPE_MISSING_CHUNK_CRLF', 'missing CRLF after chunk data', 400, off);
          off++;
          this.startChunkLine();
          break;
        case Phase.Trailers:
          off = this.readTrailers(chunk, off);
          break;
        case Phase.Closed: {
          const c = chunk[off]!;
          if (c !== 13 && c !== 10) this.fail('HPE_CLOSED_CONNECTION', 'data after a request that closes the connection', 400, off);
          off++;
          break;
        }
        case Phase.Upgraded:
          this.base += off;
          return off;
        case Phase.Failed:
          throw this.error!;
      }
    }
    this.base += len;
    return len;
  }

  /** The input ended. Throws HttpParserError when it ended inside a request. */
  finish(): void {
    if (this.phase === Phase.Failed) throw this.error!;
    if (this.phase === Phase.Idle || this.phase === Phase.Closed || this.phase === Phase.Upgraded) return;
    this.fail('HPE_INVALID_EOF_STATE', 'the input ended inside a request', 400, 0);
  }

  private fail(code: ParseErrorCode, message: string, status: ParseErrorStatus, at: number): never {
    const err = new HttpParserError(code, message, status, this.messageStart, this.base + at);
    this.phase = Phase.Failed;
    this.error = err;
    throw err;
  }

  /**
   * Finds the CRLFCRLF that ends a head or trailer section, keeping the bytes of a block split over reads.
   * Returns the offset just after the terminator in `chunk`, or -1 when the whole read was kept.
   */
  private findBlockEnd(chunk: Buffer, off: number): number {
    const len = chunk.length;
    let m = this.matched;
    let i = off;
    // a terminator begun in earlier bytes may complete at the start of this read
    while (m > 0 && i < len) {
      m = nextMatch(m, chunk[i]!);
      i++;
      if (m === 4) return i;
    }
    if (i < len) {
      const e = chunk.indexOf('\r\n\r\n', i, 'latin1');
      if (e !== -1) return e + 4;
      // a CRLFCRLF prefix can only sit in the last 3 bytes
      m = 0;
      for (let j = len - 3 > i ? len - 3 : i; j < len; j++) m = nextMatch(m, chunk[j]!);
    }
    this.matched = m;
    // the m bytes that may begin the terminator are not part of the block
    if (this.pendingLen + len - off - m > this.maxHeadBytes) {
      // RFC 9112 §3: a request-target longer than the server parses MUST get 414, not 431
      if (this.phase === Phase.Head && this.requestLineOpen(chunk, off)) this.fail('HPE_URI_TOO_LONG', 'request line longer than the head limit', 414, len);
      this.fail('HPE_HEAD_TOO_LARGE', `head larger than ${this.maxHeadBytes} bytes`, 431, len);
    }
    if (this.phase === Phase.Head) {
      // A head without CRLFCRLF yet would wait for more bytes until the headers timeout; a bare LF, or a CR
      // followed by anything but LF, belongs in no valid head: refuse it now, at that byte, as llhttp does.
      const last = this.pending.length > 0 ? this.pending[this.pending.length - 1]! : null;
      const bad = bareLineEnd(chunk, off, last === null || last.length === 0 ? -1 : last[last.length - 1]!);
      if (bad !== -1) this.fail('HPE_BARE_CR_OR_LF', 'bare CR or LF in a head', 400, bad);
    }
    // copied: the caller may reuse its read buffer
    this.pending.push(Buffer.from(chunk.subarray(off)));
    this.pendingLen += len - off;
    return -1;
  }

  /** No line end yet in the head being read: the request line alone fills it (an error path only). */
  private requestLineOpen(chunk: Buffer, off: number): boolean {
    for (const piece of this.pending) if (piece.includes(10)) return false;
    return chunk.indexOf(10, off) === -1;
  }

  /** The block's bytes (pending + chunk[off, end)), without the final CRLFCRLF: [buffer, start, end]. */
  private takeBlock(chunk: Buffer, off: number, end: number): [Buffer, number, number] {
    if (this.pendingLen === 0) return [chunk, off, end - 4 > off ? end - 4 : off];
    this.pending.push(chunk.subarray(off, end));
    const total = this.pendingLen + end - off;
    const buf = Buffer.concat(this.pending, total);
    this.pending.length = 0;
    this.pendingLen = 0;
    return [buf, 0, total - 4 > 0 ? total - 4 : 0];
  }

  private readHead(chunk: Buffer, off: number): number {
    const end = this.findBlockEnd(chunk, off);
    if (end === -1) return chunk.length;
    const [buf, s, e] = this.takeBlock(chunk, off, end);
    if (e - s > this.maxHeadBytes) {
      const lineEnd = buf.indexOf(13, s);
      if (lineEnd === -1 || lineEnd - s > this.maxHeaderSize) this.fail('HPE_URI_TOO_LONG', 'request line longer than the head limit', 414, end);
      this.fail('HPE_HEAD_TOO_LARGE', `head larger than ${this.maxHeadBytes} bytes`, 431, end);
    }
    const head = this.parseHead(buf, s, e, end);
    this.head = head;
    this.matched = 0;
    this.sink.onHead(head);
    if (head.upgrade && (head.method === 'CONNECT' || this.upgradeAfterHead)) return this.complete(end, null);
    switch (head.body) {
      case BodyKind.Length:
        this.phase = Phase.Length;
        this.remaining = head.contentLength;
        return end;
      case BodyKind.Chunked:
        this.startChunkLine();
        return end;
      default:
        return this.complete(end, null);
    }
  }

  /** The request is complete: report it and decide what the connection does next. */
  private complete(off: number, trailers: string[] | null): number {
    const head = this.head!;
    this.head = null;
    this.phase = head.upgrade ? Phase.Upgraded : head.keepAlive && !this.closeAfter ? Phase.Idle : Phase.Closed;
    this.closeAfter = false;
    this.sink.onEnd(trailers);
    return off;
  }

  private startChunkLine(): void {
    this.phase = Phase.ChunkLine;
    this.chunkState = Chunk.SizeStart;
    this.chunkLineLen = 0;
    this.chunkDigits = 0;
    this.chunkSize = 0;
  }

  private readChunkLine(chunk: Buffer, off: number): number {
    const len = chunk.length;
    let st = this.chunkState;
    let i = off;
    for (; i < len; i++) {
      const c = chunk[i]!;
      switch (st) {
        case Chunk.SizeStart:
          if (HEX[c]! < 0) this.fail('HPE_INVALID_CHUNK_SIZE', 'invalid chunk size', 400, i);
          st = Chunk.Size;
          this.chunkDigit(HEX[c]!, i);
          break;
        case Chunk.Size: {
          const d = HEX[c]!;
          if (d >= 0) this.chunkDigit(d, i);
          else if (c === 0x3b) st = Chunk.ExtNameStart;
          else if (c === 13) st = Chunk.Lf;
          else this.fail('HPE_INVALID_CHUNK_SIZE', 'invalid character in chunk size', 400, i);
          break;
        }
        case Chunk.ExtNameStart:
          if (TCHAR[c] === 0) this.fail('HPE_INVALID_CHUNK_EXTENSION', 'chunk extension without a name', 400, i);
          st = Chunk.ExtName;
          break;
        case Chunk.ExtName:
          if (TCHAR[c] === 1) break;
          if (c === 0x3d) st = Chunk.ExtValueStart;
          else if (c === 0x3b) st = Chunk.ExtNameStart;
          else if (c === 13) st = Chunk.Lf;
          else this.fail('HPE_INVALID_CHUNK_EXTENSION', 'invalid character in a chunk extension name', 400, i);
          break;
        case Chunk.ExtValueStart:
          if (c === 0x22) st = Chunk.Quoted;
          else if (TCHAR[c] === 1) st = Chunk.ExtValue;
          else this.fail('HPE_INVALID_CHUNK_EXTENSION', 'chunk extension with an empty or invalid value', 400, i);
          break;
        case Chunk.ExtValue:
          if (TCHAR[c] === 1) break;
          if (c === 0x3b) st = Chunk.ExtNameStart;
          else if (c === 13) st = Chunk.Lf;
          else this.fail('HPE_INVALID_CHUNK_EXTENSION', 'invalid character in a chunk extension value', 400, i);
          break;
        case Chunk.Quoted:
          if (c === 0x22) st = Chunk.QuotedEnd;
          else if (c === 0x5c) st = Chunk.QuotedEscape;
          else if (QDTEXT[c] === 0) this.fail('HPE_INVALID_CHUNK_EXTENSION', 'invalid character in a quoted chunk extension', 400, i);
          break;
        case Chunk.QuotedEscape:
          if (QUOTED_PAIR[c] === 0) this.fail('HPE_INVALID_CHUNK_EXTENSION', 'invalid quoted-pair in a chunk extension', 400, i);
          st = Chunk.Quoted;
          break;
        case Chunk.QuotedEnd:
          if (c === 0x3b) st = Chunk.ExtNameStart;
          else if (c === 13) st = Chunk.Lf;
          else this.fail('HPE_INVALID_CHUNK_EXTENSION', 'invalid character after a quoted chunk extension', 400, i);
          break;
        case Chunk.Lf: {
          if (c !== 10) this.fail('HPE_INVALID_CHUNK_SIZE', 'chunk-size line without CRLF', 400, i);
          // the line without its CRLF
          if (this.chunkLineLen + i - 1 - off > MAX_CHUNK_LINE)
            this.fail('HPE_CHUNK_LINE_TOO_LONG', `chunk-size line longer than ${MAX_CHUNK_LINE} bytes`, 400, i);
          if (this.chunkSize === 0) {
            this.phase = Phase.Trailers;
            // the line's CRLF is the first half of the CRLFCRLF that ends an empty trailer section
            this.matched = 2;
          } else {
            this.phase = Phase.ChunkData;
            this.remaining = this.chunkSize;
          }
          return i + 1;
        }
      }
    }
    this.chunkState = st;
    this.chunkLineLen += i - off;
    // + 1: the read may have ended between the CR and the LF
    if (this.chunkLineLen > MAX_CHUNK_LINE + 1) this.fail('HPE_CHUNK_LINE_TOO_LONG', `chunk-size line longer than ${MAX_CHUNK_LINE} bytes`, 400, i);
    return i;
  }

  private chunkDigit(d: number, at: number): void {
    // leading zeros of any length are legal (chunk-size = 1*HEXDIG)
    if (this.chunkDigits === 0 && d === 0) return;
    if (++this.chunkDigits > MAX_CHUNK_SIZE_DIGITS) this.fail('HPE_CHUNK_SIZE_TOO_LARGE', 'chunk size above 2^48', 400, at);
    this.chunkSize = this.chunkSize * 16 + d;
  }

  private readTrailers(chunk: Buffer, off: number): number {
    const end = this.findBlockEnd(chunk, off);
    if (end === -1) return chunk.length;
    const [buf, s, e] = this.takeBlock(chunk, off, end);
    this.matched = 0;
    if (e - s > this.maxHeadBytes) this.fail('HPE_HEAD_TOO_LARGE', `trailer section larger than ${this.maxHeadBytes} bytes`, 431, end);
    if (e === s) return this.complete(end, null);
    const trailers: string[] = [];
    // the trailer section is field lines only: parse it as one, with the line before it already ended
    const count = this.parseFields(buf, s, e, end, trailers, null, 0, null);
    if (count >= this.maxHeaderSize) this.fail('HPE_HEADER_OVERFLOW', 'trailer fields larger than maxHeaderSize', 431, end);
    this.checkTrailerFraming(trailers, end);
    return this.complete(end, trailers);
  }

  /**
   * As llhttp: framing fields after the body they would have framed are refused (a request smuggling shape,
   * RFC 9110 §6.5.1), and `Connection: close` in the trailer section still ends the connection after the
   * request (the next pipelined request is refused, as node:http refuses it).
   */
  private checkTrailerFraming(trailers: string[], at: number): void {
    for (let i = 0; i < trailers.length; i += 2) {
      const name = trailers[i]!;
      if (name.length === 14 && name.toLowerCase() === 'content-length')
        this.fail('HPE_INVALID_CONTENT_LENGTH', 'Content-Length in a trailer section', 400, at);
      // an empty one adds no coding: llhttp lets it pass here as in a head (the proxy drops it)
      if (name.length === 17 && trailers[i + 1] !== '' && name.toLowerCase() === 'transfer-encoding')
        this.fail('HPE_INVALID_TRANSFER_ENCODING', 'Transfer-Encoding in a trailer section', 400, at);
      if (name.length === 10 && name.toLowerCase() === 'connection' && (connectionFlags(trailers[i + 1]!) & ConnFlag.Close) !== 0) this.closeAfter = true;
    }
  }

  /**
   * Parses field lines in buf[s, e) (each ended by CRLF, the last one's CRLF excluded) into `raw` (and their
   * lower-cased names into `names` when given). Returns node's header-size count of them: names plus values
   * from their first non-blank byte, trailing blanks included. `at` is where errors are reported.
   */
  private parseFields(b: Buffer, s: number, e: number, at: number, raw: string[], names: string[] | null, count: number, tails: string[] | null): number {
    let p = s;
    while (p < e) {
      const c0 = b[p]!;
      if (c0 === 32 || c0 === 9) this.fail('HPE_OBS_FOLD', 'obsolete line folding or a field line starting with whitespace', 400, at);
      let q = p;
      while (q < e && TCHAR[b[q]!] === 1) q++;
      if (q === p || q === e || b[q] !== 0x3a) {
        if (q < e && (b[q] === 13 || b[q] === 10)) this.fail('HPE_INVALID_HEADER_TOKEN', 'field line without a colon', 400, at);
        this.fail('HPE_INVALID_HEADER_TOKEN', 'invalid field name (or whitespace before the colon)', 400, at);
      }
      const nameEnd = q;
      q++;
      while (q < e && (b[q] === 32 || b[q] === 9)) q++;
      const valueStart = q;
      while (q < e && FIELD_CHAR[b[q]!] === 1) q++;
      const lineEnd = q;
      if (q < e) {
        if (b[q] !== 13 || b[q + 1] !== 10) {
          const c = b[q]!;
          if (c === 13 || c === 10) this.fail('HPE_BARE_CR_OR_LF', 'bare CR or LF in a field line', 400, at);
          this.fail('HPE_INVALID_HEADER_VALUE', 'control byte in a field value', 400, at);
        }
        q += 2;
      }
      let valueEnd = lineEnd;
      while (valueEnd > valueStart && (b[valueEnd - 1] === 32 || b[valueEnd - 1] === 9)) valueEnd--;
      count += nameEnd - p + lineEnd - valueStart;
      const nameLen = nameEnd - p;
      const h = (nameLen * 31 + b[p]! + b[nameEnd - 1]! * 7) & 63;
      let slot = FIELD_SLOTS[h];
      if (slot === undefined || !sameBytes(slot.nameBytes, slot.nameBytes.length, b, p, nameLen)) {
        const name = latin1(b, p, nameEnd);
        slot = {
          nameBytes: Buffer.from(b.subarray(p, nameEnd)),
          name,
          lower: lowerName(b, p, nameEnd, name),
          valueBytes: Buffer.allocUnsafe(CACHED_VALUE_MAX),
          valueLen: -1,
          value: '',
        };
        FIELD_SLOTS[h] = slot;
      }
      const valueLen = valueEnd - valueStart;
      let value: string;
      if (valueLen === 0) value = '';
      else if (sameBytes(slot.valueBytes, slot.valueLen, b, valueStart, valueLen)) value = slot.value;
      else {
        value = latin1(b, valueStart, valueEnd);
        if (valueLen <= CACHED_VALUE_MAX) {
          b.copy(slot.valueBytes, 0, valueStart, valueEnd);
          slot.valueLen = valueLen;
          slot.value = value;
        }
      }
      raw.push(slot.name, value);
      if (names !== null) names.push(slot.lower);
      if (tails !== null) tails[raw.length / 2 - 1] = valueEnd === lineEnd ? '' : b.toString('latin1', valueEnd, lineEnd);
      p = q;
    }
    return count;
  }

  private parseHead(b: Buffer, s: number, e: number, at: number): RequestHead {
    // request-line = method SP request-target SP HTTP-version (RFC 9112 §3)
    let lineEnd = b.indexOf(13, s);
    if (lineEnd === -1 || lineEnd > e) lineEnd = e;
    let p = s;
    while (p < lineEnd && TCHAR[b[p]!] === 1) p++;
    if (p === s || p === lineEnd || b[p] !== 32) this.fail('HPE_INVALID_METHOD', 'invalid method', 400, at);
    const method = methodString(b, s, p);
    if (method === null) this.fail('HPE_UNKNOWN_METHOD', `unknown method ${JSON.stringify(latin1(b, s, p).slice(0, 32))}`, 501, at);
    p++;
    if (b[p] === 32) this.fail('HPE_INVALID_REQUEST_LINE', 'more than one space in the request line', 400, at);
    const targetStart = p;
    while (p < lineEnd && TARGET_CHAR[b[p]!] === 1) p++;
    const targetEnd = p;
    if (p === lineEnd || b[p] !== 32) this.fail('HPE_INVALID_TARGET', 'invalid character in the request-target', 400, at);
    if (targetEnd === targetStart) this.fail('HPE_INVALID_REQUEST_LINE', 'more than one space in the request line', 400, at);
    p++;
    if (b[p] === 32) this.fail('HPE_INVALID_REQUEST_LINE', 'more than one space in the request line', 400, at);
    this.checkTarget(b, targetStart, targetEnd, method, at);
    // HTTP-version = "HTTP/" DIGIT "." DIGIT
    if (
      lineEnd - p !== 8 ||
      b[p] !== 0x48 ||
      b[p + 1] !== 0x54 ||
      b[p + 2] !== 0x54 ||
      b[p + 3] !== 0x50 ||
      b[p + 4] !== 0x2f ||
      b[p + 6] !== 0x2e ||
      HEX[b[p + 5]!]! < 0 ||
      HEX[b[p + 5]!]! > 9 ||
      HEX[b[p + 7]!]! < 0 ||
      HEX[b[p + 7]!]! > 9
    ) {
      this.fail('HPE_INVALID_VERSION', 'invalid HTTP version', 400, at);
    }
    if (b[p + 5] !== 0x31 || (b[p + 7] !== 0x30 && b[p + 7] !== 0x31)) this.fail('HPE_UNSUPPORTED_VERSION', 'HTTP version other than 1.0 and 1.1', 505, at);
    const versionMinor = b[p + 7]! - 0x30;
    if (lineEnd < e && b[lineEnd + 1] !== 10) this.fail('HPE_BARE_CR_OR_LF', 'bare CR after the request line', 400, at);

    const rawHeaders: string[] = [];
    const names: string[] = [];
    let count = targetEnd - targetStart;
    // tails[i] is written for every field i of this head: no reset (setting an array's length is a runtime call)
    const tails = this.tails;
    if (lineEnd < e) count = this.parseFields(b, lineEnd + 2, e, at, rawHeaders, names, count, tails);
    if (count >= this.maxHeaderSize) {
      // node counts the target with the fields; when it alone is too long the answer is 414 (RFC 9112 §3)
      if (targetEnd - targetStart >= this.maxHeaderSize) this.fail('HPE_URI_TOO_LONG', 'request-target longer than maxHeaderSize', 414, at);
      this.fail('HPE_HEADER_OVERFLOW', 'header fields larger than maxHeaderSize', 431, at);
    }

    let contentLength = -1;
    let te: string | null = null;
    let conn = 0;
    let hasUpgrade = false;
    let hosts = 0;
    let expect: string | null = null;
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      switch (name.length) {
        case 4:
          if (name === 'host') hosts++;
          break;
        case 6:
          if (name === 'expect') expect = expect === null ? rawHeaders[2 * i + 1]! : `${expect}, ${rawHeaders[2 * i + 1]!}`;
          break;
        case 7:
          // an empty Upgrade asks for nothing (llhttp ignores it too)
          if (name === 'upgrade' && rawHeaders[2 * i + 1] !== '') hasUpgrade = true;
          break;
        case 10:
          if (name === 'connection') conn |= connectionFlags(tails[i] === '' ? rawHeaders[2 * i + 1]! : rawHeaders[2 * i + 1]! + tails[i]!);
          break;
        case 14:
          if (name === 'content-length') {
            if (contentLength !== -1) this.fail('HPE_DUPLICATE_CONTENT_LENGTH', 'more than one Content-Length', 400, at);
            // trailing SP is OWS to llhttp, a trailing HTAB an invalid character
            if (tails[i]!.includes('\t')) this.fail('HPE_INVALID_CONTENT_LENGTH', 'invalid Content-Length', 400, at);
            contentLength = this.contentLength(rawHeaders[2 * i + 1]!, at);
          }
          break;
        case 17:
          if (name === 'transfer-encoding') {
            // an empty field adds no coding (llhttp skips it); only empty ones at all is refused below
            const v = rawHeaders[2 * i + 1]!;
            // as with Content-Length, llhttp reads a trailing HTAB as part of the coding ("chunked\t" is no chunked)
            if (tails[i]!.includes('\t')) this.fail('HPE_INVALID_TRANSFER_ENCODING', 'invalid Transfer-Encoding', 400, at);
            te = te === null || te === '' ? v : v === '' ? te : `${te},${v}`;
          }
          break;
      }
    }
    if (hosts > 1) this.fail('HPE_DUPLICATE_HOST', 'more than one Host field line', 400, at);
    if (hosts === 0 && versionMinor === 1) this.fail('HPE_MISSING_HOST', 'HTTP/1.1 request without Host', 400, at);

    let body = BodyKind.None;
    let keepAlive = versionMinor === 1 ? (conn & ConnFlag.Close) === 0 : (conn & ConnFlag.KeepAlive) !== 0 && (conn & ConnFlag.Close) === 0;
    if (te !== null) {
      if (method === 'CONNECT') this.fail('HPE_INVALID_TRANSFER_ENCODING', 'Transfer-Encoding on CONNECT, which has no content', 400, at);
      if (contentLength !== -1) this.fail('HPE_TE_WITH_CONTENT_LENGTH', 'both Transfer-Encoding and Content-Length', 400, at);
      this.checkTransferEncoding(te, at);
      body = BodyKind.Chunked;
      if (versionMinor === 0) keepAlive = false;
    } else if (contentLength > 0) {
      body = BodyKind.Length;
    }
    return {
      method,
      target: latin1(b, targetStart, targetEnd),
      versionMinor,
      rawHeaders,
      names,
      body,
      contentLength: body === BodyKind.Length ? contentLength : 0,
      keepAlive,
      // RFC 9110 §7.8: a server MUST ignore Upgrade in an HTTP/1.0 request (rule upgradeIgnoredInHttp10)
      upgrade: method === 'CONNECT' || (hasUpgrade && versionMinor === 1 && (conn & ConnFlag.Upgrade) !== 0),
      // RFC 9110 §10.1.1: a 100-continue expectation in HTTP/1.0 MUST be ignored (node only reads it in 1.1)
      expectContinue: versionMinor === 1 && expect !== null && CONTINUE.test(expect),
    };
  }

  /** RFC 9112 §3.2: origin-form, absolute-form, authority-form (CONNECT only), asterisk-form (OPTIONS only). */
  private checkTarget(b: Buffer, s: number, e: number, method: string, at: number): void {
    const c0 = b[s]!;
    if (method === 'CONNECT') {
      // authority-form = uri-host ":" port
      let p = s;
      if (c0 === 0x5b) {
        p++;
        while (p < e && IP_LITERAL_CHAR[b[p]!] === 1) p++;
        if (p === s + 1 || b[p] !== 0x5d) this.fail('HPE_TARGET_FORM', 'CONNECT needs host:port', 400, at);
        p++;
      } else {
        while (p < e && REG_NAME_CHAR[b[p]!] === 1) p++;
        if (p === s) this.fail('HPE_TARGET_FORM', 'CONNECT needs host:port', 400, at);
      }
      if (b[p] !== 0x3a || p + 1 >= e) this.fail('HPE_TARGET_FORM', 'CONNECT needs host:port', 400, at);
      for (p++; p < e; p++) if (b[p]! < 0x30 || b[p]! > 0x39) this.fail('HPE_TARGET_FORM', 'CONNECT needs host:port', 400, at);
      return;
    }
    if (c0 === 0x2f) return; // origin-form: every visible byte was checked
    if (c0 === 0x2a) {
      if (e - s !== 1 || method !== 'OPTIONS') this.fail('HPE_TARGET_FORM', 'asterisk-form is for OPTIONS only', 400, at);
      return;
    }
    // absolute-form: llhttp takes an all-letters scheme, then "://", the authority, then a path or query
    let p = s;
    while (p < e && (b[p]! | 0x20) >= 0x61 && (b[p]! | 0x20) <= 0x7a) p++;
    if (p === s || e - p < 3 || b[p] !== 0x3a || b[p + 1] !== 0x2f || b[p + 2] !== 0x2f) this.fail('HPE_INVALID_TARGET', 'invalid request-target', 400, at);
    p += 3;
    const host = p;
    while (p < e && SERVER_CHAR[b[p]!] === 1) {
      // llhttp's "Double @ in url"
      if (b[p] === 0x40 && b[p + 1] === 0x40) this.fail('HPE_INVALID_TARGET', 'double @ in the authority', 400, at);
      p++;
    }
    if (p < e && b[p] !== 0x2f && b[p] !== 0x3f) this.fail('HPE_INVALID_TARGET', 'invalid character in the authority', 400, at);
    if (p === host) this.fail('HPE_TARGET_FORM', 'absolute-form with an empty authority', 400, at);
  }

  private contentLength(v: string, at: number): number {
    const len = v.length;
    if (len === 0) this.fail('HPE_INVALID_CONTENT_LENGTH', 'empty Content-Length', 400, at);
    let n = 0;
    for (let i = 0; i < len; i++) {
      const c = v.charCodeAt(i);
      if (c < 0x30 || c > 0x39) this.fail('HPE_INVALID_CONTENT_LENGTH', 'invalid Content-Length', 400, at);
      n = n * 10 + (c - 0x30);
    }
    if (n > Number.MAX_SAFE_INTEGER) {
      // llhttp's own overflow (above 2^64 - 1) is a malformed field to it: the same 400 here
      if (aboveUint64(v)) this.fail('HPE_INVALID_CONTENT_LENGTH', 'Content-Length above 2^64 - 1', 400, at);
      this.fail('HPE_CONTENT_LENGTH_TOO_LARGE', 'Content-Length above 2^53 - 1', 413, at);
    }
    return n;
  }

  /** RFC 9112 §6.1, §6.3: chunked, once, last; any other coding is not implemented here. */
  private checkTransferEncoding(te: string, at: number): void {
    if (te.length === 7 && te.toLowerCase() === 'chunked') return;
    // llhttp refuses anything after the final chunked, even an empty list element ("chunked ,")
    if (!trimOws(te).toLowerCase().endsWith('chunked'))
      this.fail('HPE_INVALID_TRANSFER_ENCODING', 'chunked is not the final transfer coding (RFC 9112 §6.3)', 400, at);
    const codings: string[] = [];
    for (const part of te.split(',')) {
      const t = trimOws(part);
      if (t !== '') codings.push(t.toLowerCase());
    }
    if (codings.length === 0) this.fail('HPE_INVALID_TRANSFER_ENCODING', 'empty Transfer-Encoding', 400, at);
    // empty list elements are legal (RFC 9110 §5.6.1): ", chunked" is chunked
    if (codings.length === 1 && codings[0] === 'chunked') return;
    const chunkedAt = codings.indexOf('chunked');
    if (chunkedAt !== codings.length - 1) this.fail('HPE_INVALID_TRANSFER_ENCODING', 'chunked is not the final transfer coding (RFC 9112 §6.3)', 400, at);
    this.fail('HPE_UNSUPPORTED_TRANSFER_CODING', `unsupported transfer coding ${JSON.stringify(codings[0]!.slice(0, 32))}`, 501, at);
  }
}
