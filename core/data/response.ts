import { STATUS_CODES, type OutgoingHttpHeaders } from 'node:http';
import { Readable, type Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { ERROR_CATALOGUE, errorBody, errorHeaders, type ErrorCode } from '../base/errors.js';
import { rawHead } from '../base/raw-http.js';
import type { ServerRequest, ServerResponse } from '../contracts/server.js';
import type { GatewayMetrics, RouteMetrics } from '../observe/metrics.js';
import { grpcWebMode, GrpcWebMode, sendGrpcWeb, writeGrpcWebTrailersOnly } from '../proxy/grpc-web.js';
import { grpcStatusOf, isGrpcRequest, sendGrpc, writeTrailersOnly } from '../proxy/grpc.js';
import type { RequestState } from './request-state.js';
import { ONE_WRITE_MAX, RouteKind, type CompiledRoute, type GatewayRuntime } from './runtime.js';

/**
 * Response writing: what goes on the wire, and nothing about which stage comes next. Every function here either
 * writes or throws what node:http throws (a status or header it refuses, a body of the wrong type); the pipeline
 * (core/data/pipeline.ts) decides what a failure costs.
 */

/**
 * A whole answer known up front (not a stream): the static fast path and send() both end here, so the two can
 * never disagree on how a body is handed to node:http. `bodyText` is the body's precomputed latin1 text (a static
 * route's), or null.
 */
export function writeStatic(
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders | undefined,
  body: Buffer | string | null,
  bodyText: string | null,
  isHead: boolean,
): void {
  res.writeHead(status, headers);
  if (isHead || body === null) res.end();
  else if (bodyText !== null) res.end(bodyText, 'latin1');
  // a small buffer as latin1 (byte for byte): node:http joins it to the head in one chunk (see ONE_WRITE_MAX)
  else if (Buffer.isBuffer(body) && body.length <= ONE_WRITE_MAX) res.end(body.toString('latin1'), 'latin1');
  else res.end(body);
}

/** The gateway's own JSON error answer (overload, a refused request, an answer that could not be written). */
export function writeError(res: ServerResponse, status: number, extra: Record<string, string> | undefined, isHead: boolean): void {
  const req = (res as { req?: ServerRequest }).req;
  if (req !== undefined && isGrpcRequest(req)) {
    writeTrailersOnly(res, extra, grpcStatusOf(null, status), STATUS_CODES[status] ?? '');
    return;
  }
  const webMode = req === undefined ? GrpcWebMode.None : grpcWebMode(req);
  if (webMode !== GrpcWebMode.None) {
    writeGrpcWebTrailersOnly(res, webMode, extra, grpcStatusOf(null, status), STATUS_CODES[status] ?? '');
    return;
  }
  res.writeHead(status, errorHeaders(status, extra));
  if (isHead) res.end();
  else res.end(errorBody(status));
}

/** Stages the gateway's own error answer for a catalogue code (a refusal, or a broken-off stream). */
export function stageError(ctx: RequestState, code: ErrorCode): void {
  const status = ERROR_CATALOGUE[code].status;
  ctx.statusCode = status;
  ctx.errorCode = code;
  ctx.responseHeaders = errorHeaders(status);
  ctx.body = errorBody(status);
}

/** The staged headers with the hooks' extra headers under them (the staged ones win on a name clash). */
export function headersToSend(ctx: RequestState): OutgoingHttpHeaders | undefined {
  const extra = ctx.extraHeaders;
  if (extra.length === 0) return ctx.responseHeaders ?? undefined;
  const out = Object.create(null) as OutgoingHttpHeaders;
  for (let i = 0; i < extra.length; i += 2) out[extra[i]!] = extra[i + 1];
  const staged = ctx.responseHeaders;
  if (staged !== null) for (const name in staged) out[name] = staged[name];
  return out;
}

/**
 * body → res with backpressure, like stream.pipeline but without its per-call AbortController (which builds a
 * DOMException on every completion in Node 20 and measured as a third of the CPU of a proxied request).
 * A body that fails or closes early must not look like a complete response: the client connection is aborted.
 * A client that goes away destroys the body, which aborts the upstream request.
 */
export function streamBody(body: Readable, res: ServerResponse, done: (failed: boolean) => void): void {
  let settled = false;
  const settle = (failed: boolean): void => {
    if (settled) return;
    settled = true;
    if (failed) {
      if (!res.destroyed) res.destroy();
      if (!body.destroyed) body.destroy();
    }
    done(failed);
  };
  body.once('error', () => settle(true));
  body.once('close', () => {
    if (!body.readableEnded) settle(true);
  });
  res.once('finish', () => settle(false));
  res.once('close', () => {
    if (!res.writableFinished) settle(true);
  });
  body.pipe(res);
}

/** What comes after the send stage: the pipeline (core/data/pipeline.ts) hands itself to the writer. */
export interface AfterSend {
  /** set by drain: answers are marked as the connection's last */
  readonly draining: boolean;
  /** postResponse hooks, then finish. */
  afterSend(ctx: RequestState, rt: GatewayRuntime, route: CompiledRoute | null, m: RouteMetrics, status: number): void;
  /** The request's end: context released, metrics recorded, out of flight (no postResponse: upgrades). */
  finish(ctx: RequestState, rt: GatewayRuntime, status: number, m: RouteMetrics): void;
}

/**
 * The send stage: writes what the pipeline staged and hands the outcome (the status to record) on to `next`.
 * It never throws: what node:http refuses costs this request only (writeFailed).
 */
export class ResponseWriter {
  constructor(
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
    private readonly next: AfterSend,
  ) {}

  /** Writes the staged answer. Never throws: what node:http refuses costs this request only (writeFailed). */
  send(ctx: RequestState, rt: GatewayRuntime, route: CompiledRoute | null): void {
    const metricsRoute = route?.metrics ?? this.metrics.unmatched;
    if (ctx.upgrade) {
      // No postResponse for upgrades (plugins rely on that, e.g. tracing ends its span on the socket's close).
      this.next.finish(ctx, rt, this.sendRaw(ctx, route), metricsRoute);
      return;
    }
    const res = ctx.res!;
    if (res.headersSent || res.destroyed) {
      // a staged stream nobody will read (the client left while hooks ran): release its upstream connection
      if (res.destroyed && ctx.body instanceof Readable && !ctx.body.destroyed) ctx.body.destroy();
      this.next.afterSend(ctx, rt, route, metricsRoute, res.headersSent ? ctx.statusCode : 499);
      return;
    }
    // Draining: requests accepted before the signal still get their answer, marked as the connection's last.
    // (HTTP/2 has no connection header: its drain is the GOAWAY sent when the listener closes.)
    if (this.next.draining && ctx.req!.httpVersionMajor < 2) res.setHeader('connection', 'close');
    if (isGrpcRequest(ctx.req!)) {
      try {
        sendGrpc(ctx, res, headersToSend(ctx), (status) => this.next.afterSend(ctx, rt, route, metricsRoute, status));
      } catch (err) {
        this.writeFailed(ctx, rt, route, metricsRoute, err);
      }
      return;
    }
    const webMode = grpcWebMode(ctx.req!);
    if (webMode !== GrpcWebMode.None) {
      try {
        sendGrpcWeb(ctx, webMode, res, headersToSend(ctx), (status) => this.next.afterSend(ctx, rt, route, metricsRoute, status));
      } catch (err) {
        this.writeFailed(ctx, rt, route, metricsRoute, err);
      }
      return;
    }
    let body = ctx.body;
    const isHead = ctx.method === 'HEAD';
    if (body instanceof Readable && body.destroyed && !body.readableEnded) {
      // the staged body broke off while hooks ran (e.g. the upstream died): nothing is sent yet, so say so
      stageError(ctx, 'GW_ERR_UPSTREAM_BODY');
      body = ctx.body;
    }
    try {
      if (body instanceof Readable) {
        res.writeHead(ctx.statusCode, headersToSend(ctx));
        if (isHead) {
          discardBody(body);
          res.end();
          this.next.afterSend(ctx, rt, route, metricsRoute, ctx.statusCode);
          return;
        }
        streamBody(body, res, (failed) => {
          this.next.afterSend(ctx, rt, route, metricsRoute, failed ? (res.headersSent ? 502 : 499) : ctx.statusCode);
        });
        return;
      }
      if (body !== null && typeof body !== 'string' && !Buffer.isBuffer(body)) throw new TypeError('ctx.body must be a Buffer, a string, a Readable or null');
      // the static route's own body: its latin1 text is precomputed
      const bodyText = route !== null && body === route.body ? route.bodyText : null;
      writeStatic(res, ctx.statusCode, headersToSend(ctx), body, bodyText, isHead);
    } catch (err) {
      this.writeFailed(ctx, rt, route, metricsRoute, err);
      return;
    }
    this.next.afterSend(ctx, rt, route, metricsRoute, ctx.statusCode);
  }

  /** An upgrade's refusal, written raw on its socket; a failure to write it cuts the connection. Returns the status to record. */
  private sendRaw(ctx: RequestState, route: CompiledRoute | null): number {
    const socket = ctx.socket!;
    try {
      return writeRawResponse(socket, ctx);
    } catch (err) {
      this.logger.error({ err, code: 'GW_ERR_RESPONSE_WRITE', url: ctx.url, route: route?.name, status: ctx.statusCode }, 'response could not be written');
      socket.destroy();
      return 502;
    }
  }

  /**
   * The staged answer could not be written. With nothing on the wire yet the client gets a plain 502 (the answer
   * came from an upstream) or 500 (a plugin or handler staged it); once the head is out only cutting this one
   * connection keeps the client from reading a truncated answer as complete. Either way the request is finished
   * (context released, metrics recorded) like any other.
   */
  writeFailed(ctx: RequestState, rt: GatewayRuntime, route: CompiledRoute | null, m: RouteMetrics, err: unknown): void {
    const res = ctx.res!;
    const body = ctx.body;
    if (body instanceof Readable && !body.destroyed) body.destroy();
    // a proxied answer that cannot be relayed is the upstream's fault (502); anything else is the gateway's (500)
    const code: ErrorCode = route !== null && route.kind === RouteKind.Upstream && ctx.error === null ? 'GW_ERR_UPSTREAM_PROTOCOL' : 'GW_ERR_RESPONSE_WRITE';
    const status = ERROR_CATALOGUE[code].status;
    ctx.errorCode = code;
    this.logger.error({ err, code, url: ctx.url, route: route?.name, status: ctx.statusCode }, 'response could not be written');
    let answered = 0;
    if (!res.headersSent && !res.destroyed) {
      try {
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        if (this.next.draining && ctx.req!.httpVersionMajor < 2) res.setHeader('connection', 'close');
        writeError(res, status, undefined, ctx.method === 'HEAD');
        answered = status;
      } catch {
        // nothing more to try: fall through to cutting the connection
      }
    }
    if (answered === 0 && !res.destroyed) res.destroy();
    this.next.afterSend(ctx, rt, route, m, answered === 0 ? 502 : answered);
  }
}

/** A HEAD answer has no body: draining the staged stream (rather than destroying it) keeps its upstream connection reusable. */
export function discardBody(body: Readable): void {
  body.on('error', noop);
  body.resume();
}

function noop(): void {}

/**
 * The staged answer of an upgrade request, written straight to its socket (there is no ServerResponse), and the
 * connection closed. Returns the status written. Nothing here went through node:http's checks, so a status outside
 * 100–999 becomes 500 and a header name or value it would refuse is dropped: either could split the response.
 */
export function writeRawResponse(socket: Duplex, ctx: RequestState): number {
  const body =
    ctx.body === null ? Buffer.alloc(0) : typeof ctx.body === 'string' ? Buffer.from(ctx.body) : ctx.body instanceof Buffer ? ctx.body : Buffer.alloc(0);
  const status = Number.isInteger(ctx.statusCode) && ctx.statusCode >= 100 && ctx.statusCode <= 999 ? ctx.statusCode : 500;
  const head = rawHead(status, STATUS_CODES[status] ?? 'Error', { ...(headersToSend(ctx) ?? {}), 'content-length': String(body.length), connection: 'close' });
  socket.end(Buffer.concat([Buffer.from(head), body]));
  return status;
}
