import { isIPv6 } from 'node:net';

/**
 * RFC 9112 §3.2 / RFC 3986 §3.2.2-3.2.3: a Host field value (or HTTP/2 `:authority`) is `uri-host [ ":" port ]`,
 * where uri-host is an IP-literal (`[` IPv6 or IPvFuture `]`), an IPv4 address or a reg-name (unreserved,
 * pct-encoded, sub-delims). Anything else — `/`, `?`, `#`, `@`, spaces, a second colon — is refused before the
 * request reaches a route or the cache: a Host that carries a path would let a client pick which route's answer
 * is stored under another URL (the cache key is the target URI, RFC 9111 §2). An empty host is refused too
 * (RFC 9110 §4.2.1: an http URI with an empty host is invalid).
 */

/** 1 for the characters a reg-name may hold besides `%` (RFC 3986 unreserved and sub-delims). */
const REG_NAME = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=") REG_NAME[c.charCodeAt(0)] = 1;

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/** `v` 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) */
const IPV_FUTURE = /^[vV][0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+$/;

// Clients send the same few Host values over and over: the last one found valid is not scanned again.
let lastValid = '';

/** Whether `value` is `uri-host [ ":" port ]` with a non-empty host and, when present, a port of 0-65535. */
export function validHost(value: string): boolean {
  if (value === lastValid) return true;
  const n = value.length;
  if (n === 0) return false;
  let end: number;
  if (value.charCodeAt(0) === 91 /* [ */) {
    end = value.indexOf(']');
    if (end === -1) return false;
    const literal = value.slice(1, end);
    // no zone identifier (RFC 6874 is not part of the HTTP grammar): isIPv6 would accept `fe80::1%eth0`
    if (literal.indexOf('%') !== -1 || !(isIPv6(literal) || IPV_FUTURE.test(literal))) return false;
    end++;
  } else {
    end = 0;
    while (end < n) {
      const c = value.charCodeAt(end);
      if (c === 58 /* : */) break;
      if (c === 37 /* % */) {
        if (end + 2 >= n || !isHex(value.charCodeAt(end + 1)) || !isHex(value.charCodeAt(end + 2))) return false;
        end += 3;
        continue;
      }
      if (c >= 128 || REG_NAME[c] !== 1) return false;
      end++;
    }
    if (end === 0) return false;
  }
  if (end < n) {
    if (value.charCodeAt(end) !== 58) return false;
    const port = value.slice(end + 1);
    // an empty port is allowed by RFC 3986 (`port = *DIGIT`) and means the scheme's default
    if (port.length > 5 || !/^[0-9]*$/.test(port) || (port.length > 0 && Number(port) > 65535)) return false;
  }
  lastValid = value;
  return true;
}
