import { describe, expect, it } from 'vitest';
import { Framing, HeadCache, ParseError, ResponseParser, type ParsedHead, type ResponseSink } from '../../variants/upstream/h1/parser.js';

/** Records what the parser reports for one response. */
class Recorder implements ResponseSink {
  head: ParsedHead | null = null;
  whole: Buffer | null = null;
  chunks: Buffer[] = [];
  ends: boolean[] = [];
  onHead(head: ParsedHead, wholeBody: Buffer | null): void {
    this.head = head;
    this.whole = wholeBody === null ? null : Buffer.from(wholeBody);
  }
  onBody(chunk: Buffer): void {
    this.chunks.push(Buffer.from(chunk));
  }
  onEnd(trailing: boolean): void {
    this.ends.push(trailing);
  }
  body(): string {
    return (this.whole ?? Buffer.concat(this.chunks)).toString('latin1');
  }
}

function parse(pieces: Array<string | Buffer>, opts: { head?: boolean; eof?: boolean } = {}): Recorder {
  const r = new Recorder();
  const p = new ResponseParser(r);
  p.start(opts.head ?? false);
  for (const piece of pieces) p.execute(typeof piece === 'string' ? Buffer.from(piece, 'latin1') : piece);
  if (opts.eof === true) p.finishAtEof();
  return r;
}

/** Every way of cutting `raw` in two, plus one byte at a time: the outcome must not depend on packet boundaries. */
function everySplit(raw: string): string[][] {
  const out: string[][] = [[raw], raw.split('')];
  for (let i = 1; i < raw.length; i++) out.push([raw.slice(0, i), raw.slice(i)]);
  return out;
}

const CL = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world';
const CHUNKED = 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n';

describe('h1 response parser', () => {
  it('content-length body, however it is split across reads', () => {
    for (const pieces of everySplit(CL)) {
      const r = parse(pieces);
      expect(r.head?.statusCode).toBe(200);
      expect(r.head?.headers['content-type']).toBe('text/plain');
      expect(r.body()).toBe('hello world');
      expect(r.ends).toEqual([false]);
    }
  });

  it('hands over the whole body as one buffer when it came with the head, streams it otherwise', () => {
    const one = parse([CL]);
    expect(one.whole?.toString()).toBe('hello world');
    expect(one.chunks).toHaveLength(0);
    const split = parse([CL.slice(0, -3), CL.slice(-3)]);
    expect(split.whole).toBeNull();
    expect(split.head?.framing).toBe(Framing.Length);
    expect(split.chunks.map(String)).toEqual(['hello wo', 'rld']);
  });

  it('chunked body with extensions and trailers, however it is split', () => {
    for (const pieces of everySplit(CHUNKED)) {
      const r = parse(pieces);
      expect(r.head?.statusCode).toBe(201);
      expect(r.body()).toBe('hello world');
      expect(r.ends).toEqual([false]);
    }
  });

  it('a body that runs until the connection closes ends at EOF and forbids reuse', () => {
    const r = parse(['HTTP/1.1 200 OK\r\n\r\nabc', 'def'], { eof: true });
    expect(r.head?.framing).toBe(Framing.UntilClose);
    expect(r.head?.keepAlive).toBe(false);
    expect(r.body()).toBe('abcdef');
    expect(r.ends).toEqual([false]);
  });

  it('skips 100 and 103 interim responses; refuses 101', () => {
    const r = parse(['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n', CL]);
    expect(r.head?.statusCode).toBe(200);
    expect(r.body()).toBe('hello world');
    expect(() => parse(['HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n'])).toThrow(ParseError);
  });

  it('HEAD, 204 and 304 answers have no body whatever their framing fields say', () => {
    const head = parse(['HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n'], { head: true });
    expect(head.head?.framing).toBe(Framing.None);
    expect(head.head?.headers['content-length']).toBe('500');
    expect(head.ends).toEqual([false]);
    for (const status of ['204 No Content', '304 Not Modified']) {
      const r = parse([`HTTP/1.1 ${status}\r\nTransfer-Encoding: chunked\r\n\r\n`]);
      expect(r.head?.framing).toBe(Framing.None);
      expect(r.ends).toEqual([false]);
    }
  });

  it('repeated fields follow node:http: set-cookie as an array, first wins for singletons, others joined', () => {
    const r = parse([
      'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Type: text/a\r\nContent-Type: text/b\r\n' +
        'X-Many: 1\r\nX-Many: 2\r\nCookie: c=1\r\nCookie: d=2\r\nContent-Length: 0\r\n\r\n',
    ]);
    const h = r.head!.headers;
    expect(h['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(h['content-type']).toBe('text/a');
    expect(h['x-many']).toBe('1, 2');
    expect(h.cookie).toBe('c=1; d=2');
  });

  it('keep-alive: HTTP/1.1 by default, not after Connection: close or on HTTP/1.0 without keep-alive; timeout hint read', () => {
    expect(parse(['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']).head?.keepAlive).toBe(true);
    expect(parse(['HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n']).head?.keepAlive).toBe(false);
    expect(parse(['HTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 0\r\n\r\n']).head?.keepAlive).toBe(false);
    expect(parse(['HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n']).head?.keepAlive).toBe(false);
    expect(parse(['HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n']).head?.keepAlive).toBe(true);
    const hinted = parse(['HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n']);
    expect(hinted.head?.keepAliveHintMs).toBe(5000);
  });

  it('bytes after a complete response are reported (the connection must not be reused)', () => {
    expect(parse(['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA']).ends).toEqual([true]);
    expect(parse(['HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n']).ends).toEqual([true]);
  });

  it.each([
    ['bare LF in the head', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n'],
    ['bare CR in a value', 'HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n'],
    ['NUL in a value', 'HTTP/1.1 200 OK\r\nX: a\0b\r\nContent-Length: 0\r\n\r\n'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX: a\r\n  b\r\nContent-Length: 0\r\n\r\n'],
    ['conflicting content-length', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
    ['non-numeric content-length', 'HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nab'],
    ['content-length with transfer-encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['invalid chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    ['missing CRLF after chunk data', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n'],
    ['malformed status line', 'HTTP/2 200 OK\r\n\r\n'],
    ['not HTTP at all', 'SSH-2.0-OpenSSH\r\n\r\n'],
    ['invalid header name', 'HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n'],
    ['header line without a colon', 'HTTP/1.1 200 OK\r\nnocolon\r\n\r\n'],
  ])('refuses %s', (_name, raw) => {
    expect(() => parse([raw])).toThrow(ParseError);
  });

  it('refuses a head larger than 64 KiB, also when it arrives in small pieces', () => {
    const big = `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70 * 1024)}`;
    expect(() => parse([big])).toThrow(/larger than/);
    const pieces: string[] = [];
    for (let i = 0; i < big.length; i += 1000) pieces.push(big.slice(i, i + 1000));
    expect(() => parse(pieces)).toThrow(/larger than/);
  });

  it('data with no request waiting is an error (the connection is out of step)', () => {
    const p = new ResponseParser(new Recorder());
    expect(() => p.execute(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'))).toThrow(ParseError);
  });

  it('serves consecutive responses on one connection after start()', () => {
    const r = new Recorder();
    const p = new ResponseParser(r);
    for (let i = 0; i < 3; i++) {
      p.start(false);
      p.execute(Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${i}`));
      expect(r.whole?.toString()).toBe(String(i));
    }
    expect(r.ends).toEqual([false, false, false]);
  });

  it('a repeated head is recognised byte for byte; any difference, or HEAD vs GET, is parsed afresh', () => {
    const cache = new HeadCache();
    const r = new Recorder();
    const p = new ResponseParser(r, cache);
    const answer = (date: string, body: string): string => `HTTP/1.1 200 OK\r\nDate: ${date}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    p.start(false);
    p.execute(Buffer.from(answer('Mon', 'abc')));
    const first = r.head!;
    p.start(false);
    p.execute(Buffer.from(answer('Mon', 'xyz')));
    expect(cache.hits).toBe(1);
    expect(r.head).toBe(first);
    expect(r.whole?.toString()).toBe('xyz');
    expect(Object.isFrozen(first.headers)).toBe(true);
    p.start(false);
    p.execute(Buffer.from(answer('Tue', 'abc')));
    expect(r.head?.headers.date).toBe('Tue');
    p.start(true);
    p.execute(Buffer.from('HTTP/1.1 200 OK\r\nDate: Tue\r\nContent-Length: 3\r\n\r\n'));
    expect(r.head?.framing).toBe(Framing.None);
    expect(cache.hits).toBe(1);
    expect(r.ends).toEqual([false, false, false, false]);
  });
});
