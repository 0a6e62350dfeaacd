import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { ErrorCode } from '../base/errors.js';
import type { ServerRequest, ServerResponse } from '../contracts/server.js';
import { BODY_TRAILERS, type TrailerCarrier } from '../contracts/upstream.js';

/**
 * gRPC through the gateway (gRPC over HTTP/2, PROTOCOL-HTTP2.md): recognising a call, its deadline, and the send
 * stage of a call. Upstream answers in gRPC are relayed as they are (head, messages with backpressure, trailers);
 * everything else a gRPC client would get (the gateway's own refusals and failures, an upstream answering plain
 * HTTP) becomes a trailers-only answer, a single HEADERS frame with `grpc-status` and `grpc-message`, because a
 * gRPC client cannot read an HTTP body.
 */

/** The gRPC status codes the gateway answers with. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** A gRPC call: HTTP/2 with an application/grpc content type (gRPC-Web is HTTP/1.1-compatible and answered as HTTP). */
export function isGrpcRequest(req: ServerRequest): boolean {
  if (req.httpVersionMajor !== 2) return false;
  const ct = req.headers['content-type'];
  return typeof ct === 'string' && ct.startsWith('application/grpc') && !ct.startsWith('application/grpc-web');
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };

/** The call's `grpc-timeout` (1 to 8 digits and a unit) in ms, or -1 when it has none or an invalid one. */
export function grpcTimeoutMs(headers: IncomingHttpHeaders): number {
  const v = headers['grpc-timeout'];
  if (typeof v !== 'string' || v.length < 2 || v.length > 9) return -1;
  const unit = TIMEOUT_UNIT_MS[v[v.length - 1]!];
  const digits = v.slice(0, -1);
  if (unit === undefined || !/^[0-9]+$/.test(digits)) return -1;
  return Number(digits) * unit;
}

/** The status of the gateway's own answer, by its catalogue code first, else by the HTTP status it staged. */
export function grpcStatusOf(code: ErrorCode | null, status: number): number {
  switch (code) {
    case 'GW_ERR_NO_ROUTE':
    case 'GW_ERR_METHOD_NOT_ALLOWED':
      return GrpcStatus.UNIMPLEMENTED;
    case 'GW_ERR_UPSTREAM_TIMEOUT':
    case 'GW_ERR_HOOK_TIMEOUT':
      return GrpcStatus.DEADLINE_EXCEEDED;
    case 'GW_ERR_UPSTREAM_UNAVAILABLE':
    case 'GW_ERR_UPSTREAM_CONNECT':
    case 'GW_ERR_UPSTREAM_CONNECT_TIMEOUT':
    case 'GW_ERR_UPSTREAM_TLS':
    case 'GW_ERR_UPSTREAM_RESET':
    case 'GW_ERR_UPSTREAM_STATUS':
    case 'GW_ERR_UPSTREAM_BODY':
    case 'GW_ERR_UPSTREAM_UNKNOWN':
    case 'GW_ERR_OVERLOADED':
    case 'GW_ERR_TOO_MANY_CONNECTIONS':
      return GrpcStatus.UNAVAILABLE;
    case 'GW_ERR_UPSTREAM_PROTOCOL':
      return GrpcStatus.INTERNAL;
    case 'GW_ERR_HEADERS_TOO_LARGE':
    case 'GW_ERR_URI_TOO_LONG':
      return GrpcStatus.RESOURCE_EXHAUSTED;
    default:
      break;
  }
  switch (status) {
    case 400:
      return GrpcStatus.INVALID_ARGUMENT;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
    case 405:
    case 501:
      return GrpcStatus.UNIMPLEMENTED;
    case 408:
    case 504:
      return GrpcStatus.DEADLINE_EXCEEDED;
    case 413:
    case 429:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case 499:
      return GrpcStatus.CANCELLED;
    case 500:
      return GrpcStatus.INTERNAL;
    case 502:
    case 503:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** grpc-message is percent-encoded UTF-8: every byte outside printable ASCII, and '%' itself. */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte < 0x20 || byte > 0x7e || byte === 0x25 ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}

/** How far apart the upstream's grpc-timeout timer and the gateway's may fire. */
const DEADLINE_SKEW_MS = 20;

/** Staged headers that describe an HTTP body, meaningless on a trailers-only answer. */
const BODY_FIELDS = new Set(['content-type', 'content-length', 'content-encoding', 'transfer-encoding', 'etag', 'last-modified']);

/**
 * A trailers-only answer: status 200, the given headers and the gRPC status, in one HEADERS frame that ends the
 * stream. (node:http2's compat response sends the head at once on writeHead(); set up field by field, end()
 * sends it with END_STREAM, which is what gRPC clients read as trailers-only.)
 */
export function writeTrailersOnly(res: ServerResponse, headers: OutgoingHttpHeaders | undefined, status: number, message: string): void {
  res.statusCode = 200;
  if (headers !== undefined) {
    for (const name in headers) {
      const v = headers[name];
      if (v !== undefined && !BODY_FIELDS.has(name)) res.setHeader(name, v as string | string[]);
    }
  }
  res.setHeader('content-type', 'application/grpc');
  res.setHeader('grpc-status', String(status));
  if (message !== '') res.setHeader('grpc-message', encodeGrpcMessage(message));
  res.end();
}

/** What the gRPC send stage needs of a request (the pipeline's RequestState satisfies it). */
export interface GrpcCall {
  req: ServerRequest | null;
  statusCode: number;
  errorCode: ErrorCode | null;
  body: unknown;
  /** performance.now() at the request's arrival: the deadline counts from there */
  startTime: number;
}

/**
 * The send stage of a gRPC call. `headers` are the staged headers (hooks' extra headers included); `done` gets the
 * status to record: the staged one (the gateway's own answer keeps the HTTP status that says what happened, so
 * metrics and the access log read as for any request), 499 when the client left first.
 */
export function sendGrpc(call: GrpcCall, res: ServerResponse, headers: OutgoingHttpHeaders | undefined, done: (status: number) => void): void {
  const body = call.body;
  const ct = headers?.['content-type'];
  const upstreamGrpc = call.statusCode === 200 && typeof ct === 'string' && ct.startsWith('application/grpc') && call.errorCode === null;
  if (!upstreamGrpc) {
    if (body instanceof Readable) discard(body);
    const status = grpcStatusOf(call.errorCode, call.statusCode);
    writeTrailersOnly(res, headers, status, call.errorCode ?? `upstream answered HTTP ${call.statusCode}`);
    done(call.statusCode);
    return;
  }
  if (!(body instanceof Readable)) {
    // the upstream's trailers-only answer (its status is in the head): relayed as one frame again
    const len = body === null ? 0 : typeof body === 'string' || Buffer.isBuffer(body) ? body.length : 0;
    if (len === 0) {
      res.statusCode = 200;
      for (const name in headers) res.setHeader(name, headers[name] as string | string[]);
      res.end();
    } else {
      res.writeHead(200, headers);
      res.end(body as Buffer | string);
    }
    done(200);
    return;
  }
  streamCall(call, body, res, headers, done);
}

/**
 * Relays a streamed gRPC answer with backpressure. The upstream's trailers go through (core/proxy/trailers.ts
 * relays them as they arrive); one that ends without a grpc-status, breaks off, or outlives the call's
 * grpc-timeout ends the call with a status (INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED) rather than a reset, so the
 * client learns why. A client that leaves (RST_STREAM) cancels the upstream stream.
 */
function streamCall(call: GrpcCall, body: Readable, res: ServerResponse, headers: OutgoingHttpHeaders | undefined, done: (status: number) => void): void {
  const watch = superviseCall(call, body, res, done);
  // before pipe's own 'end' listener: the status must be added before the response ends
  body.once('end', () => {
    if ((body as TrailerCarrier)[BODY_TRAILERS]?.['grpc-status'] !== undefined) return;
    const [status, message] = watch.missingStatus();
    endWithStatus(res, body, status, message);
  });
  body.once('close', () => {
    if (body.readableEnded || watch.settled()) return;
    if (!res.destroyed && !res.writableEnded) endWithStatus(res, body, ...watch.brokeOff());
  });
  res.writeHead(200, headers);
  body.pipe(res);
}

/** What a relay of a streamed call learns from superviseCall. */
export interface CallWatch {
  /** the call is over (done was called) */
  settled(): boolean;
  /** the status for a body that closed before its end: UNAVAILABLE, or DEADLINE_EXCEEDED once past the deadline */
  brokeOff(): [number, string];
  /** the status for a body that ended without a grpc-status */
  missingStatus(): [number, string];
}

/**
 * The part of relaying a streamed call that does not depend on its wire format (gRPC here, gRPC-Web in
 * ./grpc-web.ts): the call's grpc-timeout (the body is cut at the deadline), the client leaving (the upstream
 * stream is cancelled), and the status recorded (`done`: 200 when the answer finished, 499 when the client left).
 */
export function superviseCall(call: GrpcCall, body: Readable, res: ServerResponse, done: (status: number) => void): CallWatch {
  let settled = false;
  let timer: NodeJS.Timeout | null = null;
  let failure: [number, string] = [GrpcStatus.UNAVAILABLE, 'upstream stream broke off'];
  const limitMs = call.req === null ? -1 : grpcTimeoutMs(call.req.headers);
  const deadline = limitMs < 0 ? -1 : call.startTime + limitMs;
  const settle = (status: number): void => {
    if (settled) return;
    settled = true;
    if (timer !== null) clearTimeout(timer);
    done(status);
  };
  body.once('error', noop);
  res.once('finish', () => settle(200));
  res.once('close', () => {
    if (res.writableFinished) return;
    if (!body.destroyed) body.destroy();
    settle(499);
  });
  if (deadline >= 0) {
    const left = deadline - performance.now();
    timer = setTimeout(
      () => {
        failure = [GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded'];
        body.destroy();
      },
      left > 0 ? left : 0,
    );
  }
  return {
    settled: () => settled,
    brokeOff: () => failure,
    // an upstream enforcing the same grpc-timeout may just stop (grpc-js resets the stream with NO_ERROR): at the
    // deadline (its timer and ours a few ms apart) that is what ended the call
    missingStatus: () =>
      deadline >= 0 && performance.now() >= deadline - DEADLINE_SKEW_MS
        ? [GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded']
        : [GrpcStatus.INTERNAL, 'upstream ended the call without a grpc-status'],
  };
}

/** Ends the call with a status in its trailers (a head not yet written becomes a trailers-only answer). */
function endWithStatus(res: ServerResponse, body: Readable, status: number, message: string): void {
  body.unpipe(res as unknown as NodeJS.WritableStream);
  const r = res as ServerResponse & { addTrailers(h: OutgoingHttpHeaders): void };
  r.addTrailers({ 'grpc-status': String(status), 'grpc-message': encodeGrpcMessage(message) });
  res.end();
}

function noop(): void {}

function discard(body: Readable): void {
  body.on('error', noop);
  body.destroy();
}
