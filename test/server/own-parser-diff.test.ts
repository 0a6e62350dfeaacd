import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { compare, runFuzz } from '../../scripts/fuzz/differential.js';
import { nodeHeaders, runLlhttp, runOwn } from '../../scripts/fuzz/engines.js';
import { generateCase, rng } from '../../scripts/fuzz/generator.js';
import { FLAG_RULES, REJECT_RULES } from '../../scripts/fuzz/stricter.js';
import { toNodeHeaders } from '../../variants/server/own/headers.js';

/**
 * The differential check of npm run fuzz:http-parser, a few thousand inputs of it: the own request parser
 * against llhttp as node:http's server runs it, and against itself on the same bytes in other reads.
 */
describe('own request parser against llhttp', () => {
  it('agrees on 3000 generated inputs, or differs only by a listed rule', () => {
    const report = runFuzz(3000, 20_260_000);
    const failures = report.failures.map((f) => `seed ${f.seed} (${f.failure}): ${JSON.stringify(f.input)}`);
    expect(failures).toEqual([]);
    // the generator must exercise both outcomes and the stricter rules, or the check proves nothing
    expect(report.bothAccepted).toBeGreaterThan(500);
    expect(report.bothRejected).toBeGreaterThan(1000);
    expect(Object.keys(report.allowed).length).toBeGreaterThan(6);
  });

  it('the same seed gives the same case (a failure is reproduced from its seed)', () => {
    expect(generateCase(42)).toEqual(generateCase(42));
    expect(generateCase(42).input).not.toBe(generateCase(43).input);
  });

  /** one request per rule that ours refuses and llhttp accepts: the rule, and only a rule, excuses it */
  const STRICTER: Record<string, string> = {
    multipleSpaces: 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n',
    targetForm: 'GET * HTTP/1.1\r\nHost: a\r\n\r\n',
    versionNotHttp1: 'GET / HTTP/2.0\r\nHost: a\r\n\r\n',
    hostMissing: 'GET / HTTP/1.1\r\n\r\n',
    hostRepeated: 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    emptyTransferEncoding: 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n',
    upgradeTransferEncoding: 'CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\nTransfer-Encoding: chunked\t\r\n\r\n',
    transferCodingNotChunked: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    // CONNECT: llhttp reads no body there, so it accepts a Content-Length no body could ever fill
    contentLengthAboveSafeInteger: 'CONNECT a:1 HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740993\r\n\r\n',
    chunkSizeAbove2e48: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000\r\n',
    chunkExtensionEmpty: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;=x\r\na\r\n0\r\n\r\n',
    chunkLineTooLong: `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a=${'b'.repeat(5000)}\r\na\r\n0\r\n\r\n`,
    headTooLarge: `GET / HTTP/1.1\r\nHost: a\r\n${'X:                 \r\n'.repeat(2000)}\r\n`,
  };

  it.each(REJECT_RULES.map((r) => [r.name, r.rfc] as const))('rule %s (%s) excuses its own case', (name) => {
    const raw = STRICTER[name];
    expect(raw, `no sample for rule ${name}`).toBeDefined();
    const input = Buffer.from(raw!, 'latin1');
    const ours = runOwn(input, 16384);
    const theirs = runLlhttp(input, 16384);
    const rule = REJECT_RULES.find((r) => r.name === name)!;
    expect(rule.applies(raw!, { maxHeaderSize: 16384, maxHeadBytes: 32768 })).toBe(true);
    if (name === 'chunkSizeAbove2e48') {
      // no input can finish a 2^48-byte chunk: llhttp never completes the request either
      expect([ours.accepted, theirs.accepted, theirs.messages.length]).toEqual([false, false, 0]);
      return;
    }
    expect([ours.accepted, theirs.accepted]).toEqual([false, true]);
    const v = compare({ seed: 0, input: raw!, maxHeaderSize: 16384, mutations: [] }, ours, theirs, input);
    expect(v.failure).toBeNull();
    expect(v.allowedBy).toEqual([name]);
  });

  it.each(FLAG_RULES.map((r) => [r.name, r.rfc] as const))('rule %s (%s) excuses a flag difference', (name) => {
    const raw = {
      closeBeatsKeepAlive: 'GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n',
      http10TransferEncodingCloses: 'POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      upgradeIgnoredInHttp10: 'GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: keep-alive, upgrade\r\n\r\n',
    }[name]!;
    const input = Buffer.from(raw, 'latin1');
    const ours = runOwn(input, 16384);
    const theirs = runLlhttp(input, 16384);
    const flag = FLAG_RULES.find((r) => r.name === name)!.flag;
    expect([ours.messages[0]?.[flag], theirs.messages[0]?.[flag]]).toEqual([false, true]);
    expect(compare({ seed: 0, input: raw, maxHeaderSize: 16384, mutations: [] }, ours, theirs, input).allowedBy).toEqual([name]);
  });

  /** trailer sections llhttp refuses (framing fields, broken lines) and passes (everything else is the proxy's to judge) */
  const TRAILER_SECTIONS = [
    'X-A: 1\r\n',
    'Content-Length: 2\r\n',
    'content-length: 0\r\n',
    'Content-Length:\r\n',
    'Transfer-Encoding: chunked\r\n',
    'transfer-encoding: \r\n',
    'transfer-encoding:\t\r\nX-A: 1\r\n',
    'transfer-encoding: ,\r\n',
    'X-A: 1\r\nTRANSFER-ENCODING: gzip\r\n',
    'Host: evil\r\n',
    'Connection: close\r\n',
    'Authorization: Basic eA==\r\n',
    'Trailer: X-A\r\n',
    'X-A:\r\n',
    'X-A: 1\r\nX-A: 2\r\n',
    'X-A: a\0b\r\n',
    'X-A: a\x7fb\r\n',
    'X-A: 1\nX-B: 2\r\n',
    'X-A: 1\r\n\tfolded\r\n',
    'X-A : 1\r\n',
    ': 1\r\n',
    'X\x00A: 1\r\n',
  ];

  it.each(TRAILER_SECTIONS)('agrees with llhttp on the trailer section %j', (section) => {
    const raw = `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n${section}\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n`;
    const input = Buffer.from(raw, 'latin1');
    const ours = runOwn(input, 16384);
    const theirs = runLlhttp(input, 16384);
    const v = compare({ seed: 0, input: raw, maxHeaderSize: 16384, mutations: [] }, ours, theirs, input);
    expect(v.failure).toBeNull();
    expect(v.allowedBy).toEqual([]);
    expect(ours.accepted).toBe(theirs.accepted);
  });

  it('a difference no rule names is a failure, in either direction', () => {
    const raw = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    const input = Buffer.from(raw, 'latin1');
    const good = runLlhttp(input, 16384);
    const refused = { ...good, messages: [], accepted: false, error: 'HPE_X', errorMessageStart: 0 };
    const c = { seed: 0, input: raw, maxHeaderSize: 16384, mutations: [] };
    expect(compare(c, refused, good, input).failure).toMatch(/stricter than llhttp for no listed reason/);
    expect(compare(c, good, refused, input).failure).toMatch(/laxer than llhttp/);
    const otherBody = { ...good, messages: [{ ...good.messages[0]!, body: 'x' }] };
    expect(compare(c, otherBody, good, input).failure).toMatch(/body differs/);
  });
});

describe('toNodeHeaders against node:http IncomingMessage', () => {
  const NAMES = [
    'Host',
    'host',
    'Set-Cookie',
    'set-cookie',
    'Cookie',
    'Content-Type',
    'X-A',
    'x-a',
    'Authorization',
    'Age',
    'Date',
    '__proto__',
    'constructor',
    'toString',
    'valueOf',
    'hasOwnProperty',
    'Referer',
    'ETag',
    'Vary',
    'Expect',
  ];
  const VALUES = ['1', '', 'a, b', 'x=y', 'caf\xe9'];

  it('matches req.headers on 5000 random field sets, with and without joinDuplicateHeaders', () => {
    const r = rng(7);
    for (let k = 0; k < 5000; k++) {
      const raw: string[] = [];
      const n = Math.floor(r() * 8);
      for (let i = 0; i < n; i++) raw.push(NAMES[Math.floor(r() * NAMES.length)]!, VALUES[Math.floor(r() * VALUES.length)]!);
      const names = raw.filter((_, i) => i % 2 === 0).map((s) => s.toLowerCase());
      expect(toNodeHeaders(raw, names), JSON.stringify(raw)).toEqual(nodeHeaders(raw));
      // what the server sets from createServer({ joinDuplicateHeaders: true }) (parserOnHeadersComplete)
      const joined = Object.assign(new http.IncomingMessage(new net.Socket()), { joinDuplicateHeaders: true });
      (joined as unknown as { _addHeaderLines(h: string[], n: number): void })._addHeaderLines(raw, raw.length);
      expect(toNodeHeaders(raw, names, { joinDuplicateHeaders: true }), JSON.stringify(raw)).toEqual(joined.headers);
    }
  });

  it('answers a repeated head with a fresh copy of the same req.headers (and never a stale one)', () => {
    const raw = ['Host', 'a', 'User-Agent', 'u', 'Accept', '*/*'];
    const names = ['host', 'user-agent', 'accept'];
    const first = toNodeHeaders(raw, names);
    first.host = 'changed by a plugin';
    delete first.accept;
    const second = toNodeHeaders(raw.slice(), names.slice());
    expect(second).toEqual(nodeHeaders(raw));
    expect(second).not.toBe(first);
    // a head that is not remembered (set-cookie must be each request's own array), then an empty one
    const cookies = ['Set-Cookie', 's=1', 'Host', 'a'];
    const withCookie = toNodeHeaders(cookies, ['set-cookie', 'host']);
    expect(toNodeHeaders(cookies, ['set-cookie', 'host'])['set-cookie']).not.toBe(withCookie['set-cookie']);
    expect(toNodeHeaders([], [])).toEqual({});
  });

  it('drops field lines beyond maxHeadersCount as node does', () => {
    const raw: string[] = [];
    for (let i = 0; i < 2100; i++) raw.push(`x-${i}`, 'v');
    const names = raw.filter((_, i) => i % 2 === 0);
    expect(Object.keys(toNodeHeaders(raw, names))).toHaveLength(2000);
    expect(toNodeHeaders(raw, names)).toEqual(nodeHeaders(raw));
  });
});

/**
 * The in-process reference is what a real node:http server sees: the same requests sent over a socket to
 * http.createServer give the same method, url, headers, body and trailers as runLlhttp, and the own parser.
 */
describe('the llhttp reference against a real node:http server', () => {
  const CASES = [
    'GET /a?b=1 HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\nSet-Cookie: s=1\r\nset-cookie: s=2\r\nCookie: c=1\r\nCookie: d=2\r\nAge: 1\r\nAge: 2\r\n\r\n',
    'POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello',
    'PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n',
    'GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\nX-B: \t caf\xe9 \t\r\n__proto__: p\r\nconstructor: c\r\n\r\n',
    'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    'QUERY /q HTTP/1.0\r\nContent-Length: 2\r\n\r\nok',
  ];

  it('same requests, field for field', async () => {
    const seen: Array<{ method: string; url: string; headers: unknown; rawHeaders: string[]; body: string; trailers: unknown }> = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          method: req.method!,
          url: req.url!,
          headers: { ...req.headers },
          rawHeaders: req.rawHeaders,
          body: Buffer.concat(chunks).toString('latin1'),
          trailers: req.rawTrailers.length > 0 ? req.rawTrailers : null,
        });
        res.setHeader('connection', 'close');
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      for (const raw of CASES) {
        await new Promise<void>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => s.end(Buffer.from(raw, 'latin1')));
          s.on('error', reject);
          s.resume();
          s.on('close', () => resolve());
        });
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expect(seen).toHaveLength(CASES.length);
    CASES.forEach((raw, i) => {
      const input = Buffer.from(raw, 'latin1');
      for (const outcome of [runLlhttp(input, 16384), runOwn(input, 16384)]) {
        const m = outcome.messages[0]!;
        expect({ method: m.method, url: m.target, headers: { ...m.headers }, rawHeaders: m.rawHeaders, body: m.body, trailers: m.trailers }, raw).toEqual(
          seen[i],
        );
      }
    });
  });
});
