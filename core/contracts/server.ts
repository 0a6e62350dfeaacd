import type { IncomingHttpHeaders, OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import type { ServerConfig } from '../config/types.js';

/** The server section of the config, as the engines read it. */
export type { ServerConfig };

/**
 * The server contract: the HTTP/1.1 engine every `server` variant implements (variants/server/<name>/index.ts,
 * each exporting `createServerEngine: ServerEngineFactory`). The engine owns the listening socket, the bytes of
 * every connection and their framing; the pipeline (core/data/pipeline.ts) sees only parsed requests and a
 * response object to write to. HTTP/2 is not an engine's business: the listener kinds `h2` (ALPN) and `h2c`
 * run on node:http2, with the session bookkeeping both engines share (variants/server/shared/h2-sessions.ts):
 * node-http on node's own secure/h2c servers, own by handing a socket that negotiated `h2` (or, for h2c, every
 * socket) to a non-listening node:http2 server.
 *
 * Contract every engine keeps (test/server/common.case.ts checks each point against every engine):
 * - `request` is called once per request, in arrival order; answers go out in that order (pipelining), and a
 *   later pipelined request is never answered before an earlier one.
 * - A request the engine cannot parse never reaches `request`: the engine answers it itself (400, 413, 414, 431,
 *   501, 505, or 408 on a header/request timeout) with `rawErrorResponse` (core/data/limits.ts) and closes the
 *   connection, after the answers to the complete requests before it.
 * - `Expect: 100-continue`: `100 Continue` goes out when something first reads the body (a 'data' or
 *   'readable' listener, `resume()`, `pipe()`), never once the final answer's head has been written.
 * - The request body is a Readable with backpressure: a consumer that stops reading stops the socket reading.
 * - CONNECT is answered 405 by the engine; an upgrade (Upgrade + Connection: upgrade) goes to `upgrade` with
 *   the socket and the bytes read past the head, and the engine no longer touches that socket.
 * - `headersTimeoutMs`, `requestTimeoutMs`, `keepAliveTimeoutMs` and `maxHeaderSize` of ServerConfig mean what
 *   node:http means by them.
 * - Writing a header name or value node:http would refuse throws (node:http's own error codes), before any byte
 *   of that answer is on the wire, so the pipeline can still answer 500/502 instead.
 */

/** The request the pipeline and plugins see. node:http's IncomingMessage satisfies it as it is. */
export interface ServerRequest extends Readable {
  method?: string | undefined;
  /** the request-target as received */
  url?: string | undefined;
  /** lower-cased names; repeats joined as node:http joins them (set-cookie an array, a second Host dropped) */
  headers: IncomingHttpHeaders;
  /** name, value, name, value... as received */
  rawHeaders: string[];
  httpVersion: string;
  httpVersionMajor: number;
  httpVersionMinor: number;
  /** the connection: a net.Socket, or a tls.TLSSocket on an HTTPS listener */
  readonly socket: Socket;
  /** the whole body has been received */
  complete: boolean;
  /** trailer fields after a chunked (or HTTP/2) body, name, value, ... as received; set before 'end' */
  rawTrailers?: string[];
}

/** The response the pipeline and plugins write to. node:http's ServerResponse satisfies it as it is. */
export interface ServerResponse extends NodeJS.WritableStream {
  statusCode: number;
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  readonly writableFinished: boolean;
  writeHead(statusCode: number, headers?: OutgoingHttpHeaders | OutgoingHttpHeader[]): this;
  setHeader(name: string, value: number | string | readonly string[]): this;
  getHeader(name: string): number | string | string[] | undefined;
  getHeaderNames(): string[];
  hasHeader(name: string): boolean;
  removeHeader(name: string): void;
  /** sends `HTTP/1.1 100 Continue` now */
  writeContinue(): void;
  /**
   * Trailer fields to send after the body (node's addTrailers: one field line per array element). Sent only
   * when the body goes out in chunked coding (HTTP/1.1) or on HTTP/2; otherwise silently not sent, as node does.
   */
  addTrailers?(headers: OutgoingHttpHeaders): void;
  /** cuts the connection (a partial answer must not look complete) */
  destroy(error?: Error): this;
}

/** What an engine calls; GatewayServer (core/data/server.ts) supplies them. */
export interface ServerEngineHandlers {
  request(req: ServerRequest, res: ServerResponse): void;
  /** an upgrade request: from here on the socket belongs to the handler */
  upgrade(req: ServerRequest, socket: Duplex, head: Buffer): void;
  /**
   * Every accepted TCP connection (the raw socket, before TLS), before any byte of it is parsed. Returning false
   * refuses it: the handler has already answered or destroyed the socket, and the engine must not read from it.
   */
  connection(socket: Socket): boolean;
}

/** cleartext HTTP/1.1, HTTPS/1.1, TLS with ALPN h2 + http/1.1, cleartext h2 (prior knowledge) */
export type ListenerKind = 'http' | 'https' | 'h2' | 'h2c';

/** Counters every engine keeps (exported under /stats → tls, and Prometheus); HTTP/2 ones stay 0 without it. */
export interface ServerEngineStats {
  /** failed TLS handshakes ('tlsClientError': bad version/cipher, unknown CA on the client side, garbage) */
  tlsHandshakeErrors: number;
  h2Sessions: number;
  h2ActiveSessions: number;
  /** streams the client reset before the gateway finished answering */
  h2ClientResets: number;
  /** sessions closed by the rapid-reset guard (GOAWAY ENHANCE_YOUR_CALM) */
  h2RapidResetCloses: number;
  /**
   * exceptions thrown by a handler (`request`, `upgrade`) that the engine caught and answered by cutting the
   * connection (or the HTTP/2 stream); 0 on an engine without such a path (node-http: a throw is uncaught)
   */
  handlerErrors: number;
}

/** What a hot reload of the listener settings needs: errors (reload rejected) or a commit to run at the swap. */
export interface ListenerReload {
  errors: string[];
  /** notes for the log: settings that need a restart and were kept */
  kept: string[];
  commit(): void;
}

export interface ServerEngine {
  /** the variant's name, as selected by `variants.server` */
  readonly name: string;
  readonly kind: ListenerKind;
  /** the listening server; GatewayServer calls listen() and close() on it */
  readonly listener: NetServer;
  /** loads what a new config needs without touching the live listener; commit() swaps it in */
  prepareReload(next: ServerConfig): ListenerReload;
  /** drain step: close keep-alive connections with no request in progress (and GOAWAY HTTP/2 sessions) */
  closeIdle(): void;
  /** drain deadline passed: cut every connection */
  closeAll(): void;
  stats(): ServerEngineStats;
}

export type ServerEngineFactory = (config: ServerConfig, handlers: ServerEngineHandlers) => ServerEngine;
