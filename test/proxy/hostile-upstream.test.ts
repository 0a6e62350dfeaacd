import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamClientError, type UpstreamResponse } from '../../core/contracts/upstream.js';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { upstreamClientVariants } from '../../variants/upstream/index.js';
import { startCli, type CliGateway } from '../support/cli.js';
import { request } from '../support/http.js';
import { exchange, type Exchange } from '../support/raw.js';

/**
 * A hostile upstream — a raw TCP server writing exact bytes — against every upstream client variant. Each
 * malformed answer must become a 502 (or, where the RFC allows the answer, a clean one asserted exactly);
 * no worker may die or restart, and no byte of one answer may reach another client.
 */
const VARIANTS = Object.keys(upstreamClientVariants);

const CONTROL_BYTES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 0x0b, 0x0c, ...Array.from({ length: 0x1f - 0x0e + 1 }, (_, i) => 0x0e + i), 0x7f];
const hex = (b: number): string => b.toString(16).padStart(2, '0');
const OK_TAIL = 'Content-Length: 2\r\n\r\nok';
const chunked = (sizeLine: string, trailer = ''): string => `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${sizeLine}\r\nok\r\n0\r\n${trailer}\r\n`;

/** What the gateway's client must see: a status, and optionally exact header checks on the wire. */
interface Expect {
  status: number;
  body?: string;
  /** header names that must not appear in the client's response head (checked on the raw bytes) */
  absent?: string[];
  /** header values that must appear exactly */
  present?: Record<string, string>;
  /**
   * The fault is in the body: the head may already be on its way to the client when it is found (how far the
   * upstream's bytes got in one read decides). Then a 502 is impossible and the answer must be visibly broken
   * instead: the connection closes before a complete response.
   */
  orBroken?: boolean;
}

/** name → the upstream's exact answer, and what the client must get */
const CASES: Record<string, { answer: string; expect: Expect }> = {};
for (const b of CONTROL_BYTES) {
  CASES[`ctl-value-${hex(b)}`] = { answer: `HTTP/1.1 200 OK\r\nX-Evil: a${String.fromCharCode(b)}b\r\n${OK_TAIL}`, expect: { status: 502 } };
}
Object.assign(CASES, {
  'ctl-name': { answer: `HTTP/1.1 200 OK\r\nX\x01Evil: y\r\n${OK_TAIL}`, expect: { status: 502 } },
  'space-in-name': { answer: `HTTP/1.1 200 OK\r\nX Evil: y\r\n${OK_TAIL}`, expect: { status: 502 } },
  'bare-cr-value': { answer: `HTTP/1.1 200 OK\r\nX-Evil: a\rb\r\n${OK_TAIL}`, expect: { status: 502 } },
  // HTAB and obs-text are legal in a value (RFC 9110 §5.5): forwarded as they are
  'htab-obs-text': { answer: `HTTP/1.1 200 OK\r\nX-Fine: a\tb\xe9\r\n${OK_TAIL}`, expect: { status: 200, body: 'ok', present: { 'x-fine': 'a\tb\xe9' } } },
  'status-000': { answer: `HTTP/1.1 000 Zero\r\n${OK_TAIL}`, expect: { status: 502 } },
  'status-099': { answer: `HTTP/1.1 099 Low\r\n${OK_TAIL}`, expect: { status: 502 } },
  'status-99': { answer: `HTTP/1.1 99 Short\r\n${OK_TAIL}`, expect: { status: 502 } },
  'status-1000': { answer: `HTTP/1.1 1000 Long\r\n${OK_TAIL}`, expect: { status: 502 } },
  'status-2a0': { answer: `HTTP/1.1 2a0 Letters\r\n${OK_TAIL}`, expect: { status: 502 } },
  'status-20x': { answer: `HTTP/1.1 20x Letters\r\n${OK_TAIL}`, expect: { status: 502 } },
  // any 3-digit code from 100 to 999 is a valid status (node:http's writeHead accepts it): forwarded
  'status-599': { answer: `HTTP/1.1 599 Odd\r\n${OK_TAIL}`, expect: { status: 599, body: 'ok' } },
  // no CRLFCRLF ever comes and the upstream keeps the connection open: refused at once, not after headersMs
  'bare-lf': { answer: 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok', expect: { status: 502 } },
  'chunk-space-before': { answer: chunked(' 2'), expect: { status: 502, orBroken: true } },
  'chunk-space-after': { answer: chunked('2 '), expect: { status: 502, orBroken: true } },
  'chunk-0x': { answer: chunked('0x2'), expect: { status: 502, orBroken: true } },
  'chunk-empty': { answer: chunked(''), expect: { status: 502, orBroken: true } },
  'chunk-huge': { answer: chunked('f'.repeat(20)), expect: { status: 502, orBroken: true } },
  'chunk-ext-bws': { answer: chunked('2 ; a = b'), expect: { status: 502, orBroken: true } },
  'chunk-leading-zeros': { answer: chunked('0000000000000000000000000002'), expect: { status: 200, body: 'ok' } },
  'trailer-ctl-name': { answer: chunked('2', 'X\x01T: 1\r\n'), expect: { status: 502, orBroken: true } },
  'trailer-ctl-value': { answer: chunked('2', 'X-T: a\x01b\r\n'), expect: { status: 502, orBroken: true } },
  'trailer-no-colon': { answer: chunked('2', 'bad trailer\r\n'), expect: { status: 502, orBroken: true } },
  'trailer-obs-fold': { answer: chunked('2', 'X-T: a\r\n b\r\n'), expect: { status: 502, orBroken: true } },
  // RFC 9110 §8.6: no Content-Length on 204; §15.4.5: a 304 may carry the representation's Content-Length
  '204-with-cl': {
    answer: 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-A: 1\r\n\r\n',
    expect: { status: 204, absent: ['content-length', 'transfer-encoding'], present: { 'x-a': '1' } },
  },
  '204-with-te': {
    answer: 'HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n',
    expect: { status: 204, absent: ['content-length', 'transfer-encoding'] },
  },
  '304-with-cl': {
    answer: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: "e"\r\n\r\n',
    expect: { status: 304, absent: ['transfer-encoding'], present: { 'content-length': '5', etag: '"e"' } },
  },
  '304-with-te': {
    answer: 'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nETag: "e"\r\n\r\n',
    expect: { status: 304, absent: ['content-length', 'transfer-encoding'], present: { etag: '"e"' } },
  },
});

const POISON = 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON';

interface Hostile {
  url: string;
  /** requests received per path */
  arrivals: Map<string, number>;
  close(): Promise<void>;
}

/**
 * Answers /h/<case> with that case's bytes, /own/<x> with `own:<x>`. A few paths misbehave in time:
 * /poison-head and /poison-204 answer a bodiless head, then write a complete extra response in front of the
 * next answer on that connection (what a broken or hostile upstream does after a HEAD or a 204);
 * /cl-short answers Content-Length 10 with 2 bytes and closes; /cl-long sends more than it announced.
 */
async function startHostile(): Promise<Hostile> {
  const sockets = new Set<net.Socket>();
  const arrivals = new Map<string, number>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = '';
    let poisonNext = false;
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end !== -1; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const path = /^[A-Z]+ (\S+)/.exec(head)?.[1] ?? '';
        arrivals.set(path, (arrivals.get(path) ?? 0) + 1);
        if (poisonNext) {
          poisonNext = false;
          s.write(POISON);
        }
        const name = path.slice(path.lastIndexOf('/') + 1);
        if (path.startsWith('/h/')) {
          const c = CASES[name];
          s.write(Buffer.from(c === undefined ? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n' : c.answer, 'latin1'));
        } else if (path === '/poison-head') {
          s.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n');
          poisonNext = true;
        } else if (path === '/poison-204') {
          s.write('HTTP/1.1 204 No Content\r\nContent-Length: 6\r\n\r\n');
          poisonNext = true;
        } else if (path === '/cl-short') {
          s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok');
        } else if (path === '/cl-long') {
          s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok and more');
        } else if (path === '/cl-twice') {
          s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!');
        } else {
          const body = `own:${path}`;
          s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrivals,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function upstreamConfig(url: string, maxSockets: number): Record<string, unknown> {
  return {
    targets: [url],
    // every case is an upstream failure: keep the target in rotation and never retry, so each case is one exchange
    healthCheck: { passive: { enabled: false } },
    circuitBreaker: { enabled: false },
    retries: { count: 0 },
    timeouts: { headersMs: 8000, idleMs: 8000, requestMs: 10_000 },
    keepAlive: { maxSockets, maxIdleSockets: maxSockets, idleMs: 10_000 },
  };
}

/** A chunked body as parseResponses leaves it (complete, terminator cut off) → its content. */
function dechunk(raw: string): string {
  let out = '';
  let pos = 0;
  while (pos < raw.length) {
    const eol = raw.indexOf('\r\n', pos);
    const size = parseInt(raw.slice(pos, eol), 16);
    out += raw.slice(eol + 2, eol + 2 + size);
    pos = eol + 2 + size + 2;
  }
  return out;
}

/** The raw head of the first response, as sent on the wire. */
function rawHead(ex: Exchange): string {
  const end = ex.raw.indexOf('\r\n\r\n');
  return end === -1 ? ex.raw : ex.raw.slice(0, end);
}

async function check(port: number, name: string): Promise<void> {
  const want = CASES[name]!.expect;
  const ex = await exchange(port, [`GET /h/${name} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`], { timeoutMs: 5000 });
  const detail = `${name}: got ${JSON.stringify(ex.raw.slice(0, 300))}`;
  const first = ex.responses.find((r) => r.status >= 200);
  if (want.orBroken === true && first === undefined) {
    expect(ex.closed, detail).toBe(true);
    return;
  }
  expect(first?.status, detail).toBe(want.status);
  if (want.body !== undefined) expect(first?.headers['transfer-encoding'] === 'chunked' ? dechunk(first.body) : first?.body, detail).toBe(want.body);
  const head = rawHead(ex).toLowerCase();
  for (const h of want.absent ?? []) expect(head, `${detail}: ${h} on the wire`).not.toMatch(new RegExp(`\r\n${h}:`));
  for (const [h, v] of Object.entries(want.present ?? {})) expect(head, detail).toContain(`\r\n${h}: ${v.toLowerCase()}`);
}

let hostile: Hostile;
beforeAll(async () => {
  hostile = await startHostile();
});
afterAll(async () => {
  await hostile?.close();
});

interface Stats {
  workers: Array<{ id: number; pid: number; alive: boolean; restarts: number }>;
}
const stats = async (gw: CliGateway): Promise<Stats> => JSON.parse((await request(`${gw.adminUrl}/stats`, { agent: false })).body) as Stats;

for (const variant of VARIANTS) {
  describe(`hostile upstream, client ${variant}, in a 2-worker cluster`, () => {
    let gw: CliGateway;
    let before: Stats;
    beforeAll(async () => {
      gw = await startCli({
        server: { host: '127.0.0.1', workers: 2 },
        logging: { level: 'info', accessLog: false },
        variants: { upstream: variant },
        upstreams: { evil: upstreamConfig(hostile.url, 4) },
        routes: [{ path: '/h/*', upstream: 'evil' }],
      });
      before = await stats(gw);
      expect(before.workers.map((w) => w.alive)).toEqual([true, true]);
    }, 30_000);
    afterAll(async () => {
      await gw?.stop('SIGKILL');
    });

    for (const name of Object.keys(CASES)) {
      it(`${name} → ${CASES[name]!.expect.status}`, async () => {
        await check(gw.port, name);
      });
    }

    it('no worker died or restarted: same pids, restarts 0', async () => {
      const pick = (s: Stats): unknown => s.workers.map((w) => ({ id: w.id, pid: w.pid, alive: w.alive, restarts: w.restarts }));
      const after = await stats(gw);
      expect(pick(after), gw.output().slice(-2000)).toEqual(before.workers.map((w) => ({ id: w.id, pid: w.pid, alive: true, restarts: 0 })));
      expect(gw.proc.exitCode).toBeNull();
    });
  });

  describe(`hostile upstream, client ${variant}, one pooled connection`, () => {
    let gw: RunningGateway;
    const running: RunningGateway[] = [];
    afterEach(async () => {
      while (running.length > 0) await running.pop()!.close();
    });
    async function gateway(maxSockets: number, extra: Record<string, unknown> = {}): Promise<RunningGateway> {
      gw = await startGateway({
        server: { host: '127.0.0.1' },
        admin: { enabled: false },
        logging: { level: 'silent', accessLog: false },
        variants: { upstream: variant },
        upstreams: { evil: { ...upstreamConfig(hostile.url, maxSockets), ...extra } },
        routes: [{ path: '/*', upstream: 'evil' }],
      });
      running.push(gw);
      return gw;
    }

    for (const [method, path] of [
      ['HEAD', '/poison-head'],
      ['GET', '/poison-204'],
    ] as const) {
      it(`bytes written after a ${method} ${path.slice(8)} answer never reach the next client`, async () => {
        const g = await gateway(1);
        // client A, its own connection: the bodiless answer
        const a = await exchange(g.port, [`${method} ${path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`], { waitClose: true, timeoutMs: 5000 });
        expect(a.raw, a.raw).toMatch(/^HTTP\/1\.1 (200|204) /);
        expect(a.raw).not.toContain('POISON');
        // client B, another connection, through the same (single) upstream connection slot
        const b = await exchange(g.port, ['GET /own/b HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n'], { waitClose: true, timeoutMs: 5000 });
        expect(b.raw).not.toContain('POISON');
        expect(
          b.responses.map((r) => [r.status, r.body]),
          b.raw,
        ).toEqual([[200, 'own:/own/b']]);
      });
    }

    for (const path of ['/cl-short', '/cl-long', '/cl-twice']) {
      it(`${path}: with retries.count 0 the upstream sees exactly one request`, async () => {
        const g = await gateway(4);
        const before = hostile.arrivals.get(path) ?? 0;
        const ex = await exchange(g.port, [`GET ${path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`], { waitClose: true, timeoutMs: 5000 });
        if (path === '/cl-short') {
          // 2 of 10 announced bytes: never a complete answer (a 502, or the response cut short)
          expect(
            ex.responses.filter((r) => r.status === 200),
            ex.raw,
          ).toEqual([]);
        } else if (path === '/cl-twice') {
          expect(
            ex.responses.map((r) => r.status),
            ex.raw,
          ).toEqual([502]);
        } else {
          // the announced 2 bytes are a complete answer; what follows is junk that closes the connection
          // (RFC 9112 §6.3): forwarding "ok" is correct, and the junk is never forwarded
          expect(
            ex.responses.map((r) => [r.status, r.body]),
            ex.raw,
          ).toEqual([[200, 'ok']]);
          expect(ex.raw).not.toContain('more');
        }
        // a replay would arrive before the gateway answers; a second request on a fresh connection is in order
        const after = await exchange(g.port, ['GET /own/after HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n'], { waitClose: true, timeoutMs: 5000 });
        expect(after.responses[0]?.body).toBe('own:/own/after');
        expect(hostile.arrivals.get(path)! - before, ex.raw).toBe(1);
      });
    }
  });
}

/**
 * The client contract on its own (no gateway around it, whose send() would also turn a head it cannot write
 * into an error answer): a head node:http's writeHead would refuse is a 'protocol' failure of the request —
 * never a response, and never a 'reset' (which the keep-alive retry would replay).
 */
describe.each(VARIANTS)('client %s refuses heads the server side cannot write', (variant) => {
  const heads: Record<string, string> = {
    'status-000': `HTTP/1.1 000 Zero\r\n${OK_TAIL}`,
    'status-099': `HTTP/1.1 099 Low\r\n${OK_TAIL}`,
    'ctl-value-01': `HTTP/1.1 200 OK\r\nX-Evil: a\x01b\r\n${OK_TAIL}`,
    'ctl-value-7f': `HTTP/1.1 200 OK\r\nX-Evil: a\x7fb\r\n${OK_TAIL}`,
    'ctl-name': `HTTP/1.1 200 OK\r\nX\x01Evil: y\r\n${OK_TAIL}`,
  };
  it.each(Object.keys(heads))('%s', async (name) => {
    if (CASES[name] === undefined) throw new Error(`no case ${name}`);
    const client = upstreamClientVariants[variant]!(new URL(hostile.url), { connectTimeoutMs: 2000, maxSockets: 2, maxIdleSockets: 2, idleMs: 10_000 });
    try {
      const before = hostile.arrivals.get(`/h/${name}`) ?? 0;
      const outcome = await client
        .request({ method: 'GET', path: `/h/${name}`, headers: { host: 'x' }, body: null, headersTimeoutMs: 5000, idleTimeoutMs: 5000, abort: null })
        .then(
          (r: UpstreamResponse) => `answered ${r.statusCode}`,
          (e: unknown) => (e instanceof UpstreamClientError ? e.kind : String(e)),
        );
      expect(outcome).toBe('protocol');
      expect((hostile.arrivals.get(`/h/${name}`) ?? 0) - before).toBe(1);
    } finally {
      await client.close();
    }
  });
});
