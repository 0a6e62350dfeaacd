/**
 * Answers written straight to a socket as HTTP/1.1 bytes, before (or instead of) a request object: refused
 * connections, parse errors, refused upgrades. Part of the lower layer so that every server engine
 * (variants/server/) writes them the same way as the core does.
 */

/** A complete HTTP/1.1 error response written straight to a socket (no request object exists, or it must not be used). */
export function rawErrorResponse(status: number, reason: string, extraHeaders = ''): string {
  const body = JSON.stringify({ error: reason, statusCode: status });
  return (
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${body.length}\r\n` +
    `${extraHeaders}connection: close\r\n\r\n${body}`
  );
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
