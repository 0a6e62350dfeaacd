/**
 * Micro-benchmark of the own HTTP/1.1 request parser (variants/server/own/parser.ts) against llhttp through
 * node's HTTPParser binding, configured as node:http's server configures it.
 *
 *   npm run bench:micro -- http-parser [--quick]
 *
 * Per request shape: ns per request (benchmark.js mean ± margin at 95 %), one parser per "connection" fed the
 * same keep-alive request over and over, each request in one read; plus heap bytes allocated per 1M requests.
 * Both sides produce what a server needs: method, target, the field lines as strings, the body bytes. Neither
 * builds req.headers (node does that lazily, the own engine with toNodeHeaders when asked).
 * Writes {results.json,report.md} to the git-ignored reports/runs/<timestamp>-micro-http-parser/.
 */
import { cpus } from 'node:os';
import { pathToFileURL } from 'node:url';
import { RequestParser, type RequestHead, type RequestSink } from '../../variants/server/own/parser.js';
import { HTTPParserBinding } from '../fuzz/engines.js';
import {
  environment,
  fmt,
  getGc,
  measureAllocation,
  timeOps,
  writeReport,
  type Allocation,
  type MicroBenchOptions,
  type MicroBenchResult,
  type Timing,
} from './harness.js';
export type { MicroBenchOptions, MicroBenchResult } from './harness.js';

const OPS_PER_CALL = 1000;
const ALLOC_CHUNK = 2000;

/** The request shapes measured: what a browser GET, an API POST and a streamed upload look like. */
export const SHAPES: Record<string, string> = {
  'GET, 300-byte head':
    'GET /api/v1/users/12345/orders?limit=20&offset=40 HTTP/1.1\r\n' +
    'Host: api.example.com\r\n' +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n' +
    'Accept: application/json\r\n' +
    'Accept-Encoding: gzip, deflate, br\r\n' +
    'Accept-Language: en-US,en;q=0.5\r\n' +
    'Cookie: session=3f9a2c1b7d\r\n' +
    'Connection: keep-alive\r\n\r\n',
  'POST, 64-byte Content-Length body':
    'POST /api/v1/events HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n' +
    '{"type":"click","target":"button#buy","ts":1732860000000,"n":42}',
  'POST, chunked body (3 chunks)':
    'POST /upload HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '20\r\n0123456789abcdef0123456789abcdef\r\n20\r\n0123456789abcdef0123456789abcdef\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n',
};

/** The work a server does with what the parser hands over, kept minimal and the same for both sides. */
class CountingSink implements RequestSink {
  requests = 0;
  bytes = 0;
  last: RequestHead | null = null;
  onHead(head: RequestHead): void {
    this.last = head;
  }
  onBody(chunk: Buffer): void {
    this.bytes += chunk.length;
  }
  onEnd(): void {
    this.requests++;
  }
}

function ownLoop(buf: Buffer): (n: number) => void {
  const sink = new CountingSink();
  const parser = new RequestParser(sink);
  return (n) => {
    for (let i = 0; i < n; i++) parser.execute(buf);
    if (sink.requests === 0) throw new Error('own parser saw no request');
  };
}

function llhttpLoop(buf: Buffer): (n: number) => void {
  const { HTTPParser } = HTTPParserBinding;
  const p = new HTTPParser();
  p.initialize(HTTPParser.REQUEST, {}, 16 * 1024, HTTPParser.kLenientNone);
  let requests = 0;
  let bytes = 0;
  const escape = { headers: null as unknown, url: '' };
  p[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, headers: unknown, _method: number, url: string) => {
    escape.headers = headers;
    escape.url = url;
    return 0;
  };
  p[HTTPParser.kOnBody] = (b: Buffer) => {
    bytes += b.length;
  };
  p[HTTPParser.kOnMessageComplete] = () => {
    requests++;
  };
  return (n) => {
    for (let i = 0; i < n; i++) {
      const r = p.execute(buf);
      if (typeof r !== 'number') throw r;
    }
    if (requests === 0 || bytes < 0) throw new Error('llhttp saw no request');
  };
}

interface Row {
  shape: string;
  bytes: number;
  engine: string;
  timing: Timing;
  allocation: Allocation;
}

export async function runHttpParserBench(opts: MicroBenchOptions = {}): Promise<MicroBenchResult> {
  const quick = opts.quick === true;
  const gc = getGc();
  const rows: Row[] = [];
  for (const [shape, raw] of Object.entries(SHAPES)) {
    const buf = Buffer.from(raw, 'latin1');
    for (const [engine, make] of [
      ['own', ownLoop],
      ['llhttp (node binding)', llhttpLoop],
    ] as const) {
      const loop = make(buf);
      loop(50_000);
      gc();
      const timing = timeOps(`${engine} ${shape}`, () => loop(OPS_PER_CALL), OPS_PER_CALL, quick);
      const allocation = measureAllocation(loop, quick ? 30 : 300, gc, ALLOC_CHUNK);
      rows.push({ shape, bytes: buf.length, engine, timing, allocation });
      process.stderr.write(`http-parser ${engine} / ${shape}: ${fmt(timing.nsPerOp)} ns/request, ${allocation.bytesPer1M} B/1M\n`);
    }
  }
  const json = {
    benchmark: 'http-parser',
    startedAt: new Date().toISOString(),
    environment: environment(quick),
    method: {
      timing: `benchmark.js, ${OPS_PER_CALL} requests per call (one execute() each, same parser: a keep-alive connection), ns/request = mean call time / ${OPS_PER_CALL}, margin = 95% confidence (rme)`,
      allocation: `forced full GC before each chunk of ${ALLOC_CHUNK} requests; median v8 used_heap_size delta minus the median empty-chunk delta; scaled to 1M requests`,
    },
    results: rows,
  };
  const lines = [
    '# HTTP/1.1 request parser micro-benchmark',
    '',
    `Node ${process.version}, ${String((json.environment as Record<string, unknown>).cpu)} × ${cpus().length}${quick ? ' — **quick run, not for quoting**' : ''}.`,
    '',
    '| request | bytes | engine | ns / request | bytes allocated / 1M requests |',
    '|---|---:|---|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.shape} | ${r.bytes} | ${r.engine} | ${fmt(r.timing.nsPerOp)} ± ${fmt(r.timing.marginNs)} | ${r.allocation.bytesPer1M.toLocaleString('en-US')} |`,
    ),
    '',
    `Timing: ${json.method.timing}.`,
    '',
    `Allocation: ${json.method.allocation}.`,
    '',
  ];
  const markdown = lines.join('\n');
  const dir = opts.write === false ? undefined : writeReport('http-parser', json, markdown, opts);
  return { json, markdown, dir };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await runHttpParserBench({ quick: process.argv.includes('--quick') });
  process.stdout.write(result.markdown);
  if (result.dir !== undefined) process.stdout.write(`\nwritten to ${result.dir}\n`);
}
