import { validateHeaderName, validateHeaderValue } from 'node:http';

/**
 * Answers written straight to a socket as HTTP/1.1 bytes, before (or instead of) a request object: refused
 * connections, parse errors, refused upgrades. Part of the lower layer so that every server engine
 * (variants/server/) writes them the same way as the core does.
 */

/** Header fields of a raw answer, written in their insertion order. */
export type RawHeaders = Record<string, string | number | readonly string[] | undefined>;

/**
 * The one writer of an HTTP/1.1 response head for a socket: status line, the fields in order, blank line. Nothing
 * here goes through node:http's checks, so a field it would refuse (a name or value that could split the
 * response) is dropped, and a status outside 100–999 becomes 500.
 */
export function rawHead(status: number, reason: string, headers: RawHeaders): string {
  const code = Number.isInteger(status) && status >= 100 && status <= 999 ? status : 500;
  let head = `HTTP/1.1 ${code} ${reason}\r\n`;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (typeof v === 'object') {
      for (const one of v) if (isSendableHeader(name, one)) head += `${name}: ${one}\r\n`;
    } else if (isSendableHeader(name, String(v))) head += `${name}: ${v}\r\n`;
  }
  return `${head}\r\n`;
}

/**
 * A complete HTTP/1.1 error response written straight to a socket (no request object exists, or it must not be
 * used): the JSON error body, the connection closed after it.
 */
export function rawErrorResponse(status: number, reason: string, extraHeaders?: RawHeaders): string {
  const body = JSON.stringify({ error: reason, statusCode: status });
  return `${rawHead(status, reason, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length, ...extraHeaders, connection: 'close' })}${body}`;
}

function isSendableHeader(name: string, value: string): boolean {
  try {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    return true;
  } catch {
    return false;
  }
}

/**
 * llhttp reports an over-long request line and over-long headers alike as HPE_HEADER_OVERFLOW (Node counts
 * both against maxHeaderSize). The packet that overflowed tells them apart: if the request it overflowed in
 * starts in it and that request's first line end is missing or lies past maxUrlLength, the request line itself
 * is what did not fit → 414; else 431. The overflowing request begins after the last CRLFCRLF before the point
 * where llhttp stopped (`bytesParsed`): what precedes it are earlier pipelined requests with complete heads (a
 * body in between makes it start with something other than a method, and the answer stays 431).
 */
export function overflowStatus(rawPacket: unknown, bytesParsed: unknown, maxUrlLength: number): 414 | 431 {
  if (!Buffer.isBuffer(rawPacket) || rawPacket.length === 0) return 431;
  const stop = typeof bytesParsed === 'number' && bytesParsed >= 0 && bytesParsed <= rawPacket.length ? bytesParsed : rawPacket.length;
  const lastHeadEnd = stop < 4 ? -1 : rawPacket.lastIndexOf('\r\n\r\n', stop - 4, 'latin1');
  const start = lastHeadEnd === -1 ? 0 : lastHeadEnd + 4;
  const sp = rawPacket.indexOf(32, start);
  if (sp <= start || sp > start + 24) return 431;
  for (let i = start; i < sp; i++) {
    const ch = rawPacket[i]!;
    if (ch < 65 || ch > 90) return 431; // not a method token: this packet continues the header section
  }
  const lf = rawPacket.indexOf(10, start);
  return lf === -1 || lf - start > maxUrlLength ? 414 : 431;
}
