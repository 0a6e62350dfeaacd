/**
 * Malformed and ambiguous requests, sent byte for byte over raw TCP to a gateway whose only routes proxy to a
 * recording upstream (test/reliability/bad-input.test.ts). Every bad case must get its 4xx/5xx, close the
 * connection where the framing is ambiguous, and put zero bytes on the upstream.
 *
 * Gateway under test: server.maxHeaderSize 8192, server.maxUrlLength 2048, server.maxHeaderCount 50, global
 * body-limit 1024 bytes; `/api/*` proxies to the recording upstream. Host is `gw`.
 */
export interface BadInputCase {
  name: string;
  /** what the case probes (used for the table in docs/reliability.md) */
  group: string;
  /** written in order; a number is a pause in ms */
  send: Array<string | Buffer | number>;
  /** status of the first final response (any of, when several are defensible) */
  status: number | readonly number[];
  /** the gateway must close the connection after answering */
  close: boolean;
  /** statuses of all final responses, for pipelined cases (default: just `status`) */
  responses?: readonly number[];
  /** upstream requests the case may cause (default 0: the upstream must not receive a single byte) */
  forwarded?: number;
  /** a text the upstream must never receive (pipelined cases) */
  neverUpstream?: string;
  /** an `Expect: 100-continue` request that must not be invited to send its body */
  noContinue?: boolean;
  /** an `Expect: 100-continue` request whose body is wanted: 100 must precede the final response */
  continueFirst?: boolean;
  /** a control: a valid request the harness must see forwarded (proves "zero bytes" is observable) */
  control?: boolean;
  /**
   * Where server engines differ by design (the own parser is stricter than llhttp by a rule listed in
   * variants/server/own/parser.ts): the expectation for that engine, with the RFC rule. Engines not listed
   * here get the case's own expectation.
   */
  byEngine?: Record<string, EngineExpectation>;
}

export interface EngineExpectation extends Partial<Pick<BadInputCase, 'status' | 'close' | 'forwarded' | 'responses'>> {
  rfc: string;
}

/** The case as `engine` must answer it. */
export function forEngine(c: BadInputCase, engine: string): BadInputCase {
  const o = c.byEngine?.[engine];
  if (o === undefined) return c;
  const { rfc: _rfc, ...overrides } = o;
  return { ...c, ...overrides };
}

/** The own parser refuses HTTP versions other than 1.0 and 1.1; llhttp accepts any digit and node:http serves it. */
const OWN_VERSION_505: EngineExpectation = { status: 505, close: true, forwarded: 0, rfc: 'RFC 9110 §15.6.6 (versionNotHttp1)' };

const CRLF = '\r\n';
const H = 'Host: gw';

/** A request from its head lines and body, CRLF-terminated. */
function req(lines: string[], body = ''): string {
  return lines.join(CRLF) + CRLF + CRLF + body;
}

const post = (extra: string[], body: string): string => req(['POST /api/x HTTP/1.1', H, ...extra], body);

export const badInputCases: BadInputCase[] = [
  // Controls: the same harness sees valid requests arrive upstream.
  { name: 'control: GET', group: 'control', send: [req(['GET /api/x HTTP/1.1', H])], status: 200, close: false, forwarded: 1, control: true },
  {
    name: 'control: POST with Content-Length',
    group: 'control',
    send: [post(['Content-Length: 5'], 'hello')],
    status: 200,
    close: false,
    forwarded: 1,
    control: true,
  },
  {
    name: 'control: chunked POST',
    group: 'control',
    send: [post(['Transfer-Encoding: chunked'], '5\r\nhello\r\n0\r\n\r\n')],
    status: 200,
    close: false,
    forwarded: 1,
    control: true,
  },
  {
    name: 'control: Expect: 100-continue within the limit',
    group: 'control',
    send: [post(['Content-Length: 5', 'Expect: 100-continue'], ''), 150, 'hello'],
    status: 200,
    close: false,
    forwarded: 1,
    continueFirst: true,
    control: true,
  },
  {
    name: 'control: absolute-form, authority = Host',
    group: 'control',
    send: [req(['GET http://gw/api/x HTTP/1.1', H])],
    status: 200,
    close: false,
    forwarded: 1,
    control: true,
  },

  // Request smuggling: Content-Length and Transfer-Encoding together.
  { name: 'CL.TE', group: 'framing', send: [post(['Content-Length: 6', 'Transfer-Encoding: chunked'], '0\r\n\r\nG')], status: 400, close: true },
  {
    name: 'TE.CL',
    group: 'framing',
    send: [post(['Transfer-Encoding: chunked', 'Content-Length: 3'], '8\r\nSMUGGLED\r\n0\r\n\r\n')],
    status: 400,
    close: true,
  },
  {
    name: 'duplicate Content-Length, same value',
    group: 'content-length',
    send: [post(['Content-Length: 5', 'Content-Length: 5'], 'hello')],
    status: 400,
    close: true,
  },
  { name: 'conflicting Content-Length', group: 'content-length', send: [post(['Content-Length: 5', 'Content-Length: 6'], 'hello!')], status: 400, close: true },
  { name: 'Content-Length: 5, 5', group: 'content-length', send: [post(['Content-Length: 5, 5'], 'hello')], status: 400, close: true },
  { name: 'Content-Length: +5', group: 'content-length', send: [post(['Content-Length: +5'], 'hello')], status: 400, close: true },
  { name: 'Content-Length: 0x5', group: 'content-length', send: [post(['Content-Length: 0x5'], 'hello')], status: 400, close: true },
  { name: 'Content-Length: -5', group: 'content-length', send: [post(['Content-Length: -5'], 'hello')], status: 400, close: true },
  {
    name: 'Content-Length over 2^64',
    group: 'content-length',
    send: [post(['Content-Length: 99999999999999999999999'], 'hello')],
    status: 400,
    close: true,
  },
  // Fits llhttp's uint64 but not a JS number exactly: the body limit refuses it before reading.
  { name: 'Content-Length 2^53+1', group: 'content-length', send: [post(['Content-Length: 9007199254740993'], 'hello')], status: 413, close: true },
  { name: 'Content-Length with space inside', group: 'content-length', send: [post(['Content-Length: 1 0'], 'hello')], status: 400, close: true },

  // Transfer-Encoding variants.
  {
    name: 'Transfer-Encoding: ,chunked',
    group: 'transfer-encoding',
    send: [post(['Transfer-Encoding: ,chunked'], '5\r\nhello\r\n0\r\n\r\n')],
    status: [400, 501],
    close: true,
  },
  {
    name: 'Transfer-Encoding: gzip, chunked',
    group: 'transfer-encoding',
    send: [post(['Transfer-Encoding: gzip, chunked'], '5\r\nhello\r\n0\r\n\r\n')],
    status: [400, 501],
    close: true,
  },
  {
    name: 'Transfer-Encoding: chunked, gzip',
    group: 'transfer-encoding',
    send: [post(['Transfer-Encoding: chunked, gzip'], '5\r\nhello\r\n0\r\n\r\n')],
    status: [400, 501],
    close: true,
  },
  {
    name: 'Transfer-Encoding: xchunked',
    group: 'transfer-encoding',
    send: [post(['Transfer-Encoding: xchunked'], '5\r\nhello\r\n0\r\n\r\n')],
    status: [400, 501],
    close: true,
  },
  {
    name: 'Transfer-Encoding: chunked twice',
    group: 'transfer-encoding',
    send: [post(['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], '5\r\nhello\r\n0\r\n\r\n')],
    status: [400, 501],
    close: true,
  },
  {
    name: 'Transfer-Encoding : chunked (space before colon)',
    group: 'transfer-encoding',
    send: [post(['Transfer-Encoding : chunked'], '5\r\nhello\r\n0\r\n\r\n')],
    status: 400,
    close: true,
  },
  {
    name: 'Transfer-Encoding:\\x0bchunked',
    group: 'transfer-encoding',
    send: [post(['Transfer-Encoding:\x0bchunked'], '5\r\nhello\r\n0\r\n\r\n')],
    status: [400, 501],
    close: true,
  },
  {
    name: 'Transfer-Encoding obs-fold',
    group: 'transfer-encoding',
    send: [post(['Transfer-Encoding: gzip', ' chunked'], '5\r\nhello\r\n0\r\n\r\n')],
    status: [400, 501],
    close: true,
  },
  {
    name: 'Transfer-Encoding: CHUNKED (case) with CL',
    group: 'transfer-encoding',
    send: [post(['Transfer-Encoding: CHUNKED', 'Content-Length: 3'], '5\r\nhello\r\n0\r\n\r\n')],
    status: 400,
    close: true,
  },
  {
    name: 'Transfer-Encoding on HTTP/1.0',
    group: 'transfer-encoding',
    send: [req(['POST /api/x HTTP/1.0', H, 'Transfer-Encoding: chunked'], '5\r\nhello\r\n0\r\n\r\n')],
    status: 400,
    close: true,
  },

  // Line endings and forbidden bytes.
  { name: 'bare LF line endings', group: 'syntax', send: ['GET /api/x HTTP/1.1\nHost: gw\n\n'], status: 400, close: true },
  { name: 'bare LF inside headers', group: 'syntax', send: ['GET /api/x HTTP/1.1\r\nHost: gw\nX-A: 1\r\n\r\n'], status: 400, close: true },
  { name: 'bare CR line endings', group: 'syntax', send: ['GET /api/x HTTP/1.1\rHost: gw\r\r'], status: 400, close: true },
  { name: 'bare CR inside a header value', group: 'syntax', send: [req(['GET /api/x HTTP/1.1', H, 'X-A: 1\r2'])], status: 400, close: true },
  { name: 'NUL in header value', group: 'syntax', send: [req(['GET /api/x HTTP/1.1', H, 'X-A: a\0b'])], status: 400, close: true },
  { name: 'NUL in request target', group: 'syntax', send: [req(['GET /api/x\0 HTTP/1.1', H])], status: 400, close: true },
  { name: '\\r\\n\\rX header terminator', group: 'syntax', send: ['GET /api/x HTTP/1.1\r\nHost: gw\r\n\rX'], status: 400, close: true },
  { name: 'header name with space', group: 'syntax', send: [req(['GET /api/x HTTP/1.1', H, 'X Bad: 1'])], status: 400, close: true },
  { name: 'header name with brackets', group: 'syntax', send: [req(['GET /api/x HTTP/1.1', H, 'X[Bad]: 1'])], status: 400, close: true },
  { name: 'header name with DEL', group: 'syntax', send: [req(['GET /api/x HTTP/1.1', H, 'X-Bad\x7f: 1'])], status: 400, close: true },
  {
    name: 'header name with non-ASCII',
    group: 'syntax',
    send: [Buffer.from(req(['GET /api/x HTTP/1.1', H, 'X-B\u00e4d: 1']), 'latin1')],
    status: 400,
    close: true,
  },
  { name: 'empty header name', group: 'syntax', send: [req(['GET /api/x HTTP/1.1', H, ': 1'])], status: 400, close: true },
  { name: 'invalid method token', group: 'syntax', send: [req(['G@T /api/x HTTP/1.1', H])], status: 400, close: true },
  { name: 'HTTP/1.2', group: 'syntax', send: [req(['GET /api/x HTTP/1.2', H])], status: [400, 505], close: true },
  { name: 'lowercase http/1.1', group: 'syntax', send: [req(['GET /api/x http/1.1', H])], status: 400, close: true },

  // Chunked bodies.
  { name: 'chunk size not hex', group: 'chunked', send: [post(['Transfer-Encoding: chunked'], 'zz\r\nhello\r\n0\r\n\r\n')], status: 400, close: true },
  {
    name: 'chunk size overflow',
    group: 'chunked',
    send: [post(['Transfer-Encoding: chunked'], 'fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n')],
    status: 400,
    close: true,
  },
  { name: 'negative chunk size', group: 'chunked', send: [post(['Transfer-Encoding: chunked'], '-5\r\nhello\r\n0\r\n\r\n')], status: 400, close: true },
  { name: 'chunk size with 0x prefix', group: 'chunked', send: [post(['Transfer-Encoding: chunked'], '0x5\r\nhello\r\n0\r\n\r\n')], status: 400, close: true },
  {
    name: 'chunk data longer than its size',
    group: 'chunked',
    send: [post(['Transfer-Encoding: chunked'], '3\r\nhello\r\n0\r\n\r\n')],
    status: 400,
    close: true,
  },
  {
    name: 'chunk extension with control char',
    group: 'chunked',
    send: [post(['Transfer-Encoding: chunked'], '5;a=\x01\r\nhello\r\n0\r\n\r\n')],
    status: 400,
    close: true,
  },
  {
    name: 'chunk extension with bare LF',
    group: 'chunked',
    send: [post(['Transfer-Encoding: chunked'], '5;a=b\nhello\r\n0\r\n\r\n')],
    status: 400,
    close: true,
  },
  { name: 'chunk size line bare LF', group: 'chunked', send: [post(['Transfer-Encoding: chunked'], '5\nhello\r\n0\r\n\r\n')], status: 400, close: true },

  // Host and request target.
  { name: 'missing Host (HTTP/1.1)', group: 'target', send: [req(['GET /api/x HTTP/1.1'])], status: 400, close: true },
  { name: 'duplicate Host, different values', group: 'target', send: [req(['GET /api/x HTTP/1.1', H, 'Host: evil'])], status: 400, close: true },
  { name: 'duplicate Host, same value', group: 'target', send: [req(['GET /api/x HTTP/1.1', H, H])], status: 400, close: true },
  { name: 'absolute-form, authority differs from Host', group: 'target', send: [req(['GET http://evil/api/x HTTP/1.1', H])], status: 400, close: true },
  { name: 'absolute-form with userinfo', group: 'target', send: [req(['GET http://gw@evil/api/x HTTP/1.1', H])], status: 400, close: true },
  { name: 'absolute-form, unknown scheme', group: 'target', send: [req(['GET ftp://gw/api/x HTTP/1.1', H])], status: 400, close: true },
  { name: 'GET * (asterisk-form)', group: 'target', send: [req(['GET * HTTP/1.1', H])], status: 400, close: true },
  { name: 'GET admin (no leading slash)', group: 'target', send: [req(['GET admin HTTP/1.1', H])], status: 400, close: true },
  { name: 'CONNECT', group: 'target', send: [req(['CONNECT gw:443 HTTP/1.1', 'Host: gw:443'])], status: 405, close: true },
  { name: 'CONNECT in origin-form', group: 'target', send: [req(['CONNECT /api/x HTTP/1.1', H])], status: [400, 405], close: true },
  // node-http once took this for an HTTP/2 stream's CONNECT and crashed the process (TypeError in rejectH2Connect)
  {
    name: 'CONNECT with an HTTP/2.0 request line',
    group: 'target',
    send: [req(['CONNECT gw:443 HTTP/2.0', 'Host: gw:443'])],
    status: 405,
    close: true,
    byEngine: { own: OWN_VERSION_505 },
  },
  {
    name: 'GET with an HTTP/2.0 request line',
    group: 'target',
    send: [req(['GET /api/x HTTP/2.0', H])],
    status: 200,
    close: true,
    forwarded: 1,
    byEngine: { own: OWN_VERSION_505 },
  },

  // Path traversal out of the route prefix (/api/).
  { name: 'traversal ..', group: 'traversal', send: [req(['GET /api/../admin HTTP/1.1', H])], status: 400, close: false },
  { name: 'traversal %2e%2e', group: 'traversal', send: [req(['GET /api/%2e%2e/admin HTTP/1.1', H])], status: 400, close: false },
  { name: 'traversal %2E%2e', group: 'traversal', send: [req(['GET /api/%2E%2e/admin HTTP/1.1', H])], status: 400, close: false },
  { name: 'traversal .%2e', group: 'traversal', send: [req(['GET /api/.%2e/admin HTTP/1.1', H])], status: 400, close: false },
  { name: 'traversal %252e%252e (double-encoded)', group: 'traversal', send: [req(['GET /api/%252e%252e/admin HTTP/1.1', H])], status: 400, close: true },
  { name: 'traversal ..%252f (double-encoded separator)', group: 'traversal', send: [req(['GET /api/..%252fadmin HTTP/1.1', H])], status: 400, close: true },
  { name: 'traversal ..%2f', group: 'traversal', send: [req(['GET /api/..%2fadmin HTTP/1.1', H])], status: 400, close: false },
  { name: 'traversal ..%5c', group: 'traversal', send: [req(['GET /api/..%5cadmin HTTP/1.1', H])], status: 400, close: false },
  { name: 'traversal ..\\', group: 'traversal', send: [req(['GET /api/..\\admin HTTP/1.1', H])], status: 400, close: false },
  { name: 'traversal deep ../../', group: 'traversal', send: [req(['GET /api/a/../../admin HTTP/1.1', H])], status: 400, close: false },

  // Sizes.
  { name: 'request line over maxHeaderSize', group: 'limits', send: [req([`GET /api/${'a'.repeat(10_000)} HTTP/1.1`, H])], status: 414, close: true },
  { name: 'request target over maxUrlLength', group: 'limits', send: [req([`GET /api/${'a'.repeat(3000)} HTTP/1.1`, H])], status: 414, close: true },
  { name: 'one header over maxHeaderSize', group: 'limits', send: [req(['GET /api/x HTTP/1.1', H, `X-Big: ${'b'.repeat(9000)}`])], status: 431, close: true },
  {
    name: 'headers together over maxHeaderSize',
    group: 'limits',
    send: [req(['GET /api/x HTTP/1.1', H, ...Array.from({ length: 40 }, (_, i) => `X-H${i}: ${'c'.repeat(250)}`)])],
    status: 431,
    close: true,
  },
  {
    name: 'too many headers',
    group: 'limits',
    send: [req(['GET /api/x HTTP/1.1', H, ...Array.from({ length: 60 }, (_, i) => `X-N${i}: 1`)])],
    status: 431,
    close: true,
  },
  { name: 'body over the limit (Content-Length)', group: 'limits', send: [post(['Content-Length: 2000'], 'd'.repeat(2000))], status: 413, close: true },
  { name: 'body over the limit, Content-Length only (body not sent)', group: 'limits', send: [post(['Content-Length: 100000'], '')], status: 413, close: true },
  {
    name: 'chunked body over the limit',
    group: 'limits',
    send: [post(['Transfer-Encoding: chunked'], `800\r\n${'e'.repeat(2048)}\r\n0\r\n\r\n`)],
    status: 413,
    close: true,
  },
  {
    name: 'Expect: 100-continue over the limit',
    group: 'limits',
    send: [post(['Content-Length: 5000', 'Expect: 100-continue'], '')],
    status: [413, 417],
    close: true,
    noContinue: true,
  },
  { name: 'Expect: something-else', group: 'limits', send: [post(['Content-Length: 5', 'Expect: teapot'], 'hello')], status: 417, close: false },

  // Pipelining: nothing after the bad request is parsed.
  {
    name: 'pipelined valid + invalid + valid',
    group: 'pipelining',
    send: [req(['GET /api/one HTTP/1.1', H]) + req(['GET /api/two HTTP/1.1', H, 'Bad Header: 1']) + req(['GET /api/three HTTP/1.1', H])],
    status: 200,
    responses: [200, 400],
    close: true,
    forwarded: 1,
    neverUpstream: '/api/three',
  },
  {
    name: 'pipelined valid + smuggling CL.TE + valid',
    group: 'pipelining',
    send: [req(['GET /api/one HTTP/1.1', H]) + post(['Content-Length: 6', 'Transfer-Encoding: chunked'], '0\r\n\r\nG') + req(['GET /api/three HTTP/1.1', H])],
    status: 200,
    responses: [200, 400],
    close: true,
    forwarded: 1,
    neverUpstream: '/api/three',
  },
];
