/**
 * The `floor` peer: a FLOOR, not a product. The least a Node proxy that reads what it forwards can do, so a
 * report shows how far above it the gateway is: `net` sockets, each client connection paired with one upstream
 * connection of its own (opened on the first request, closed with the client), one request in flight per pair.
 * Per request it parses the request head (request line, the route prefix matched and the path rebuilt from it,
 * Content-Length, Connection), writes the head out with an added X-Forwarded-For, and parses each response's
 * framing (status, Content-Length) to know where the answer ends; response bytes go to the client as they
 * arrive. No other header is looked at, nothing is validated beyond what framing needs.
 *
 * Only what the harness sends is supported: requests with no body or a Content-Length body, responses framed by
 * Content-Length (or bodiless: HEAD, 1xx/204/304). Anything else (Transfer-Encoding, a head over 16 KiB, an
 * unframed response) closes the connection with an error status: never guessed, never forwarded.
 *
 * argv: --port N --upstream-port N [--prefix /p]… (no prefix: every path is forwarded)
 */
import { connect, createServer, type Socket } from 'node:net';
import { onStop, peerArgs } from './args.js';

const { port, upstreamPort, prefixes } = peerArgs();
const routes = prefixes.length > 0 ? prefixes : [''];
const MAX_HEAD = 16 * 1024;
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

const NOT_FOUND = 'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n';
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n';
const NOT_IMPLEMENTED = 'HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\nconnection: close\r\n\r\n';
const BAD_GATEWAY = 'HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n';

/** Value of a header line's field when its name (lower-case) matches, else null; `line` is "name: value". */
function fieldValue(line: string, lowerName: string): string | null {
  const colon = line.indexOf(':');
  if (colon !== lowerName.length) return null;
  if (line.slice(0, colon).toLowerCase() !== lowerName) return null;
  return line.slice(colon + 1).trim();
}

/** "/api" matches "/api", "/api/…" and "/api?…", not "/apix". */
function matchPrefix(path: string): string | null {
  for (const p of routes) {
    if (p === '') return p;
    if (path.startsWith(p) && (path.length === p.length || path[p.length] === '/' || path[p.length] === '?')) return p;
  }
  return null;
}

function contentLength(v: string): number {
  return /^\d{1,15}$/.test(v) ? Number(v) : -1;
}

class Pair {
  private readonly client: Socket;
  private upstream: Socket | null = null;
  private readonly xff: string;
  /** client bytes not yet parsed or forwarded */
  private pending: Buffer | null = null;
  /** request body bytes still to forward */
  private reqBody = 0;
  /** a request was forwarded and its response has not ended */
  private inFlight = false;
  private closeAfter = false;
  private isHead = false;
  /** response: head bytes collected so far (null when between heads or in a body) */
  private resHead: Buffer | null = null;
  private resBody = 0;
  private resInBody = false;

  constructor(client: Socket) {
    this.client = client;
    this.xff = `X-Forwarded-For: ${client.remoteAddress ?? ''}\r\n`;
    client.setNoDelay(true);
    client.on('data', (chunk: Buffer) => this.onClient(chunk));
    client.on('drain', () => this.upstream?.resume());
    client.on('error', () => this.close());
    client.on('close', () => this.close());
  }

  private close(): void {
    this.client.destroy();
    this.upstream?.destroy();
  }

  private fail(answer: string): void {
    this.client.end(answer, 'latin1');
    this.upstream?.destroy();
  }

  private up(): Socket {
    if (this.upstream !== null) return this.upstream;
    const u = connect({ host: '127.0.0.1', port: upstreamPort, noDelay: true });
    u.on('data', (chunk: Buffer) => this.onUpstream(chunk));
    u.on('drain', () => this.client.resume());
    u.on('error', () => (this.inFlight ? this.fail(BAD_GATEWAY) : this.close()));
    u.on('close', () => {
      if (this.inFlight) this.fail(BAD_GATEWAY);
      this.upstream = null;
    });
    this.upstream = u;
    return u;
  }

  private onClient(chunk: Buffer): void {
    this.pending = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pump();
  }

  /** Forward what can go now: the rest of a request body, or the next request once the last response ended. */
  private pump(): void {
    while (this.pending !== null) {
      if (this.reqBody > 0) {
        const buf = this.pending;
        const n = Math.min(this.reqBody, buf.length);
        this.reqBody -= n;
        this.pending = n === buf.length ? null : buf.subarray(n);
        if (!this.up().write(n === buf.length ? buf : buf.subarray(0, n))) this.client.pause();
        continue;
      }
      if (this.inFlight) return;
      if (!this.startRequest(this.pending)) return;
    }
  }

  /** Parses one request head at the start of `buf`; false when it is incomplete (or the connection failed). */
  private startRequest(buf: Buffer): boolean {
    const end = buf.indexOf(CRLFCRLF);
    if (end === -1) {
      if (buf.length > MAX_HEAD) this.fail(BAD_REQUEST);
      return false;
    }
    const head = buf.toString('latin1', 0, end);
    const lineEnd = head.indexOf('\r\n');
    const requestLine = lineEnd === -1 ? head : head.slice(0, lineEnd);
    const sp1 = requestLine.indexOf(' ');
    const sp2 = requestLine.lastIndexOf(' ');
    if (sp1 <= 0 || sp2 <= sp1 || requestLine.slice(sp2 + 1) !== 'HTTP/1.1') {
      this.fail(BAD_REQUEST);
      return false;
    }
    const method = requestLine.slice(0, sp1);
    const target = requestLine.slice(sp1 + 1, sp2);
    let length = 0;
    let sawLength = false;
    let close = false;
    let pos = lineEnd === -1 ? head.length : lineEnd + 2;
    while (pos < head.length) {
      let next = head.indexOf('\r\n', pos);
      if (next === -1) next = head.length;
      const line = head.slice(pos, next);
      pos = next + 2;
      const c = line.charCodeAt(0) | 0x20;
      if (c === 0x63 /* c */) {
        const cl = fieldValue(line, 'content-length');
        if (cl !== null) {
          if (sawLength) {
            this.fail(BAD_REQUEST);
            return false;
          }
          sawLength = true;
          length = contentLength(cl);
          if (length < 0) {
            this.fail(BAD_REQUEST);
            return false;
          }
          continue;
        }
        const conn = fieldValue(line, 'connection');
        if (conn !== null && conn.toLowerCase() === 'close') close = true;
      } else if (c === 0x74 /* t */ && fieldValue(line, 'transfer-encoding') !== null) {
        this.fail(NOT_IMPLEMENTED);
        return false;
      }
    }
    const rest = end + 4;
    this.pending = rest === buf.length ? null : buf.subarray(rest);
    const prefix = matchPrefix(target);
    if (prefix === null) {
      // the body (if any) is skipped: the answer is ours
      this.reqBody = 0;
      if (length > 0 || close) this.fail(NOT_FOUND);
      else this.client.write(NOT_FOUND, 'latin1');
      return length === 0 && !close;
    }
    // the prefix cut off and put back, as a route with prefix rewrite = prefix does (the upstream path is unchanged)
    const path = prefix + target.slice(prefix.length);
    const out = `${method} ${path} HTTP/1.1${head.slice(lineEnd === -1 ? head.length : lineEnd, end)}\r\n${this.xff}\r\n`;
    this.inFlight = true;
    this.closeAfter = close;
    this.isHead = method === 'HEAD';
    this.resHead = null;
    this.resInBody = false;
    this.reqBody = length;
    this.up().write(out, 'latin1');
    return true;
  }

  private onUpstream(chunk: Buffer): void {
    if (!this.inFlight) {
      // bytes with no request waiting for them: a broken upstream, never forwarded
      this.upstream?.destroy();
      return;
    }
    const data = this.resHead === null ? chunk : Buffer.concat([this.resHead, chunk]);
    this.resHead = null;
    let off = 0;
    let ended = false;
    let broken = false;
    while (off < data.length && !ended) {
      if (this.resInBody) {
        const n = Math.min(this.resBody, data.length - off);
        this.resBody -= n;
        off += n;
        ended = this.resBody === 0;
        continue;
      }
      const end = data.indexOf(CRLFCRLF, off);
      if (end === -1) {
        if (data.length - off > MAX_HEAD) broken = true;
        else this.resHead = data.subarray(off);
        break;
      }
      const framed = this.responseHead(data.toString('latin1', off, end));
      off = end + 4;
      if (framed === -1) {
        broken = true;
        break;
      }
      ended = framed === 1;
    }
    // a head is forwarded only once it parsed; bytes past the response's end are never forwarded
    if (broken || (ended && off < data.length)) return this.fail(BAD_GATEWAY);
    const ready = this.resHead === null ? data : data.subarray(0, off);
    if (ready.length > 0 && !this.client.write(ready)) this.upstream?.pause();
    if (ended) this.endResponse();
  }

  /** Framing of one response head: 1 when the response ends with it, 0 when a body (or the real head) follows, -1 when it cannot be framed. */
  private responseHead(head: string): number {
    if (!head.startsWith('HTTP/1.1 ') || head.length < 12) return -1;
    const status = Number(head.slice(9, 12));
    if (!(status >= 100 && status <= 599)) return -1;
    if (status < 200) return 0; // an interim answer: the real head follows
    let length = -1;
    let close = false;
    let pos = head.indexOf('\r\n');
    while (pos !== -1 && pos < head.length) {
      pos += 2;
      let next = head.indexOf('\r\n', pos);
      if (next === -1) next = head.length;
      const line = head.slice(pos, next);
      pos = next;
      const c = line.charCodeAt(0) | 0x20;
      if (c === 0x63 /* c */) {
        const cl = fieldValue(line, 'content-length');
        if (cl !== null) {
          if (length !== -1) return -1;
          length = contentLength(cl);
          if (length < 0) return -1;
          continue;
        }
        const conn = fieldValue(line, 'connection');
        if (conn !== null && conn.toLowerCase() === 'close') close = true;
      } else if (c === 0x74 /* t */ && fieldValue(line, 'transfer-encoding') !== null) {
        return -1;
      }
      if (next === head.length) break;
    }
    if (close) this.closeAfter = true;
    if (this.isHead || status === 204 || status === 304) length = 0;
    if (length < 0) return -1;
    this.resBody = length;
    this.resInBody = length > 0;
    return length === 0 ? 1 : 0;
  }

  private endResponse(): void {
    this.inFlight = false;
    this.resInBody = false;
    if (this.closeAfter) {
      this.client.end();
      this.upstream?.destroy();
      return;
    }
    if (this.pending !== null) this.pump();
  }
}

const server = createServer((socket) => new Pair(socket));
server.listen(port, '127.0.0.1');
onStop(() => new Promise<void>((r) => server.close(() => r())));
