import type { OutgoingHttpHeaders } from 'node:http';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { ServerRequest, ServerResponse } from '../contracts/server.js';
import { BODY_TRAILERS, type TrailerCarrier } from '../contracts/upstream.js';
import { encodeGrpcMessage, grpcStatusOf, superviseCall, type GrpcCall } from './grpc.js';
import { filterTrailers, trailerPairs } from './trailers.js';

/**
 * gRPC-Web (PROTOCOL-WEB.md) from browsers, translated to gRPC toward an HTTP/2 upstream, as Envoy's grpc_web
 * filter does. A browser cannot read HTTP trailers, so the protocol moves them into the body: after the
 * messages comes one frame with flag 0x80 whose payload is the trailer section as `name: value\r\n` lines.
 * `application/grpc-web-text` is the same byte stream in base64 (what the grpc-web client uses for
 * server-streaming calls).
 *
 * Way in: the content type becomes `application/grpc` (its `+proto`/`+json` suffix kept), a -text body is
 * decoded, and the HTTP/2 client adds `te: trailers`. Way back: the messages go through as they come (each
 * chunk base64-encoded on its own for -text, which the protocol allows: padded chunks may be concatenated),
 * then the upstream's trailers, filtered like any relayed trailer, as the trailer frame. Anything else a
 * gRPC-Web client would get (the gateway's own answers, an upstream answering plain HTTP) is a trailers-only
 * answer: HTTP 200 with `grpc-status` and `grpc-message` as headers and no body.
 */

/** Not gRPC-Web, binary (`application/grpc-web[+fmt]`) or base64 (`application/grpc-web-text[+fmt]`). */
export const enum GrpcWebMode {
  None = 0,
  Binary = 1,
  Text = 2,
}

const WEB = 'application/grpc-web';
const WEB_TEXT = 'application/grpc-web-text';

/** The request's gRPC-Web flavour, by its content type (over HTTP/1.1 or HTTP/2 alike). */
export function grpcWebMode(req: ServerRequest): GrpcWebMode {
  const ct = req.headers['content-type'];
  if (typeof ct !== 'string' || !ct.startsWith(WEB)) return GrpcWebMode.None;
  if (ct.startsWith(WEB_TEXT)) return ct.length === WEB_TEXT.length || ct.charCodeAt(WEB_TEXT.length) === 43 /* + */ ? GrpcWebMode.Text : GrpcWebMode.None;
  return ct.length === WEB.length || ct.charCodeAt(WEB.length) === 43 ? GrpcWebMode.Binary : GrpcWebMode.None;
}

export function isGrpcWebRequest(req: ServerRequest): boolean {
  return grpcWebMode(req) !== GrpcWebMode.None;
}

/** The `+fmt` suffix of a gRPC-Web content type ('' for none). */
function formatSuffix(ct: string): string {
  const plus = ct.indexOf('+');
  if (plus < 0) return '';
  const semi = ct.indexOf(';', plus);
  return semi < 0 ? ct.slice(plus) : ct.slice(plus, semi);
}

/**
 * Turns the forwarded request head of a gRPC-Web call into a gRPC one (in place). A decoded -text body has
 * another length, so its content-length goes; the HTTP/2 client frames it.
 */
export function toGrpcRequestHeaders(headers: OutgoingHttpHeaders, mode: GrpcWebMode): void {
  const ct = headers['content-type'] as string;
  headers['content-type'] = 'application/grpc' + formatSuffix(ct);
  if (mode === GrpcWebMode.Text) delete headers['content-length'];
  // the browser's `accept: application/grpc-web…` and `x-grpc-web: 1` describe the hop to the gateway
  delete headers.accept;
  delete headers['x-grpc-web'];
}

/**
 * Decodes a grpc-web-text request body. The client may send padded base64 chunks one after another
 * ("YQ==YWI="), which Buffer's decoder would stop at: every run up to a padded quantum is decoded on its own.
 * Characters outside the base64 alphabet fail the body: the client's connection is closed and the upstream
 * request cancelled, never sent garbled.
 */
export function decodeTextBody(src: Readable, abandon: () => void): Readable {
  let pending = '';
  const decoder = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
      const text = pending + chunk.toString('latin1').replace(/[\r\n\t ]/g, '');
      const whole = text.length - (text.length % 4);
      pending = text.slice(whole);
      const out = decodeQuanta(text.slice(0, whole));
      if (out === null) cb(new Error('grpc-web-text request body is not base64'));
      else cb(null, out);
    },
    flush(cb: TransformCallback): void {
      if (pending.length !== 0) cb(new Error('grpc-web-text request body ends inside a base64 quantum'));
      else cb();
    },
  });
  // a body that cannot be decoded ends the client's exchange (`abandon`): the gateway's client-gone path then
  // cancels the upstream stream, so the service never sees a truncated or garbled message
  decoder.on('error', abandon);
  src.on('error', (err) => decoder.destroy(err));
  return src.pipe(decoder);
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Whole base64 quanta (a multiple of 4 characters), padded ones anywhere; null when not base64. */
function decodeQuanta(text: string): Buffer | null {
  let from = 0;
  const parts: Buffer[] = [];
  while (from < text.length) {
    const pad = text.indexOf('=', from);
    const end = pad < 0 ? text.length : (((pad - from) >> 2) + 1) * 4 + from;
    const run = text.slice(from, end);
    if (!BASE64.test(run)) return null;
    parts.push(Buffer.from(run, 'base64'));
    from = end;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** The gRPC-Web content type answering a request in this mode, with the upstream answer's format suffix. */
function responseContentType(mode: GrpcWebMode, upstreamCt: string): string {
  return (mode === GrpcWebMode.Text ? WEB_TEXT : WEB) + formatSuffix(upstreamCt);
}

/** The trailer frame: flag 0x80, a 4-byte length, the fields as `name: value\r\n` lines (names lower-case). */
export function trailerFrame(fields: OutgoingHttpHeaders): Buffer {
  let text = '';
  for (const name in fields) {
    const v = fields[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) text += `${name}: ${x}\r\n`;
    else text += `${name}: ${String(v)}\r\n`;
  }
  const payload = Buffer.from(text, 'latin1');
  const frame = Buffer.allocUnsafe(5 + payload.length);
  frame[0] = 0x80;
  frame.writeUInt32BE(payload.length, 1);
  payload.copy(frame, 5);
  return frame;
}

/** Staged headers that describe an HTTP body or are the upstream's HTTP/2-only fields. */
const DROPPED_ON_ANSWER = new Set(['content-type', 'content-length', 'content-encoding', 'transfer-encoding', 'etag', 'last-modified', 'trailer']);

function answerHeaders(headers: OutgoingHttpHeaders | undefined, contentType: string): OutgoingHttpHeaders {
  const out = Object.create(null) as OutgoingHttpHeaders;
  if (headers !== undefined) {
    for (const name in headers) {
      const v = headers[name];
      if (v !== undefined && !DROPPED_ON_ANSWER.has(name)) out[name] = v;
    }
  }
  out['content-type'] = contentType;
  return out;
}

/** A gRPC-Web trailers-only answer: the status in the head, no body (how the gateway's own answers go out). */
export function writeGrpcWebTrailersOnly(
  res: ServerResponse,
  mode: GrpcWebMode,
  headers: OutgoingHttpHeaders | undefined,
  status: number,
  message: string,
): void {
  const out = answerHeaders(headers, responseContentType(mode, ''));
  out['grpc-status'] = String(status);
  if (message !== '') out['grpc-message'] = encodeGrpcMessage(message);
  out['content-length'] = '0';
  res.writeHead(200, out);
  res.end();
}

/**
 * The send stage of a gRPC-Web call (the counterpart of grpc.ts's sendGrpc); `done` gets the status to record,
 * as there. An upstream that speaks gRPC-Web itself (an HTTP/1.1 upstream the call went to untranslated) is
 * relayed as it is.
 */
export function sendGrpcWeb(
  call: GrpcCall,
  mode: GrpcWebMode,
  res: ServerResponse,
  headers: OutgoingHttpHeaders | undefined,
  done: (status: number) => void,
): void {
  const body = call.body;
  const ct = headers?.['content-type'];
  const upstreamOk = call.statusCode === 200 && call.errorCode === null && typeof ct === 'string' && ct.startsWith('application/grpc');
  if (!upstreamOk) {
    if (body instanceof Readable) discard(body);
    writeGrpcWebTrailersOnly(res, mode, headers, grpcStatusOf(call.errorCode, call.statusCode), call.errorCode ?? `upstream answered HTTP ${call.statusCode}`);
    done(call.statusCode);
    return;
  }
  if (ct.startsWith(WEB)) {
    relayAsIs(body, res, headers, done);
    return;
  }
  if (!(body instanceof Readable)) {
    // the upstream's trailers-only answer: its status is in its head, and stays there
    const out = answerHeaders(headers, responseContentType(mode, ct));
    out['content-length'] = '0';
    res.writeHead(200, out);
    res.end();
    done(200);
    return;
  }
  streamCall(call, mode, body, res, answerHeaders(headers, responseContentType(mode, ct)), done);
}

/**
 * Relays the messages with backpressure, then the trailer frame. One that ends without a grpc-status, breaks
 * off, or outlives the call's grpc-timeout ends with a trailer frame saying so (INTERNAL, UNAVAILABLE,
 * DEADLINE_EXCEEDED), as gRPC calls do (grpc.ts). A client that leaves cancels the upstream stream.
 */
function streamCall(
  call: GrpcCall,
  mode: GrpcWebMode,
  body: Readable,
  res: ServerResponse,
  headers: OutgoingHttpHeaders,
  done: (status: number) => void,
): void {
  const watch = superviseCall(call, body, res, done);
  const text = mode === GrpcWebMode.Text;
  const write = (chunk: Buffer): boolean => (text ? res.write(chunk.toString('base64'), 'latin1') : res.write(chunk));
  const finish = (fields: OutgoingHttpHeaders): void => {
    if (res.writableEnded || res.destroyed) return;
    write(trailerFrame(fields));
    res.end();
  };
  const fail = ([status, message]: [number, string]): void => finish({ 'grpc-status': String(status), 'grpc-message': encodeGrpcMessage(message) });
  body.on('data', (chunk: Buffer) => {
    if (!write(chunk)) body.pause();
  });
  res.on('drain', () => body.resume());
  body.once('end', () => {
    const received = (body as TrailerCarrier)[BODY_TRAILERS];
    if (received?.['grpc-status'] === undefined) fail(watch.missingStatus());
    // filtered as every relayed trailer section is (trailers.ts): nothing a header could not carry
    else finish(filterTrailers(trailerPairs(received as OutgoingHttpHeaders), undefined, null, []).fields);
  });
  body.once('close', () => {
    if (!body.readableEnded) fail(watch.brokeOff());
  });
  res.writeHead(200, headers);
}

function relayAsIs(body: unknown, res: ServerResponse, headers: OutgoingHttpHeaders | undefined, done: (status: number) => void): void {
  res.writeHead(200, headers);
  if (!(body instanceof Readable)) {
    if (body === null) res.end();
    else res.end(body as Buffer | string);
    done(200);
    return;
  }
  body.once('error', noop);
  body.once('close', () => {
    if (!body.readableEnded && !res.destroyed) res.destroy();
  });
  res.once('close', () => {
    if (!body.destroyed) body.destroy();
    done(res.writableFinished ? 200 : 499);
  });
  body.pipe(res);
}

function noop(): void {}

function discard(body: Readable): void {
  body.on('error', noop);
  body.destroy();
}
