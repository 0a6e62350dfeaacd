import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { ServerResponse } from '../contracts/server.js';
import { BODY_TRAILERS, type TrailerCarrier } from '../contracts/upstream.js';

/**
 * Fields a trailer section must not carry (RFC 9110 §6.5.1): framing, routing, request modifiers, authentication,
 * response control data and content metadata a recipient reads before the body; plus the connection-specific
 * ones HTTP/2 forbids everywhere (RFC 9113 §8.2.2). An upstream that sends them has them dropped, the rest of its
 * trailers go through.
 */
const FORBIDDEN: Record<string, true> = Object.assign(Object.create(null) as Record<string, true>, {
  'content-length': true,
  'transfer-encoding': true,
  'content-type': true,
  'content-encoding': true,
  'content-range': true,
  trailer: true,
  host: true,
  connection: true,
  'keep-alive': true,
  'proxy-connection': true,
  upgrade: true,
  te: true,
  authorization: true,
  'proxy-authorization': true,
  'www-authenticate': true,
  'proxy-authenticate': true,
  'set-cookie': true,
  cookie: true,
  'cache-control': true,
  expires: true,
  age: true,
  date: true,
  location: true,
  'retry-after': true,
  vary: true,
  expect: true,
  range: true,
  'max-forwards': true,
});

/** The trailer fields that may be relayed, or null when none may. */
export function relayableTrailers(src: IncomingHttpHeaders): OutgoingHttpHeaders | null {
  let out: OutgoingHttpHeaders | null = null;
  for (const name in src) {
    if (name.charCodeAt(0) === 58 /* : */ || FORBIDDEN[name] === true) continue;
    const v = src[name];
    if (v === undefined) continue;
    out ??= Object.create(null) as OutgoingHttpHeaders;
    out[name] = v;
  }
  return out;
}

/**
 * Relays the trailers of an HTTP/2 upstream body (core/contracts/upstream.ts BODY_TRAILERS) to an HTTP/2 client:
 * node:http2's response sends what addTrailers collected when it ends (trailers that arrive before the head is
 * written wait for it). A field it refuses is dropped.
 */
export function relayTrailers(body: Readable & TrailerCarrier, res: ServerResponse): void {
  const relay = (trailers: IncomingHttpHeaders): void => {
    const fields = relayableTrailers(trailers);
    if (fields !== null) addTrailers(res, fields);
  };
  const already = body[BODY_TRAILERS];
  if (already !== undefined) relay(already);
  else body.once('trailers', relay);
}

/** res.addTrailers field by field, so that one value node:http2 refuses does not cost the others. */
export function addTrailers(res: ServerResponse, fields: OutgoingHttpHeaders): void {
  const r = res as ServerResponse & { addTrailers(h: OutgoingHttpHeaders): void };
  for (const name in fields) {
    try {
      r.addTrailers({ [name]: fields[name] });
    } catch {
      // a value node refuses (control bytes): dropped
    }
  }
}
