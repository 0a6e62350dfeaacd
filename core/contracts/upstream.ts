import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import type { ErrorCode } from '../base/errors.js';

/**
 * The upstream contract: the client interface every upstream variant implements. One client per target
 * (origin), pooling keep-alive connections to it. Variants live in variants/upstream/<name>/index.ts, each exporting `createUpstreamClient: UpstreamClientFactory`.
 *
 * Contract every variant keeps:
 * - `request` resolves as soon as the response headers arrived; the body is streamed, never buffered. A variant
 *   may hand over a Buffer instead of a stream when the complete body had already arrived with the head (nothing
 *   is waited for): the response is then over and its connection already back in the pool.
 * - Destroying `response.body` before its end aborts the upstream request, and that connection is NOT reused.
 * - If the upstream dies mid-body, `response.body` errors (it never ends cleanly on a truncated body).
 * - A request that fails on a reused keep-alive connection before any response byte (the upstream closed the idle
 *   socket as we wrote to it) is retried once on a fresh connection when it is idempotent and has no body.
 * - Every failure before response headers rejects with an UpstreamClientError of a known `kind`.
 * - While a request waits for its response headers the client sets `options.abort`; calling it aborts the
 *   request (rejecting with kind 'aborted'). The client resets it to null once the request settles. (A plain
 *   hook instead of an AbortSignal: AbortController/EventTarget cost measurable CPU per proxied request.)
 */
export interface UpstreamRequestOptions {
  method: string;
  /** origin-form path + query, already normalised by the proxy */
  path: string;
  /** hop-by-hop-free headers, Host included */
  headers: Record<string, string | string[]>;
  /** request body to stream (the client's IncomingMessage), or null when the request has none */
  body: Readable | null;
  /** request sent → response headers */
  headersTimeoutMs: number;
  /** longest silence on the response body */
  idleTimeoutMs: number;
  /** set by the client while waiting for response headers; see the contract above */
  abort: (() => void) | null;
  /**
   * Trailer fields to send after a chunked request body: the client calls it once, when the body has ended,
   * and gets name, value pairs (already filtered by the proxy, core/proxy/trailers.ts) or null for none. null
   * (or absent): nothing to send. Only passed to a client whose `sendsRequestTrailers` is true.
   */
  trailers?: (() => string[] | null) | null;
}

export interface UpstreamResponse {
  statusCode: number;
  /** lower-cased names; repeated headers joined as Node does (set-cookie stays an array) */
  headers: IncomingHttpHeaders;
  /** the streamed body, or the whole body when it came with the head (see the contract above) */
  body: Readable | Buffer;
  /** ms spent opening the connection this exchange used (0 when it reused a kept-alive one); absent when unknown */
  connectMs?: number;
  /**
   * The trailer fields that followed a chunked body, as name, value pairs as received (unfiltered), or null for
   * none; valid once the streamed body has emitted 'end'. Absent when the variant cannot read them.
   */
  trailers?: () => readonly string[] | null;
}

export interface UpstreamClientOptions {
  connectTimeoutMs: number;
  /** connections per target */
  maxSockets: number;
  /** idle keep-alive connections kept per target (variants that cannot bound it separately ignore it) */
  maxIdleSockets: number;
  /** an idle keep-alive connection is closed after this long */
  idleMs: number;
  /**
   * For an https origin: merged into every tls.connect of this client (the upstream's secure context with its CA
   * and client certificate, `servername` for SNI and the certificate name check, `rejectUnauthorized`,
   * `checkServerIdentity`). Absent: system roots, SNI from the origin's host name. Built by core/proxy/upstream-tls.ts.
   */
  tls?: ConnectionOptions;
}

export interface UpstreamClient {
  request(options: UpstreamRequestOptions): Promise<UpstreamResponse>;
  /** requests in flight (sent, response not finished) */
  readonly inFlight: number;
  /**
   * Whether the client sends request trailer fields (`UpstreamRequestOptions.trailers`) after a chunked body.
   * Absent or false: the proxy drops (and counts) the client's request trailers instead.
   */
  readonly sendsRequestTrailers?: boolean;
  /** close idle connections now, the rest when they finish */
  close(): Promise<void>;
}

export type UpstreamClientFactory = (origin: URL, options: UpstreamClientOptions) => UpstreamClient;

/**
 * connect: connection refused/unreachable; connect-timeout; tls: the TLS handshake failed (certificate not
 * trusted, expired or for another name; the upstream refused our client certificate); headers-timeout: no response headers in time;
 * reset: the connection broke before response headers; aborted: our own signal; protocol: malformed response
 * or invalid request (e.g. a header value Node refuses).
 */
export type UpstreamErrorKind = 'connect' | 'connect-timeout' | 'tls' | 'headers-timeout' | 'reset' | 'aborted' | 'protocol';

/** The catalogue code (core/base/errors.ts) a failure of each kind is answered with. */
export const UPSTREAM_ERROR_CODES: Readonly<Record<UpstreamErrorKind, ErrorCode>> = {
  connect: 'GW_ERR_UPSTREAM_CONNECT',
  'connect-timeout': 'GW_ERR_UPSTREAM_CONNECT_TIMEOUT',
  'headers-timeout': 'GW_ERR_UPSTREAM_TIMEOUT',
  reset: 'GW_ERR_UPSTREAM_RESET',
  // our own signal: the client went away (a timeout is headers-timeout)
  aborted: 'GW_ERR_CLIENT_GONE',
  protocol: 'GW_ERR_UPSTREAM_PROTOCOL',
  tls: 'GW_ERR_UPSTREAM_TLS',
};

export class UpstreamClientError extends Error {
  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'UpstreamClientError';
  }

  get code(): ErrorCode {
    return UPSTREAM_ERROR_CODES[this.kind];
  }
}

/** Idempotent (RFC 9110 §9.2.2) and bodiless: the only requests a client may silently repeat. */
export function isReplayable(method: string, hasBody: boolean): boolean {
  if (hasBody) return false;
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || method === 'TRACE' || method === 'PUT' || method === 'DELETE';
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT']);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);
/** OpenSSL's certificate verification results as Node reports them (the rest start with ERR_SSL_ / ERR_TLS_ / CERT_) */
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'HOSTNAME_MISMATCH',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
]);

/** Map a Node/undici error code raised before response headers to an error kind. */
export function classifyErrorCode(code: string | undefined): UpstreamErrorKind {
  if (code !== undefined) {
    if (CONNECT_CODES.has(code)) return 'connect';
    if (TIMEOUT_CODES.has(code)) return 'connect-timeout';
    if (TLS_VERIFY_CODES.has(code) || code.startsWith('CERT_') || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return 'tls';
    if (code === 'UND_ERR_HEADERS_TIMEOUT') return 'headers-timeout';
    if (code === 'UND_ERR_ABORTED' || code === 'ABORT_ERR') return 'aborted';
    if (
      code === 'HPE_INVALID_CONSTANT' ||
      code.startsWith('HPE_') ||
      code === 'UND_ERR_INVALID_ARG' ||
      code === 'ERR_INVALID_CHAR' ||
      code === 'ERR_INVALID_HTTP_TOKEN'
    ) {
      return 'protocol';
    }
  }
  return 'reset';
}
