import net from 'node:net';
import { sleep } from './wait.js';

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
    const writeParts = async (): Promise<void> => {
      for (const p of parts) {
        if (typeof p === 'number') await sleep(p);
        else if (!sock.destroyed) sock.write(p);
      }
    };
    sock.on('connect', () => void writeParts());
  });
}
