import { describe, expect, it } from 'vitest';
import { runLlhttp, runOwn, type Outcome } from '../../scripts/fuzz/engines.js';
import { HttpParserError } from '../../variants/server/own/errors.js';
import { BodyKind, RequestParser, type RequestHead, type RequestSink } from '../../variants/server/own/parser.js';

/** Records what the parser reports. */
class Recorder implements RequestSink {
  heads: RequestHead[] = [];
  bodies: string[] = [];
  trailers: Array<string[] | null> = [];
  onHead(head: RequestHead): void {
    this.heads.push(head);
    this.bodies.push('');
  }
  onBody(chunk: Buffer): void {
    this.bodies[this.bodies.length - 1] += chunk.toString('latin1');
  }
  onEnd(trailers: string[] | null): void {
    this.trailers.push(trailers);
  }
}

function parse(pieces: string[], maxHeaderSize?: number): { r: Recorder; consumed: number[]; p: RequestParser } {
  const r = new Recorder();
  const p = new RequestParser(r, maxHeaderSize === undefined ? {} : { maxHeaderSize });
  const consumed = pieces.map((piece) => p.execute(Buffer.from(piece, 'latin1')));
  return { r, consumed, p };
}

/** The error the own parser raises on `raw` (whole, then finish()), or null. */
function errorOf(raw: string, maxHeaderSize?: number): HttpParserError | null {
  try {
    const { p } = parse([raw], maxHeaderSize);
    p.finish();
    return null;
  } catch (err) {
    if (err instanceof HttpParserError) return err;
    throw err;
  }
}

/** Every way of cutting `raw` in two, plus one byte at a time. */
function everySplit(raw: string): string[][] {
  const out: string[][] = [[raw], raw.split('')];
  for (let i = 1; i < raw.length; i++) out.push([raw.slice(0, i), raw.slice(i)]);
  return out;
}

const bothOn = (raw: string, max = 16384): { ours: Outcome; llhttp: Outcome } => {
  const b = Buffer.from(raw, 'latin1');
  return { ours: runOwn(b, max), llhttp: runLlhttp(b, max) };
};

const GET = 'GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n';

describe('own request parser', () => {
  it('parses a request line and fields, however the bytes are split', () => {
    for (const pieces of everySplit(GET)) {
      const { r } = parse(pieces);
      expect(r.heads).toHaveLength(1);
      const h = r.heads[0]!;
      expect([h.method, h.target, h.versionMinor, h.body, h.keepAlive, h.upgrade]).toEqual(['GET', '/a?b=1', 1, BodyKind.None, true, false]);
      expect(h.rawHeaders).toEqual(['Host', 'example.com', 'User-Agent', 't']);
      expect(h.names).toEqual(['host', 'user-agent']);
      expect(r.trailers).toEqual([null]);
    }
  });

  it('Content-Length body and chunked body with extensions and trailers, split anywhere', () => {
    const raw =
      'POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello' +
      'PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext="q \\" v";x\r\nabc\r\n002\r\nde\r\n0\r\nX-T: 1\r\nX-U:  2 \r\n\r\n';
    for (const pieces of everySplit(raw)) {
      const { r } = parse(pieces);
      expect(r.heads.map((h) => [h.method, h.body, h.contentLength])).toEqual([
        ['POST', BodyKind.Length, 5],
        ['PUT', BodyKind.Chunked, 0],
      ]);
      expect(r.bodies).toEqual(['hello', 'abcde']);
      expect(r.trailers).toEqual([null, ['X-T', '1', 'X-U', '2']]);
    }
  });

  it('pipelined requests in one read, with empty lines between them (RFC 9112 §2.2)', () => {
    const { r } = parse([`\r\n${GET}\r\n${GET.replace('/a?b=1', '/2')}${GET.replace('/a?b=1', '/3')}`]);
    expect(r.heads.map((h) => h.target)).toEqual(['/a?b=1', '/2', '/3']);
  });

  it('keep-alive: 1.1 by default, Connection: close, 1.0 only with keep-alive (RFC 9112 §9.3)', () => {
    const ka = (raw: string): boolean => parse([raw]).r.heads[0]!.keepAlive;
    expect(ka('GET / HTTP/1.1\r\nHost: a\r\n\r\n')).toBe(true);
    expect(ka('GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n')).toBe(false);
    expect(ka('GET / HTTP/1.0\r\n\r\n')).toBe(false);
    expect(ka('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n')).toBe(true);
    // stricter on purpose: close wins, and TE on 1.0 closes (rules closeBeatsKeepAlive, http10TransferEncodingCloses)
    expect(ka('GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n')).toBe(false);
    expect(ka('POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')).toBe(false);
  });

  it('bytes after a request that closes the connection are an error, blank lines excepted (as llhttp)', () => {
    expect(errorOf('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n\r\n')).toBeNull();
    expect(errorOf('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n')?.code).toBe('HPE_CLOSED_CONNECTION');
  });

  it('Upgrade + Connection: upgrade hands the rest to the caller after the body; CONNECT right after the head', () => {
    const up = 'GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 2\r\n\r\nokFRAME';
    const { r, consumed, p } = parse([up]);
    expect(p.upgraded).toBe(true);
    expect(r.heads[0]!.upgrade).toBe(true);
    expect(r.bodies).toEqual(['ok']);
    expect(up.slice(consumed[0])).toBe('FRAME');
    expect(p.execute(Buffer.from('more'))).toBe(0);
    const connect = 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nContent-Length: 3\r\n\r\nTLS';
    const c = parse([connect]);
    expect(c.r.heads[0]!.upgrade).toBe(true);
    expect(c.r.bodies).toEqual(['']);
    expect(connect.slice(c.consumed[0])).toBe('TLS');
    // Upgrade without the connection option is a plain request, as is an empty Upgrade
    expect(parse(['GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n']).r.heads[0]!.upgrade).toBe(false);
    expect(parse(['GET / HTTP/1.1\r\nHost: a\r\nUpgrade: \r\nConnection: upgrade\r\n\r\n']).r.heads[0]!.upgrade).toBe(false);
  });

  it('ignores Upgrade and Expect in HTTP/1.0 (RFC 9110 §7.8, §10.1.1)', () => {
    const h = parse(['GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\nExpect: 100-continue\r\n\r\n']).r.heads[0]!;
    expect([h.upgrade, h.expectContinue]).toEqual([false, false]);
  });

  it('answers 414 to a request-target longer than the limit (RFC 9112 §3), whole or in pieces', () => {
    const raw = `GET /${'a'.repeat(300)} HTTP/1.1\r\nHost: a\r\n\r\n`;
    expect(errorOf(raw, 100)?.statusCode).toBe(414);
    expect(errorOf(raw.slice(0, 150), 100)?.statusCode).toBe(400); // cut short below the bound: waits, then EOF
    const r = new RequestParser(new Recorder(), { maxHeaderSize: 100 });
    let status = 0;
    try {
      for (let i = 0; i < raw.length; i += 10) r.execute(Buffer.from(raw.slice(i, i + 10), 'latin1'));
    } catch (err) {
      status = (err as HttpParserError).statusCode;
    }
    expect(status).toBe(414);
  });

  it('surfaces Expect: 100-continue as node:http matches it', () => {
    const ec = (v: string): boolean => parse([`POST / HTTP/1.1\r\nHost: a\r\nExpect: ${v}\r\nContent-Length: 0\r\n\r\n`]).r.heads[0]!.expectContinue;
    expect(ec('100-continue')).toBe(true);
    expect(ec('100-Continue')).toBe(true);
    expect(ec('foo, 100-continue')).toBe(true);
    expect(ec('100-continuex')).toBe(false);
  });

  it.each([
    // [name, input, code, status]
    ['unknown method (RFC 9110 §9.1)', 'FOO / HTTP/1.1\r\nHost: a\r\n\r\n', 'HPE_UNKNOWN_METHOD', 501],
    ['method that is not a token', 'G(T / HTTP/1.1\r\nHost: a\r\n\r\n', 'HPE_INVALID_METHOD', 400],
    ['two spaces in the request line (§3)', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n', 'HPE_INVALID_REQUEST_LINE', 400],
    ['space after the version', 'GET / HTTP/1.1 \r\nHost: a\r\n\r\n', 'HPE_INVALID_VERSION', 400],
    ['obs-text in the target', 'GET /\xe9 HTTP/1.1\r\nHost: a\r\n\r\n', 'HPE_INVALID_TARGET', 400],
    ['no version: HTTP/0.9 style', 'GET /\r\nHost: a\r\n\r\n', 'HPE_INVALID_TARGET', 400],
    ['asterisk-form with GET (§3.2.4)', 'GET * HTTP/1.1\r\nHost: a\r\n\r\n', 'HPE_TARGET_FORM', 400],
    ['CONNECT without a port (§3.2.3)', 'CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n', 'HPE_TARGET_FORM', 400],
    ['absolute-form with an empty host (RFC 9110 §4.2.1)', 'GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n', 'HPE_TARGET_FORM', 400],
    ['HTTP/2.0 in an HTTP/1 request line', 'GET / HTTP/2.0\r\n\r\n', 'HPE_UNSUPPORTED_VERSION', 505],
    ['HTTP/1.2', 'GET / HTTP/1.2\r\nHost: a\r\n\r\n', 'HPE_UNSUPPORTED_VERSION', 505],
    ['lower-case http', 'GET / http/1.1\r\nHost: a\r\n\r\n', 'HPE_INVALID_VERSION', 400],
    ['HTTP/1.1 without Host (§3.2)', 'GET / HTTP/1.1\r\n\r\n', 'HPE_MISSING_HOST', 400],
    ['two Host lines (§3.2)', 'GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n', 'HPE_DUPLICATE_HOST', 400],
    ['whitespace before the colon (§5.1)', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN', 400],
    ['a field line without a colon', 'GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN', 400],
    ['an empty field name', 'GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN', 400],
    ['obs-fold (§5.2)', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n', 'HPE_OBS_FOLD', 400],
    ['whitespace before the first field (§2.2)', 'GET / HTTP/1.1\r\n Host: a\r\n\r\n', 'HPE_OBS_FOLD', 400],
    ['bare LF in a field value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\nY: b\r\n\r\n', 'HPE_BARE_CR_OR_LF', 400],
    ['bare CR in a field value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n', 'HPE_BARE_CR_OR_LF', 400],
    ['bare LF ending the request line', 'GET / HTTP/1.1\nHost: a\r\n\r\n', 'HPE_INVALID_VERSION', 400],
    ['NUL in a field value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n', 'HPE_INVALID_HEADER_VALUE', 400],
    ['DEL in a field value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n', 'HPE_INVALID_HEADER_VALUE', 400],
    [
      'two Content-Length lines, even equal (as llhttp)',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na',
      'HPE_DUPLICATE_CONTENT_LENGTH',
      400,
    ],
    ['a Content-Length list', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\na', 'HPE_INVALID_CONTENT_LENGTH', 400],
    ['a signed Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\na', 'HPE_INVALID_CONTENT_LENGTH', 400],
    ['an empty Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n', 'HPE_INVALID_CONTENT_LENGTH', 400],
    ['Content-Length above 2^53 - 1 (§6.2)', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740992\r\n\r\n', 'HPE_CONTENT_LENGTH_TOO_LARGE', 413],
    [
      'Transfer-Encoding with Content-Length (§6.1 smuggling)',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'HPE_TE_WITH_CONTENT_LENGTH',
      400,
    ],
    ['chunked not last (§6.3)', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 'HPE_INVALID_TRANSFER_ENCODING', 400],
    [
      'chunked twice',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'HPE_INVALID_TRANSFER_ENCODING',
      400,
    ],
    ['only gzip (§6.3: 400 and close)', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n', 'HPE_INVALID_TRANSFER_ENCODING', 400],
    [
      'chunked followed by HTAB (found by the 1M fuzz run, seed 695680)',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n',
      'HPE_INVALID_TRANSFER_ENCODING',
      400,
    ],
    ['an empty Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n', 'HPE_INVALID_TRANSFER_ENCODING', 400],
    [
      'gzip before chunked (§6.1: 501)',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
      'HPE_UNSUPPORTED_TRANSFER_CODING',
      501,
    ],
    ['chunk size with 0x (§7.1)', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\na\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_SIZE', 400],
    ['negative chunk size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\na\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_SIZE', 400],
    ['space after the chunk size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\na\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_SIZE', 400],
    ['chunk size above 2^48', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000\r\n', 'HPE_CHUNK_SIZE_TOO_LARGE', 400],
    [
      'chunk size overflowing 64 bits',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n',
      'HPE_CHUNK_SIZE_TOO_LARGE',
      400,
    ],
    [
      'chunk extension without a value (§7.1.1)',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a=\r\na\r\n0\r\n\r\n',
      'HPE_INVALID_CHUNK_EXTENSION',
      400,
    ],
    [
      'space in a chunk extension',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1; a\r\na\r\n0\r\n\r\n',
      'HPE_INVALID_CHUNK_EXTENSION',
      400,
    ],
    [
      'chunk extension beyond 4 KiB',
      `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a=${'b'.repeat(4096)}\r\na\r\n0\r\n\r\n`,
      'HPE_CHUNK_LINE_TOO_LONG',
      400,
    ],
    ['chunk data longer than its size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n', 'HPE_MISSING_CHUNK_CRLF', 400],
    ['bare LF after chunk data', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\n0\r\n\r\n', 'HPE_MISSING_CHUNK_CRLF', 400],
    ['bare LF ending a chunk-size line', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n', 'HPE_INVALID_CHUNK_SIZE', 400],
    ['obs-fold in a trailer (§7.1.2)', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n', 'HPE_OBS_FOLD', 400],
    ['control byte in a trailer', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: \x01\r\n\r\n', 'HPE_INVALID_HEADER_VALUE', 400],
    ['body cut short', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabc', 'HPE_INVALID_EOF_STATE', 400],
    ['head cut short', 'GET / HTTP/1.1\r\nHost: a\r\n', 'HPE_INVALID_EOF_STATE', 400],
  ])('refuses %s', (_name, raw, code, status) => {
    const err = errorOf(raw);
    expect(err?.code).toBe(code);
    expect(err?.statusCode).toBe(status);
    // and the reference refuses it too, unless a rule of the stricter list says otherwise (see the diff test)
    for (const pieces of [raw.split(''), [raw.slice(0, raw.length >> 1), raw.slice(raw.length >> 1)]]) {
      expect(() => {
        const { p } = parse(pieces);
        p.finish();
      }).toThrow(HttpParserError);
    }
  });

  it('accepts what RFC 9112 and llhttp both accept at the edges', () => {
    for (const raw of [
      'GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n', // empty value
      'GET / HTTP/1.1\r\nHost: a\r\nX: \t a \t \r\n\r\n', // OWS around the value
      'GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\xff\r\n\r\n', // obs-text
      "GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~: tchars\r\n\r\n",
      'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n',
      'GET http://user@example.com:8080/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n',
      'CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n1234567',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,Chunked\r\n\r\n00000000000000000001\r\na\r\n0;x=y\r\n\r\n',
      'M-SEARCH / HTTP/1.1\r\nHost: a\r\n\r\n',
    ]) {
      const { ours, llhttp } = bothOn(raw);
      expect([ours.accepted, llhttp.accepted], raw).toEqual([true, true]);
      expect(ours.messages[0]!.rawHeaders).toEqual(llhttp.messages[0]!.rawHeaders);
    }
  });

  it('refuses at 431 exactly where node:http does: target + names + values from their first byte >= maxHeaderSize', () => {
    const max = 100;
    // count = 1 (target) + 4 ("Host") + 1 ("a") + 1 ("X") + fill
    for (let fill = 88; fill <= 96; fill++) {
      for (const trailing of ['', '  ']) {
        const raw = `GET / HTTP/1.1\r\nHost: a\r\nX:   ${'v'.repeat(fill)}${trailing}\r\n\r\n`;
        const { ours, llhttp } = bothOn(raw, max);
        expect(ours.accepted, raw).toBe(llhttp.accepted);
        expect(ours.accepted).toBe(7 + fill + trailing.length < max);
        if (!ours.accepted) expect(errorOf(raw, max)?.statusCode).toBe(431);
      }
    }
  });

  it('bounds the raw head at 2 × maxHeaderSize, blank values included, whether or not it arrives in pieces', () => {
    const raw = `GET / HTTP/1.1\r\nHost: a\r\n${'X:          \r\n'.repeat(20)}\r\n`;
    expect(errorOf(raw, 100)?.code).toBe('HPE_HEAD_TOO_LARGE');
    expect(() => parse(raw.split(''), 100)).toThrow(/larger than 200 bytes/);
    // an endless head is refused long before it ends
    const r = new RequestParser(new Recorder(), { maxHeaderSize: 100 });
    expect(() => {
      for (let i = 0; i < 1000; i++) r.execute(Buffer.from('X: y\r\n'));
    }).toThrow(HttpParserError);
  });

  it('keeps failing with the same error after the first one', () => {
    const r = new RequestParser(new Recorder());
    expect(() => r.execute(Buffer.from('BAD\0 / HTTP/1.1\r\n\r\n'))).toThrow(HttpParserError);
    let again: unknown = null;
    try {
      r.execute(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
    } catch (err) {
      again = err;
    }
    expect((again as HttpParserError).code).toBe('HPE_INVALID_METHOD');
  });

  it('reports where the failing request began, for the engine log and the fuzz classifiers', () => {
    const first = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    const err = errorOf(`${first}\r\nGET / HTTP/1.1\r\nHost: a\r\nX\0: y\r\n\r\n`);
    expect(err?.messageStart).toBe(first.length + 2);
    expect(err?.offset).toBeGreaterThan(first.length);
  });
});
