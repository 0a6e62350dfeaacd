/**
 * Seeded generator of HTTP/1.1 request streams for the differential check: valid requests from a grammar
 * (methods, the four target forms, header sets with duplicates and odd names, Content-Length and chunked bodies
 * with extensions and trailers, HTTP/1.0 and 1.1, pipelines of 1–5 requests, heads near the size limit), then
 * mutations (byte flips and insertions of CR/LF/NUL/SP/HTAB/DEL/obs-text, deletions, duplicated framing fields,
 * case changes, whitespace before the colon, obs-fold, broken chunk sizes, truncation).
 * Everything derives from one 32-bit seed per case, so a failure is reproduced from its seed alone.
 */

/** mulberry32: small, fast, and good enough to spread cases */
export function rng(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FuzzCase {
  seed: number;
  /** the request stream, one char per byte (latin1) */
  input: string;
  /** node's maxHeaderSize for both engines: the default, or a small one when the case tests the limit */
  maxHeaderSize: number;
  /** what was done to it, for the report */
  mutations: string[];
}

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rand, a: readonly T[]): T => a[int(r, a.length)]!;
const chance = (r: Rand, p: number): boolean => r() < p;

const METHODS = ['GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT'];
const UNUSUAL_METHODS = ['M-SEARCH', 'PROPFIND', 'MKCALENDAR', 'QUERY', 'SOURCE', 'PURGE', 'LINK', 'TRACE', 'UNLOCK', 'get', 'FOO', 'PRI', 'GETS', 'G'];
const PATH_CHARS = 'abcxyz019-._~!$&\'()*+,;=:@/%"<>\\^`{|}[]#?';
const HOSTS = ['example.com', 'a', 'localhost:8080', '127.0.0.1', '[::1]', '[::1]:443', 'u:p@h', 'a@b@c', 'x%20y', ''];
const NAMES = [
  'Accept',
  'accept',
  'User-Agent',
  'Content-Type',
  'content-type',
  'Cookie',
  'Set-Cookie',
  'set-cookie',
  'X-Forwarded-For',
  'Authorization',
  'Referer',
  'Age',
  'ETag',
  'Date',
  'Vary',
  'Origin',
  'X-Custom',
  'x-custom',
  'X-A',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  "!#$%&'*+-.^_`|~",
  'Keep-Alive',
  'Proxy-Authorization',
  'If-None-Match',
];
const VALUES = [
  '1',
  'text/plain',
  'a=1',
  ' spaced ',
  '\tx\t',
  '',
  'a, b',
  '"quoted, value"',
  'caf\xe9',
  '\xff\x80',
  'x y  z',
  '*/*',
  'chunked',
  'close',
  '1 1',
];
const CONNECTIONS = [
  'close',
  'keep-alive',
  'Keep-Alive',
  'CLOSE',
  'upgrade',
  'Upgrade',
  'keep-alive, Upgrade',
  'foo, close',
  ',close',
  'close ',
  '\tclose',
  'close\t',
  'closed',
  'close;x',
  'x close',
  'keep-alive, close',
  'close, keep-alive',
  ' ,  keep-alive ,',
  'upgrade, close',
];
const TES = [
  'chunked',
  'Chunked',
  'CHUNKED',
  'gzip, chunked',
  'chunked, chunked',
  'chunked, gzip',
  ',chunked',
  'chunked ,',
  '',
  ' ',
  'gzip',
  'x chunked',
  'chunked;q=1',
  // llhttp reads a trailing HTAB as part of the coding, and a leading one as OWS
  'chunked\t',
  'chunked \t',
  ',\tchunked',
  'gzip,\tchunked',
];
const NOISE = [0, 1, 8, 9, 10, 13, 0x0b, 0x0c, 0x1f, 0x20, 0x22, 0x2c, 0x3a, 0x3b, 0x3d, 0x5c, 0x7f, 0x80, 0xa0, 0xff, 0x2f, 0x3f, 0x23, 0x25, 0x40];
const CHUNK_SIZES = ['ffffffffffffffffff', '10000000000000000', '1000000000000', '-1', '0x2', ' 2', '2 ', '2\t', '+2', '', 'g', '0000000000000000000002'];

function randomPath(r: Rand): string {
  let p = '/';
  const n = int(r, 12);
  for (let i = 0; i < n; i++) p += chance(r, 0.7) ? pick(r, 'abcdefghij0123456789/'.split('')) : pick(r, PATH_CHARS.split(''));
  if (chance(r, 0.2)) p += '?q=' + int(r, 100) + (chance(r, 0.3) ? '&r=%20' : '');
  return p;
}

function target(r: Rand, method: string): string {
  if (method === 'CONNECT') {
    return pick(r, ['example.com:443', 'a:1', '[::1]:443', 'example.com', 'a:', '/a', '*', 'http://x/', 'a/b:1', 'a{b:1', 'h%20:8']);
  }
  const k = r();
  if (k < 0.75) return randomPath(r);
  if (k < 0.9) return `${pick(r, ['http', 'https', 'HTTP', 'ws', 'h1', 'h-t'])}://${pick(r, HOSTS)}${chance(r, 0.7) ? randomPath(r) : ''}`;
  if (k < 0.95) return method === 'OPTIONS' || chance(r, 0.3) ? '*' : '*x';
  return pick(r, ['a', '?x', 'a:1', '//x', 'http:/x', 'http://x#y']);
}

/** A chunked body: its wire form and its bytes. */
function chunkedBody(r: Rand): string {
  let out = '';
  const n = int(r, 4);
  for (let i = 0; i < n; i++) {
    const data = randomBytes(r, 1 + int(r, 20));
    let size = data.length.toString(16);
    if (chance(r, 0.2)) size = size.toUpperCase();
    if (chance(r, 0.1)) size = '000' + size;
    out += size + extensions(r) + '\r\n' + data + '\r\n';
  }
  out += (chance(r, 0.1) ? '000' : '0') + extensions(r) + '\r\n';
  if (chance(r, 0.3)) {
    const t = 1 + int(r, 3);
    // names a proxy must never forward from a trailer section among ordinary ones: llhttp refuses the framing
    // fields there, and passes the rest on for the application to judge
    const names = ['X-Trailer', 'Expires', 'x-t', 'Server-Timing', 'Content-Length', 'transfer-encoding', 'Host', 'Connection'];
    for (let i = 0; i < t; i++) out += `${pick(r, names)}: ${pick(r, VALUES)}\r\n`;
  }
  return out + '\r\n';
}

function extensions(r: Rand): string {
  if (!chance(r, 0.25)) return '';
  let e = '';
  const n = 1 + int(r, 3);
  for (let i = 0; i < n; i++) {
    e += ';' + pick(r, ['a', 'name', 'x-y', '', 'q']);
    if (chance(r, 0.6)) e += '=' + pick(r, ['b', '1', '"quoted"', '"with \\" escape"', '"sp ace"', '', 'a b', '"\x01"', '"\xe9"']);
  }
  return e;
}

function randomBytes(r: Rand, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(chance(r, 0.8) ? 0x61 + int(r, 26) : int(r, 256));
  return s;
}

/** One request, valid or nearly so (a few grammar choices are deliberately off). */
function request(r: Rand, last: boolean): string {
  const method = chance(r, 0.08) ? pick(r, UNUSUAL_METHODS) : pick(r, METHODS);
  const version = chance(r, 0.85) ? '1.1' : chance(r, 0.85) ? '1.0' : pick(r, ['0.9', '2.0', '1.2', '3.1']);
  const lines: string[] = [];
  if (version === '1.1' ? !chance(r, 0.03) : chance(r, 0.5)) lines.push(`${pick(r, ['Host', 'host', 'HOST'])}: ${pick(r, HOSTS)}`);
  const extra = int(r, 6);
  for (let i = 0; i < extra; i++) lines.push(`${pick(r, NAMES)}:${pick(r, [' ', '', '  ', '\t'])}${pick(r, VALUES)}`);
  if (chance(r, 0.3)) lines.push(`Connection: ${pick(r, CONNECTIONS)}`);
  else if (!last && version === '1.0') lines.push('Connection: keep-alive');
  if (chance(r, 0.08)) {
    lines.push(`Upgrade: ${pick(r, ['websocket', 'h2c', ''])}`);
    if (chance(r, 0.8)) lines.push(`Connection: ${pick(r, ['Upgrade', 'upgrade', 'keep-alive, upgrade'])}`);
  }
  if (chance(r, 0.08)) lines.push(`Expect: ${pick(r, ['100-continue', '100-Continue', 'x, 100-continue', '100-continuex', 'foo'])}`);
  let body = '';
  const k = r();
  if (k < 0.3) {
    const data = randomBytes(r, int(r, 30));
    lines.push(`${pick(r, ['Content-Length', 'content-length', 'CONTENT-LENGTH'])}:${pick(r, [' ', '', '  '])}${data.length}${pick(r, ['', ' ', '\t'])}`);
    body = data;
  } else if (k < 0.5) {
    lines.push(`${pick(r, ['Transfer-Encoding', 'transfer-encoding'])}: ${chance(r, 0.8) ? 'chunked' : pick(r, TES)}`);
    body = chunkedBody(r);
  } else if (k < 0.53) {
    lines.push(`Content-Length: ${pick(r, ['0', '00', '1x', '', '-1', '9007199254740992', '18446744073709551615', '18446744073709551616', '1, 1', '+1'])}`);
  }
  // shuffle the field lines a little: framing fields are not always last
  for (let i = lines.length - 1; i > 0; i--) {
    if (chance(r, 0.3)) {
      const j = int(r, i + 1);
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
    }
  }
  const head = `${method} ${target(r, method)} HTTP/${version}\r\n${lines.map((l) => l + '\r\n').join('')}\r\n`;
  return head + body;
}

/** A head whose node header count lands within a few bytes of `max`. */
function bigHead(r: Rand, max: number): string {
  const path = randomPath(r);
  const base = path.length + 4 + 1; // "Host" + "a"
  const fill = max - base - 1 - 3 + int(r, 7); // one field "X" of this many value bytes: count = max - 3 .. max + 3
  return `GET ${path} HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(Math.max(0, fill))}${chance(r, 0.3) ? '   ' : ''}\r\n\r\n`;
}

/** Trailer fields whose count lands near `max` (trailers are counted apart from the head). */
function bigTrailers(r: Rand, max: number): string {
  const fill = max - 1 - 3 + int(r, 7);
  return `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nT: ${'t'.repeat(Math.max(0, fill))}\r\n\r\n`;
}

/** A head of blank values: node counts almost none of it, the raw-bytes bound (2 × max) decides. */
function blankHead(r: Rand, max: number): string {
  const lines = Math.floor((2 * max) / 12) - 2 + int(r, 5);
  return `GET / HTTP/1.1\r\nHost: a\r\n${'X:        \r\n'.repeat(Math.max(0, lines))}\r\n`;
}

/** More fields than llhttp hands over in one batch (32 pairs), so node joins several kOnHeaders calls. */
function manyFields(r: Rand, _max: number): string {
  let head = 'GET / HTTP/1.1\r\nHost: a\r\n';
  const n = 30 + int(r, 40);
  for (let i = 0; i < n; i++) head += `${pick(r, NAMES)}: ${pick(r, VALUES)}\r\n`;
  return head + '\r\n';
}

/** A chunk-size line around the 4 KiB bound on extensions. */
function longChunkLine(r: Rand, _max: number): string {
  const ext = ';a=' + 'b'.repeat(4096 - 8 + int(r, 12));
  return `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1${ext}\r\nx\r\n0\r\n\r\n`;
}

type Mutation = (r: Rand, s: string) => string;
const MUTATIONS: Record<string, Mutation> = {
  flip: (r, s) => {
    const i = int(r, s.length);
    return s.slice(0, i) + String.fromCharCode(chance(r, 0.5) ? pick(r, NOISE) : int(r, 256)) + s.slice(i + 1);
  },
  insert: (r, s) => {
    const i = int(r, s.length + 1);
    return s.slice(0, i) + String.fromCharCode(pick(r, NOISE)) + s.slice(i);
  },
  delete: (r, s) => {
    const i = int(r, s.length);
    return s.slice(0, i) + s.slice(i + 1 + int(r, 3));
  },
  dupFraming: (r, s) => {
    const line = pick(r, [
      'Content-Length: 0',
      'Content-Length: 3',
      'Transfer-Encoding: chunked',
      'Transfer-Encoding: gzip',
      'Host: b',
      'Content-Length: 03',
      'Connection: close',
    ]);
    const i = s.indexOf('\r\n');
    return i === -1 ? s : s.slice(0, i + 2) + line + '\r\n' + s.slice(i + 2);
  },
  caseChange: (r, s) => {
    // ASCII letters only: upper-casing 'ÿ' or 'ß' leaves latin1
    const letters = [...s.matchAll(/[A-Za-z]/g)].map((m) => m.index);
    if (letters.length === 0) return s;
    const i = pick(r, letters);
    const c = s.charCodeAt(i);
    return s.slice(0, i) + String.fromCharCode(c ^ 0x20) + s.slice(i + 1);
  },
  spaceBeforeColon: (r, s) => {
    const colons = [...s.matchAll(/:/g)].map((m) => m.index);
    if (colons.length === 0) return s;
    const i = pick(r, colons);
    return s.slice(0, i) + pick(r, [' ', '\t']) + s.slice(i);
  },
  obsFold: (r, s) => {
    const crlfs = [...s.matchAll(/\r\n(?=[A-Za-z])/g)].map((m) => m.index);
    if (crlfs.length === 0) return s;
    const i = pick(r, crlfs);
    return s.slice(0, i + 2) + pick(r, [' ', '\t', '  ']) + s.slice(i + 2);
  },
  chunkSize: (r, s) => {
    const m = /\r\n\r\n([0-9a-fA-F]+)/.exec(s);
    if (m === null) return s;
    const at = m.index + 4;
    return s.slice(0, at) + pick(r, CHUNK_SIZES) + s.slice(at + m[1]!.length);
  },
  lineEnd: (r, s) => {
    const crlfs = [...s.matchAll(/\r\n/g)].map((m) => m.index);
    if (crlfs.length === 0) return s;
    const i = pick(r, crlfs);
    return s.slice(0, i) + pick(r, ['\n', '\r', '\r\r\n', '\n\r']) + s.slice(i + 2);
  },
  truncate: (r, s) => s.slice(0, int(r, s.length)),
  dropHost: (_r, s) => s.replace(/\r\nhost:[^\r]*/i, ''),
  leadingEmptyLines: (r, s) => pick(r, ['\r\n', '\n', '\r', '\r\n\r\n']) + s,
};
const MUTATION_NAMES = Object.keys(MUTATIONS);
for (const name of MUTATION_NAMES) {
  const m = MUTATIONS[name]!;
  // a truncation may leave nothing to work on
  MUTATIONS[name] = (r, s) => (s.length === 0 ? s : m(r, s));
}

export const DEFAULT_MAX_HEADER_SIZE = 16 * 1024;

/** The case for one seed. */
export function generateCase(seed: number): FuzzCase {
  const r = rng(seed);
  let maxHeaderSize = DEFAULT_MAX_HEADER_SIZE;
  let input = '';
  if (chance(r, 0.06)) {
    // the size limits: a small maxHeaderSize keeps these inputs short
    maxHeaderSize = 64 + int(r, 960);
    input = pick(r, [bigHead, bigHead, bigTrailers, blankHead, manyFields, longChunkLine])(r, maxHeaderSize);
    if (chance(r, 0.5)) input += request(r, true);
  } else {
    const n = 1 + (chance(r, 0.4) ? int(r, 5) : 0);
    for (let i = 0; i < n; i++) {
      if (i > 0 && chance(r, 0.1)) input += pick(r, ['\r\n', '\n', '\r\n\r\n']);
      input += request(r, i === n - 1);
    }
  }
  const mutations: string[] = [];
  if (chance(r, 0.6)) {
    const m = 1 + int(r, 3);
    for (let i = 0; i < m; i++) {
      const name = pick(r, MUTATION_NAMES);
      mutations.push(name);
      input = MUTATIONS[name]!(r, input);
    }
  }
  return { seed, input, maxHeaderSize, mutations };
}

/**
 * Where to cut a case into reads: every single cut for short inputs, else a few random ones; always also one
 * byte per read. Each entry is one way of splitting (a list of offsets where a new read begins).
 */
export function splits(seed: number, length: number, allCutsUpTo = 96, randomSplits = 8): number[][] {
  const out: number[][] = [];
  if (length < 2) return out;
  out.push(Array.from({ length: length - 1 }, (_, i) => i + 1));
  if (length <= allCutsUpTo) {
    for (let i = 1; i < length; i++) out.push([i]);
    return out;
  }
  const r = rng(seed ^ 0x5bd1e995);
  for (let k = 0; k < randomSplits; k++) {
    const cuts = new Set<number>();
    const n = 1 + int(r, 3);
    for (let i = 0; i < n; i++) cuts.add(1 + int(r, length - 1));
    out.push([...cuts].sort((a, b) => a - b));
  }
  return out;
}
