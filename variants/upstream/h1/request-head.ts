import type { UpstreamRequestOptions } from '../../../core/contracts/upstream.js';

export const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Node's own rule for header values (checkInvalidHeaderChar): HTAB, visible ASCII, obs-text */
export const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** Node's rule for request targets: no control characters, no space */
const INVALID_PATH = /[^\u0021-\u00ff]/;

const validNames = new Set<string>();

export class InvalidRequestError extends Error {}

export interface RequestHead {
  /** the request line and header fields, to be written as latin1 */
  text: string;
  /** the body is sent with chunked coding (it has no Content-Length) */
  chunked: boolean;
}

/**
 * Serialise the request line and fields. Refuses what Node's http.request refuses (invalid names, values with
 * CR/LF/NUL, a path with spaces or controls): such bytes would let a hook or header edit split the request.
 */
export function serializeRequestHead(o: UpstreamRequestOptions): RequestHead {
  if (!TOKEN.test(o.method)) throw new InvalidRequestError(`invalid method ${JSON.stringify(o.method)}`);
  if (o.path.length === 0 || INVALID_PATH.test(o.path)) throw new InvalidRequestError(`invalid request path ${JSON.stringify(o.path)}`);
  let text = `${o.method} ${o.path} HTTP/1.1\r\n`;
  let hasLength = false;
  const headers = o.headers;
  // Object.keys, as node's http.request takes them: the proxy's headers object has a null prototype (dictionary
  // mode), where for-in re-checks every name (the hottest line of this function under --cpu-prof)
  const names = Object.keys(headers);
  for (let n = 0; n < names.length; n++) {
    const name = names[n]!;
    const value = headers[name];
    if (value === undefined) continue;
    if (!validNames.has(name)) {
      if (!TOKEN.test(name)) throw new InvalidRequestError(`invalid header name ${JSON.stringify(name)}`);
      // the same few dozen names come back on every request: test each once (bounded, so junk cannot grow it)
      if (validNames.size < 1024) validNames.add(name);
    }
    if (!Array.isArray(value)) {
      const v = typeof value === 'string' ? value : String(value);
      if (INVALID_VALUE.test(v)) throw new InvalidRequestError(`invalid character in header ${name}`);
      text += `${name}: ${v}\r\n`;
    } else {
      for (let i = 0; i < value.length; i++) {
        const v = String(value[i]);
        if (INVALID_VALUE.test(v)) throw new InvalidRequestError(`invalid character in header ${name}`);
        text += `${name}: ${v}\r\n`;
      }
    }
    if (name.length === 14 && name.toLowerCase() === 'content-length') hasLength = true;
  }
  const chunked = o.body !== null && !hasLength;
  if (chunked) text += 'transfer-encoding: chunked\r\n';
  return { text: `${text}\r\n`, chunked };
}
