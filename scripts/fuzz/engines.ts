import type { IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import { HttpParserError } from '../../variants/server/own/errors.js';
import { toNodeHeaders } from '../../variants/server/own/headers.js';
import { RequestParser, type RequestHead, type RequestSink } from '../../variants/server/own/parser.js';

/**
 * The two engines of the differential check, run on the same bytes and reduced to the same Outcome: the own
 * RequestParser, and llhttp through node's internal HTTPParser binding configured as node:http's server
 * configures it (_http_server.js connectionListenerInternal: HTTPParser.REQUEST, maxHeaderSize, lenient flags
 * kLenientNone unless insecureHTTPParser; req.headers from IncomingMessage#_addHeaderLines with
 * maxHeadersCount 2000, i.e. maxHeaderPairs 4000).
 */

/** One complete request as an engine saw it. */
export interface Message {
  method: string;
  target: string;
  version: string;
  rawHeaders: string[];
  headers: IncomingHttpHeaders;
  /** latin1 */
  body: string;
  trailers: string[] | null;
  keepAlive: boolean;
  upgrade: boolean;
}

export interface Outcome {
  /** the complete requests, in order */
  messages: Message[];
  /** no error, and the input did not end inside a request */
  accepted: boolean;
  /** where the bytes of an upgraded protocol begin, or -1 */
  upgradeOffset: number;
  /** the error code, or '' */
  error: string;
  /** own parser only: stream offset where the failing request began, or -1 */
  errorMessageStart: number;
}

const nodeRequire = createRequire(import.meta.url);

interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(buf: Buffer): number | (Error & { code?: string; bytesParsed?: number });
  finish(): undefined | (Error & { code?: string });
  close(): void;
  [key: number]: unknown;
}
interface HTTPParserClass {
  new (): LlhttpParser;
  REQUEST: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kLenientNone: number;
}
const { HTTPParser, methods } = nodeRequire('_http_common') as { HTTPParser: HTTPParserClass; methods: string[] };

/** node's llhttp binding, for the micro-benchmark (scripts/bench/http-parser.ts) */
export const HTTPParserBinding = { HTTPParser };

/**
 * llhttp's method numbers, as node's allMethods maps them. `methods` (http.METHODS) skips the RTSP methods, so
 * its index is not the number past SOURCE (QUERY is 46); allMethods is only reachable through the deprecated
 * process.binding, so the numbers are read back from the parser itself, once.
 */
const METHOD_BY_NUMBER: string[] = [];
for (const name of methods) {
  const p = new HTTPParser();
  p.initialize(HTTPParser.REQUEST, {}, 0, HTTPParser.kLenientNone);
  p[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, _h: unknown, method: number) => {
    METHOD_BY_NUMBER[method] = name;
    return 0;
  };
  p.execute(Buffer.from(`${name} / HTTP/1.1\r\n\r\n`, 'latin1'));
  p.close();
}
const { IncomingMessage } = nodeRequire('_http_incoming') as {
  IncomingMessage: new (socket: null) => { _addHeaderLines(h: string[], n: number): void; headers: IncomingHttpHeaders };
};

/** node:http's default http.Server#maxHeadersCount, as header name/value slots */
const MAX_HEADER_PAIRS = 2000 << 1;

/** req.headers as node:http builds it from the raw array. */
export function nodeHeaders(raw: string[]): IncomingHttpHeaders {
  const m = new IncomingMessage(null);
  m._addHeaderLines(raw, Math.min(raw.length, MAX_HEADER_PAIRS));
  return m.headers;
}

/** llhttp on the whole input, as node:http's server runs it. */
export function runLlhttp(input: Buffer, maxHeaderSize: number): Outcome {
  const p = new HTTPParser();
  p.initialize(HTTPParser.REQUEST, {}, maxHeaderSize, HTTPParser.kLenientNone);
  const messages: Message[] = [];
  let cur: Message | null = null;
  let complete = true;
  let pendingHeaders: string[] = [];
  let pendingUrl = '';
  const bodies: Buffer[] = [];
  // big heads arrive in several kOnHeaders batches before kOnHeadersComplete (or kOnMessageComplete, for trailers)
  p[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
    for (const h of headers) pendingHeaders.push(h);
    pendingUrl += url;
  };
  p[HTTPParser.kOnHeadersComplete] = (
    vmaj: number,
    vmin: number,
    headers: string[] | undefined,
    method: number,
    url: string | undefined,
    _code: unknown,
    _msg: unknown,
    upgrade: boolean,
    keepAlive: boolean,
  ) => {
    const raw = headers ?? pendingHeaders;
    pendingHeaders = [];
    const target = url ?? pendingUrl;
    pendingUrl = '';
    complete = false;
    bodies.length = 0;
    cur = {
      method: METHOD_BY_NUMBER[method] ?? `#${method}`,
      target,
      version: `${vmaj}.${vmin}`,
      rawHeaders: raw,
      headers: nodeHeaders(raw),
      body: '',
      trailers: null,
      keepAlive,
      upgrade,
    };
    return 0;
  };
  p[HTTPParser.kOnBody] = (b: Buffer) => {
    bodies.push(Buffer.from(b));
  };
  p[HTTPParser.kOnMessageComplete] = () => {
    const m = cur!;
    m.body = Buffer.concat(bodies).toString('latin1');
    if (pendingHeaders.length > 0) {
      m.trailers = pendingHeaders;
      pendingHeaders = [];
    }
    // as parserOnMessageComplete: a flush of the trailers repeats the url, which belongs to no one
    pendingUrl = '';
    messages.push(m);
    complete = true;
  };
  const r = p.execute(input);
  let error = '';
  let upgradeOffset = -1;
  if (typeof r !== 'number') {
    error = r.code ?? 'ERROR';
  } else {
    const last = messages[messages.length - 1];
    if (complete && last !== undefined && last.upgrade) upgradeOffset = r;
    else {
      const f = p.finish();
      if (f !== undefined) error = f.code ?? 'ERROR';
      else if (!complete) error = 'INCOMPLETE';
    }
  }
  p.close();
  return { messages, accepted: error === '', upgradeOffset, error, errorMessageStart: -1 };
}

class Collector implements RequestSink {
  messages: Message[] = [];
  private head: RequestHead | null = null;
  private body = '';
  constructor(private readonly withNodeHeaders: boolean) {}
  onHead(head: RequestHead): void {
    this.head = head;
    this.body = '';
  }
  onBody(chunk: Buffer): void {
    this.body += chunk.toString('latin1');
  }
  onEnd(trailers: string[] | null): void {
    const h = this.head!;
    this.messages.push({
      method: h.method,
      target: h.target,
      version: `1.${h.versionMinor}`,
      rawHeaders: h.rawHeaders,
      headers: this.withNodeHeaders ? toNodeHeaders(h.rawHeaders, h.names) : {},
      body: this.body,
      trailers,
      keepAlive: h.keepAlive,
      upgrade: h.upgrade,
    });
  }
}

/** The own parser on the input cut into `pieces` reads (offsets where a new read begins; none: one read). */
export function runOwn(input: Buffer, maxHeaderSize: number, cuts: readonly number[] = [], withNodeHeaders = true): Outcome {
  const sink = new Collector(withNodeHeaders);
  const parser = new RequestParser(sink, { maxHeaderSize });
  let error = '';
  let errorMessageStart = -1;
  let upgradeOffset = -1;
  try {
    let start = 0;
    for (let i = 0; i <= cuts.length && upgradeOffset === -1; i++) {
      const end = i < cuts.length ? cuts[i]! : input.length;
      if (end <= start) continue;
      const used = parser.execute(input.subarray(start, end));
      if (parser.upgraded) upgradeOffset = start + used;
      start = end;
    }
    if (upgradeOffset === -1) parser.finish();
  } catch (err) {
    if (!(err instanceof HttpParserError)) throw err;
    error = err.code;
    errorMessageStart = err.messageStart;
  }
  return { messages: sink.messages, accepted: error === '', upgradeOffset, error, errorMessageStart };
}
