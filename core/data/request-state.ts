import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { ErrorCode } from '../base/errors.js';
import { EMPTY_PARAMS } from '../contracts/router.js';
import type { ServerRequest, ServerResponse } from '../contracts/server.js';
import { normalizeIp, type TrustedProxies } from '../proxy/trust.js';
import type { RequestContext } from './context.js';
import { HookWait } from './hook-wait.js';

/** What a route's handler produces; postHandler hooks may change any of it before it is sent. */
export type ResponseBody = Buffer | string | Readable | null;

/**
 * Per-request state, pooled (variants/pool/), read and written by the core directly. Plugins never get this object:
 * they get its RequestContext (core/data/context.ts), a per-request handle that lets go of the state when the request
 * finishes, so a handle a plugin keeps cannot reach the request that reuses the state. Every field is initialised
 * in the constructor and cleared in reset(), so all states share one hidden class and the hot path stays monomorphic.
 */
export class RequestState {
  /** the request as the server engine hands it over (node:http's IncomingMessage on the node-http engine) */
  req: ServerRequest | null = null;
  res: ServerResponse | null = null;
  /** request method as received */
  method = '';
  /** raw request target (path + query) as received */
  url = '';
  /** decoded route params; replaced by the router's object on a match */
  params: Record<string, string> = EMPTY_PARAMS;
  /** the matched route (core's compiled route object), or null before/without a match */
  route: unknown = null;
  /** performance.now() when the request arrived */
  startTime = 0;
  /** response staged by the handler and hooks, sent by the core */
  statusCode = 200;
  responseHeaders: OutgoingHttpHeaders | null = null;
  body: ResponseBody = null;
  /**
   * Headers hooks add to whatever answer goes out (flat name, value pairs, lower-case names), merged under
   * responseHeaders when the core sends. Cheaper than res.setHeader, after which node:http's writeHead re-sets
   * every header one by one.
   */
  extraHeaders: string[] = NO_EXTRA_HEADERS;
  /**
   * Request headers the gateway vouches for to the upstream (flat name, value pairs, lower-case names): written
   * after the client's hop-by-hop fields are removed, so a client's `Connection: x-name` cannot strip them, and
   * over any field of the same name the client sent. See setUpstreamHeader.
   */
  upstreamHeaders: string[] = NO_EXTRA_HEADERS;
  /** the error that sent this request down the onError path */
  error: unknown = null;
  /**
   * The catalogue code (docs/errors.md) of the gateway's own error answer to this request: a refusal, a proxy
   * failure, a plugin that threw; null while there is none, and for any answer a plugin or an upstream chose.
   */
  errorCode: ErrorCode | null = null;
  /** the authenticated identity, set by auth plugins and read by others (e.g. rate limiting by subject) */
  identity: Record<string, unknown> | null = null;
  /** free-form per-request state for plugins, keyed by plugin name; allocated lazily */
  private pluginState: Map<string, unknown> | null = null;
  /** true while the request is a WebSocket/upgrade request (no ServerResponse; see `socket`) */
  upgrade = false;
  /** an upgrade's client socket: the pipeline hands it to the upstream or writes its refusal on it raw */
  socket: Duplex | null = null;
  /** an upgrade's first bytes after the request head (Node's `head`), forwarded once the tunnel is up */
  upgradeHead: Buffer | null = null;
  /**
   * The id the request-id plugin assigned (or accepted from the client), '' without it: read by the access log,
   * which must not go through the plugin state map.
   */
  requestId = '';
  /**
   * The answer must reach the client piece by piece as its body is produced (an upstream's `X-Accel-Buffering: no`,
   * or a handler that sets it): body-transforming plugins flush each chunk instead of filling their buffers first.
   */
  unbuffered = false;
  /*
   * What the proxy learnt of the upstream exchange that answered (its last attempt), for the access log.
   */
  /** the target's URL, '' when no upstream answered */
  upstreamTarget = '';
  /** performance.now() when the request went to the upstream, 0 when none did */
  upstreamSentAt = 0;
  /** ms from sending the request to the upstream's response head */
  upstreamFirstByteMs = 0;
  /** ms spent opening the connection (0 on a reused one), -1 when the upstream client cannot tell */
  upstreamConnectMs = -1;
  /**
   * The server's `trustedProxies` of the runtime serving this request (set before the first hook runs), so
   * that every plugin resolves the client address the same way the proxy's X-Forwarded-For does.
   */
  trustedProxies: TrustedProxies | null = null;
  /** memo of `clientIp` ('' until first asked): resolving walks X-Forwarded-For, once per request is enough */
  private resolvedClientIp = '';
  /** @internal the pipeline's wait on plugin code (server.hookTimeoutMs); not plugin API */
  readonly hookWait = new HookWait();
  /** @internal what plugins are handed for this request (core/data/context.ts), made when the first plugin code runs */
  handle: RequestContext | null = null;

  /** Stage a complete response (status, headers, body). Hooks call this to answer early (e.g. 401, 429). */
  send(statusCode: number, headers: OutgoingHttpHeaders | null, body: ResponseBody): void {
    this.statusCode = statusCode;
    this.responseHeaders = headers;
    this.body = body;
    this.halted = true;
  }

  /** set by send(): the pipeline skips the remaining pre-send stages and sends what is staged */
  halted = false;

  /** Add a header to the response, whatever it turns out to be (the staged response's own headers win). */
  addResponseHeader(name: string, value: string): void {
    if (this.extraHeaders === NO_EXTRA_HEADERS) this.extraHeaders = [];
    this.extraHeaders.push(name, value);
  }

  /**
   * Set a request header for the upstream that the gateway vouches for (an identity, a request id): it replaces
   * any same-named field from the client and survives the hop-by-hop removal. Also set on `req.headers`, so
   * hooks that run later read the same value.
   */
  setUpstreamHeader(name: string, value: string): void {
    const lower = name.toLowerCase();
    if (this.upstreamHeaders === NO_EXTRA_HEADERS) this.upstreamHeaders = [];
    const list = this.upstreamHeaders;
    let i = 0;
    while (i < list.length && list[i] !== lower) i += 2;
    list[i] = lower;
    list[i + 1] = value;
    if (this.req !== null) this.req.headers[lower] = value;
  }

  get(name: string): unknown {
    return this.pluginState === null ? undefined : this.pluginState.get(name);
  }

  set(name: string, value: unknown): void {
    if (this.pluginState === null) this.pluginState = new Map();
    this.pluginState.set(name, value);
  }

  /**
   * The client's address: the socket peer, or, when the peer is one of `server.trustedProxies`, the right-most
   * X-Forwarded-For entry that is not itself a trusted proxy. Computed on first use, then remembered for the
   * request (not for the connection: a trusted proxy's keep-alive connection carries many clients).
   */
  get clientIp(): string {
    let ip = this.resolvedClientIp;
    if (ip === '') {
      const peer = this.peerIp;
      const trust = this.trustedProxies;
      if (trust === null || trust.empty) ip = peer;
      else {
        const xff = this.req!.headers['x-forwarded-for'];
        ip = trust.clientIp(peer, xff === undefined ? undefined : typeof xff === 'string' ? xff : (xff as string[]).join(','));
      }
      this.resolvedClientIp = ip;
    }
    return ip;
  }

  /** The socket peer's address (IPv4-mapped IPv6 as plain IPv4), whatever any forwarding header says. */
  get peerIp(): string {
    const req = this.req;
    return req === null ? '' : normalizeIp(req.socket.remoteAddress ?? '');
  }

  /** Whether the socket peer is one of `server.trustedProxies` (so clientIp may come from X-Forwarded-For). */
  get peerIsTrustedProxy(): boolean {
    const trust = this.trustedProxies;
    return trust !== null && !trust.empty && trust.trusts(this.peerIp);
  }

  /**
   * A request header by name (lower-case), as every server engine parsed it; a repeated header comes joined the
   * way node:http joins it (`, `; `cookie` with `; `), undefined when absent. Prefer this to `ctx.req.headers`.
   */
  header(name: string): string | undefined {
    const v = this.req?.headers[name];
    return v === undefined ? undefined : typeof v === 'string' ? v : v.join(', ');
  }

  /** Every request header (lower-case names), engine-neutral; empty for a context without a request. */
  get requestHeaders(): IncomingHttpHeaders {
    return this.req?.headers ?? NO_HEADERS;
  }

  /** The request's HTTP version as sent: '1.0', '1.1' or '2.0'. */
  get httpVersion(): string {
    return this.req?.httpVersion ?? '';
  }

  /** Whether the client connection is TLS (HTTPS or h2), whatever the engine. */
  get secure(): boolean {
    const socket = this.req?.socket as TLSSocket | undefined;
    return socket !== undefined && socket.encrypted === true;
  }

  /**
   * The request body as a stream (read it, pipe it, or leave it to the proxy), or null when the request
   * announces none (no Transfer-Encoding and no Content-Length above 0). Reading it is what sends a deferred
   * `100 Continue`, on every engine.
   */
  get requestBody(): Readable | null {
    const req = this.req;
    if (req === null) return null;
    const h = req.headers;
    if (h['transfer-encoding'] !== undefined) return req;
    const cl = h['content-length'];
    return cl !== undefined && cl !== '0' ? req : null;
  }

  /** Path without the query string. */
  get pathname(): string {
    const q = this.url.indexOf('?');
    return q === -1 ? this.url : this.url.slice(0, q);
  }

  /** Query string without the leading '?', or '' (parsed lazily, only by those who ask). */
  get search(): string {
    const q = this.url.indexOf('?');
    return q === -1 ? '' : this.url.slice(q + 1);
  }

  reset(): void {
    this.req = null;
    this.res = null;
    this.method = '';
    this.url = '';
    this.params = EMPTY_PARAMS;
    this.route = null;
    this.startTime = 0;
    this.statusCode = 200;
    this.responseHeaders = null;
    this.extraHeaders = NO_EXTRA_HEADERS;
    this.upstreamHeaders = NO_EXTRA_HEADERS;
    this.body = null;
    this.error = null;
    this.errorCode = null;
    this.identity = null;
    this.pluginState = null;
    this.upgrade = false;
    this.socket = null;
    this.upgradeHead = null;
    this.requestId = '';
    this.unbuffered = false;
    this.upstreamTarget = '';
    this.upstreamSentAt = 0;
    this.upstreamFirstByteMs = 0;
    this.upstreamConnectMs = -1;
    this.trustedProxies = null;
    this.resolvedClientIp = '';
    this.halted = false;
    this.hookWait.reset();
    this.handle = null;
  }
}

export function createRequestState(): RequestState {
  return new RequestState();
}

export function resetRequestState(ctx: RequestState): void {
  ctx.reset();
}
/** the headers of a context without a request (frozen: never written) */
const NO_HEADERS: IncomingHttpHeaders = Object.freeze(Object.create(null) as IncomingHttpHeaders);

/** shared until a hook adds a header: no array per request for the common case (never mutated: frozen) */
const NO_EXTRA_HEADERS: string[] = Object.freeze([]) as unknown as string[];
