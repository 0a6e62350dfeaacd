import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import http2, { type ServerHttp2Stream } from 'node:http2';

/**
 * Node's HTTP/2 compat classes, subclassed per listener so the protocol-blind pipeline sees what it sees on
 * HTTP/1.1 (see ../node-http/protocols.ts for the list of gaps closed). Both engines' HTTP/2 servers install the
 * h2 pair (./h2-sessions.ts); GatewayTlsH1Response is node-http's HTTPS/1.1 response (HSTS).
 */

/** RFC 9113 §8.2.2: fields that must not appear in an HTTP/2 message (Node throws on them). */
const CONNECTION_SPECIFIC: Record<string, true> = Object.assign(Object.create(null) as Record<string, true>, {
  connection: true,
  'keep-alive': true,
  'proxy-connection': true,
  'transfer-encoding': true,
  upgrade: true,
  'http2-settings': true,
  te: true,
});

function hasConnectionSpecific(h: OutgoingHttpHeaders): boolean {
  // Seven lookups instead of a key walk: the common case (none present) must stay cheap.
  return (
    h.connection !== undefined ||
    h['keep-alive'] !== undefined ||
    h['transfer-encoding'] !== undefined ||
    h.upgrade !== undefined ||
    h['proxy-connection'] !== undefined ||
    h.te !== undefined ||
    h['http2-settings'] !== undefined
  );
}

function withoutConnectionSpecific(h: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in h) {
    if (CONNECTION_SPECIFIC[name.toLowerCase()] === true) continue;
    out[name] = h[name];
  }
  return out;
}

/** HTTP/2 request headers as the pipeline expects them: no pseudo-headers, `:authority` as Host (RFC 9113 §8.3.1). */
export function normalizeH2Headers(src: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = Object.create(null) as IncomingHttpHeaders;
  for (const name in src) {
    if (name.charCodeAt(0) === 58 /* : */) continue;
    out[name] = src[name];
  }
  // :authority wins over a Host field: the authority is what TLS (SNI) and routing saw.
  const authority = src[':authority'];
  if (typeof authority === 'string' && authority !== '') out.host = authority;
  return out;
}

/** Listener state a hot reload may change without a restart; read per response / per reset. */
export interface ListenerState {
  hsts: string | null;
  maxResets: number;
  resetWindowMs: number;
}

/** Streams the gateway reset itself (broken upstream body): not the client's doing, not counted as rapid reset. */
export const serverResets = new WeakSet<ServerHttp2Stream>();

type AnyFn = (...args: any[]) => any; // eslint-disable-line @typescript-eslint/no-explicit-any
const NORMALIZED = Symbol('normalizedHeaders');

/**
 * Per-listener subclasses of Node's compat classes. The overrides are installed on the prototypes because
 * @types/node declares `headers`/`destroyed` as fields and narrows writeHead's overloads per class.
 */
export function compatClasses(state: ListenerState) {
  class GatewayH2Request extends http2.Http2ServerRequest {}
  class GatewayH2Response extends http2.Http2ServerResponse {}
  class GatewayTlsH1Response extends http.ServerResponse {}

  const baseHeaders = Object.getOwnPropertyDescriptor(http2.Http2ServerRequest.prototype, 'headers')!.get!;
  // Copied once per HTTP/2 request, lazily; plugins that edit req.headers edit this copy, which persists.
  Object.defineProperty(GatewayH2Request.prototype, 'headers', {
    configurable: true,
    get(this: http2.Http2ServerRequest & { [NORMALIZED]?: IncomingHttpHeaders }): IncomingHttpHeaders {
      let h = this[NORMALIZED];
      if (h === undefined) {
        h = normalizeH2Headers(baseHeaders.call(this) as IncomingHttpHeaders);
        // HTTP/2 frames the body itself (no Content-Length needed). The pipeline and the HTTP/1.1 upstream
        // detect a body from the HTTP/1.1 framing fields, so a body of unannounced length reads as chunked.
        if (!this.stream.endAfterHeaders && h['content-length'] === undefined) h['transfer-encoding'] = 'chunked';
        this[NORMALIZED] = h;
      }
      return h;
    },
  });

  const h2 = http2.Http2ServerResponse.prototype as unknown as Record<string, AnyFn>;
  const r2 = GatewayH2Response.prototype as unknown as Record<string, AnyFn>;
  Object.defineProperty(GatewayH2Response.prototype, 'destroyed', {
    configurable: true,
    get(this: http2.Http2ServerResponse): boolean {
      return this.stream.destroyed;
    },
  });
  r2.setHeader = function setHeader(this: http2.Http2ServerResponse, name: string, value: unknown): unknown {
    if (CONNECTION_SPECIFIC[name.toLowerCase()] === true) return this;
    return h2.setHeader!.call(this, name, value);
  };
  r2.writeHead = function writeHead(this: http2.Http2ServerResponse, statusCode: number, a?: unknown, b?: unknown): unknown {
    let headers = (typeof a === 'object' && a !== null ? a : b) as OutgoingHttpHeaders | undefined;
    if (state.hsts !== null && !this.headersSent) h2.setHeader!.call(this, 'strict-transport-security', state.hsts);
    if (headers !== undefined && !Array.isArray(headers) && hasConnectionSpecific(headers)) headers = withoutConnectionSpecific(headers);
    return headers === undefined ? h2.writeHead!.call(this, statusCode) : h2.writeHead!.call(this, statusCode, headers);
  };
  r2.destroy = function destroy(this: http2.Http2ServerResponse, err?: Error): unknown {
    serverResets.add(this.stream);
    return h2.destroy!.call(this, err);
  };

  const h1 = http.ServerResponse.prototype as unknown as Record<string, AnyFn>;
  (GatewayTlsH1Response.prototype as unknown as Record<string, AnyFn>).writeHead = function writeHead(
    this: http.ServerResponse,
    statusCode: number,
    a?: unknown,
    b?: unknown,
  ): unknown {
    if (state.hsts !== null && !this.headersSent) this.setHeader('strict-transport-security', state.hsts);
    return h1.writeHead!.call(this, statusCode, a, b);
  };

  return { GatewayH2Request, GatewayH2Response, GatewayTlsH1Response };
}

export type CompatClasses = ReturnType<typeof compatClasses>;
