import { describe, expect, it } from 'vitest';
import { overflowStatus } from '../../core/base/raw-http.js';

/**
 * node-http's answer to llhttp's HPE_HEADER_OVERFLOW (one error for an over-long request line and over-long
 * headers): 414 when the request line did not fit, 431 otherwise. The packet is the chunk llhttp overflowed in,
 * `bytesParsed` where it stopped (node 20: just past the URL for an over-long one). End to end on both engines:
 * test/server/common.case.ts, "a parse error answered 414 …".
 */
const MAX_URL = 8192;
const packet = (s: string): Buffer => Buffer.from(s, 'latin1');
const longLine = `GET /${'u'.repeat(9000)}`;

describe('overflowStatus', () => {
  it('a request line with no end in the packet, or ending past maxUrlLength: 414', () => {
    expect(overflowStatus(packet(longLine), undefined, MAX_URL)).toBe(414);
    expect(overflowStatus(packet(`${longLine} HTTP/1.1\r\nHost: a\r\n`), undefined, MAX_URL)).toBe(414);
  });

  it('a short request line followed by a header that does not fit: 431', () => {
    expect(overflowStatus(packet(`GET /a HTTP/1.1\r\nX-Big: ${'b'.repeat(9000)}`), undefined, MAX_URL)).toBe(431);
  });

  it('among pipelined requests in one packet, the one llhttp stopped in is judged, not the first or the last', () => {
    const earlier = 'GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /static HTTP/1.1\r\nHost: a\r\n\r\n';
    const after = 'GET /after HTTP/1.1\r\nHost: a\r\n\r\n';
    // the packet and bytesParsed node 20.20 reports for these streams (checked against a live http.Server)
    const bad = `${longLine} HTTP/1.1\r\nHost: a\r\n\r\n`;
    expect(overflowStatus(packet(earlier + bad + after), earlier.length + longLine.length, MAX_URL)).toBe(414);
    const big = `GET /a HTTP/1.1\r\nX-Big: ${'b'.repeat(9000)}\r\n\r\n`;
    expect(overflowStatus(packet(earlier + big + after), earlier.length + big.length - 3, MAX_URL)).toBe(431);
    // without bytesParsed the whole packet is searched: the last request decides (a short line: 431)
    expect(overflowStatus(packet(earlier + bad + after), undefined, MAX_URL)).toBe(431);
    expect(overflowStatus(packet(earlier + longLine), undefined, MAX_URL)).toBe(414);
  });

  it('a packet that does not start a request (the head continues from an earlier read, or a body precedes it): 431', () => {
    expect(overflowStatus(packet('u'.repeat(9000)), undefined, MAX_URL)).toBe(431);
    expect(overflowStatus(packet(`X-Big: ${'b'.repeat(9000)}`), undefined, MAX_URL)).toBe(431);
    expect(overflowStatus(packet(`POST /p HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody${longLine}`), undefined, MAX_URL)).toBe(431);
  });

  it('no packet: 431', () => {
    expect(overflowStatus(undefined, undefined, MAX_URL)).toBe(431);
    expect(overflowStatus(Buffer.alloc(0), 0, MAX_URL)).toBe(431);
  });
});
