import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { until as waitUntil } from '../support/wait.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface RecordingUpstream {
  url: string;
  port: number;
  /** bytes received on any connection since the last reset() */
  bytes: number;
  /** the raw bytes received since the last reset() */
  data(): string;
  /** requests fully parsed since the last reset() */
  requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer }>;
  connections: number;
  reset(): void;
  close(): Promise<void>;
}

/**
 * An upstream that records every byte it receives (socket level, before its own parser) and every request it
 * parsed; it answers 200 with a JSON echo. A 'data' listener on an http.Server socket makes Node unconsume the
 * native parser and feed it from JS, so recording sees exactly what the parser sees.
 */
export async function startRecordingUpstream(): Promise<RecordingUpstream> {
  const chunks: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const state: RecordingUpstream = {
    url: '',
    port: 0,
    bytes: 0,
    data: () => Buffer.concat(chunks).toString('latin1'),
    requests: [],
    connections: 0,
    reset() {
      state.bytes = 0;
      chunks.length = 0;
      state.requests.length = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  const server = http.createServer((req, res) => {
    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => body.push(c));
    req.on('end', () => {
      state.requests.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(body) });
      const out = JSON.stringify({ method: req.method, url: req.url });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  server.on('connection', (s: net.Socket) => {
    state.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('data', (c: Buffer) => {
      state.bytes += c.length;
      chunks.push(c);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as AddressInfo).port;
  state.url = `http://127.0.0.1:${state.port}`;
  return state;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface Exchange {
  responses: RawResponse[];
  /** the gateway closed (or reset) the connection */
  closed: boolean;
  raw: string;
}

/**
 * Parses as many complete HTTP/1.1 responses from `buf` as it holds (content-length or close-delimited bodies;
 * chunked bodies are consumed but not decoded). 1xx interim responses are returned like any other.
 */
export function parseResponses(buf: string, atEof: boolean): RawResponse[] {
  const out: RawResponse[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const headEnd = buf.indexOf('\r\n\r\n', pos);
    if (headEnd === -1) break;
    const lines = buf.slice(pos, headEnd).split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!);
    if (m === null) break;
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
    }
    let bodyStart = headEnd + 4;
    if (status < 200 || status === 204 || status === 304) {
      out.push({ status, headers, body: '' });
      pos = bodyStart;
      continue;
    }
    if (headers['content-length'] !== undefined) {
      const len = Number(headers['content-length']);
      if (buf.length < bodyStart + len) break;
      out.push({ status, headers, body: buf.slice(bodyStart, bodyStart + len) });
      pos = bodyStart + len;
      continue;
    }
    if (headers['transfer-encoding']?.includes('chunked')) {
      const end = buf.indexOf('\r\n0\r\n\r\n', bodyStart - 2);
      if (end === -1) break;
      out.push({ status, headers, body: buf.slice(bodyStart, end) });
      pos = end + 7;
      bodyStart = pos;
      continue;
    }
    if (!atEof) break;
    out.push({ status, headers, body: buf.slice(bodyStart) });
    pos = buf.length;
  }
  return out;
}

/**
 * Writes `parts` (with optional pauses between them) to a fresh connection and collects what comes back until
 * `expected` final responses have arrived and — when `waitClose` — the server closed, or until `timeoutMs`.
 */
export function exchange(
  port: number,
  parts: Array<string | Buffer | number>,
  opts: { expected?: number; waitClose?: boolean; timeoutMs?: number } = {},
): Promise<Exchange> {
  const expected = opts.expected ?? 1;
  const timeoutMs = opts.timeoutMs ?? 2000;
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let raw = '';
    let closed = false;
    let done = false;
    const finals = (): RawResponse[] => parseResponses(raw, closed).filter((r) => r.status >= 200);
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const responses = parseResponses(raw, closed);
      sock.destroy();
      resolve({ responses, closed, raw });
    };
    const check = (): void => {
      if (closed) return finish();
      if (!opts.waitClose && finals().length >= expected) finish();
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('data', (c: Buffer) => {
      raw += c.toString('latin1');
      check();
    });
    sock.on('error', () => undefined);
    sock.on('end', () => {
      closed = true;
      check();
    });
    sock.on('close', () => {
      closed = true;
      check();
    });
    sock.on('connect', async () => {
      for (const p of parts) {
        if (typeof p === 'number') await sleep(p);
        else if (!sock.destroyed) sock.write(p);
      }
    });
  });
}

/**
 * Waits until `cond()` holds; throws when the deadline passes first, so a caller that does not look at the
 * result still fails instead of carrying on with a condition that never came true. Resolves true (kept for
 * `expect(await until(...)).toBe(true)` callers). New tests: test/support/wait.ts, which takes a message.
 */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, stepMs = 20): Promise<true> {
  await waitUntil(cond, { timeoutMs, stepMs, message: `condition ${cond.toString().slice(0, 200)} never held` });
  return true;
}
