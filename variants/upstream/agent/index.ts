import http from 'node:http';
import type { IncomingMessage, ClientRequest } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import {
  UpstreamClientError,
  classifyErrorCode,
  isReplayable,
  type UpstreamClient,
  type UpstreamClientFactory,
  type UpstreamClientOptions,
  type UpstreamRequestOptions,
  type UpstreamResponse,
} from '../../../core/contracts/upstream.js';

function announcesBody(h: http.IncomingHttpHeaders): boolean {
  const cl = h['content-length'];
  return h['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

/** Node's own client: one keep-alive http.Agent per target (LIFO, so idle sockets beyond need age out). */
class AgentUpstreamClient implements UpstreamClient {
  inFlight = 0;
  /** ClientRequest#addTrailers, on a body sent in chunked coding (see attempt) */
  readonly sendsRequestTrailers = true;
  private readonly agent: http.Agent;
  private readonly request_: typeof http.request;
  private readonly hostname: string;
  private readonly port: number;
  /** the upstream's TLS options (secure context, SNI, verification), spread into each https request */
  private readonly tls: https.RequestOptions | undefined;

  constructor(
    origin: URL,
    private readonly opts: UpstreamClientOptions,
  ) {
    const secure = origin.protocol === 'https:';
    const agentOptions: http.AgentOptions = {
      keepAlive: true,
      maxSockets: opts.maxSockets,
      maxFreeSockets: opts.maxIdleSockets,
      // idle keep-alive sockets are destroyed after this long (Node also honours a shorter Keep-Alive hint)
      timeout: opts.idleMs,
      scheduling: 'lifo',
    };
    this.agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.request_ = secure ? https.request : http.request;
    // URL keeps IPv6 literals bracketed; net.connect wants them bare
    this.hostname = origin.hostname.startsWith('[') ? origin.hostname.slice(1, -1) : origin.hostname;
    this.port = origin.port === '' ? (secure ? 443 : 80) : Number(origin.port);
    this.tls = secure ? opts.tls : undefined;
  }

  request(options: UpstreamRequestOptions): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      this.attempt(options, resolve, reject, true);
    });
  }

  private attempt(o: UpstreamRequestOptions, resolve: (r: UpstreamResponse) => void, reject: (e: unknown) => void, mayRetry: boolean): void {
    let req: ClientRequest;
    // A body without a length goes out chunked, whatever the method: node chunks only the methods it expects a
    // body on by default, and sends any other's body (a DELETE's, an OPTIONS') with no framing at all, which
    // the upstream cannot delimit and which has no place for trailers.
    const headers = o.body !== null && o.headers['content-length'] === undefined ? { ...o.headers, 'transfer-encoding': 'chunked' } : o.headers;
    try {
      req = this.request_({
        agent: this.agent,
        hostname: this.hostname,
        port: this.port,
        method: o.method,
        path: o.path,
        headers,
        setHost: false,
        // Strict llhttp refuses what node:http's server would refuse to write (validateHeaderName/Value: control
        // bytes, non-tchar names), so no per-header check is needed here. Pinned to strict so that a process
        // started with --insecure-http-parser cannot let such a head through to res.writeHead (which throws).
        insecureHTTPParser: false,
        ...this.tls,
      });
    } catch (err) {
      // invalid header value/characters: Node throws synchronously
      reject(new UpstreamClientError('protocol', (err as Error).message, err));
      return;
    }
    this.inFlight++;
    let settled = false;
    let finishedCounted = false;
    let connectTimer: NodeJS.Timeout | null = null;
    let response: IncomingMessage | null = null;
    const body = o.body;

    const release = (): void => {
      if (!finishedCounted) {
        finishedCounted = true;
        this.inFlight--;
      }
    };
    const clearTimers = (): void => {
      clearTimeout(headersTimer);
      if (connectTimer !== null) clearTimeout(connectTimer);
      o.abort = null;
    };
    const fail = (err: UpstreamClientError): void => {
      if (settled) return;
      settled = true;
      clearTimers();
      release();
      if (body !== null) body.unpipe(req);
      req.destroy();
      if (mayRetry && err.kind === 'reset' && req.reusedSocket && body === null && isReplayable(o.method, false)) {
        // keep-alive race: the upstream closed this idle socket as we reused it; nothing was received, so repeat once
        this.attempt(o, resolve, reject, false);
        return;
      }
      reject(err);
    };
    const onAbort = (): void => fail(new UpstreamClientError('aborted', 'request aborted'));
    const headersTimer = setTimeout(
      () => fail(new UpstreamClientError('headers-timeout', `no response headers within ${o.headersTimeoutMs} ms`)),
      o.headersTimeoutMs,
    );
    o.abort = onAbort;

    req.on('socket', (socket: Socket) => {
      if (settled || !socket.connecting) return;
      connectTimer = setTimeout(
        () => fail(new UpstreamClientError('connect-timeout', `connect timed out after ${this.opts.connectTimeoutMs} ms`)),
        this.opts.connectTimeoutMs,
      );
      socket.once('connect', () => {
        if (connectTimer !== null) clearTimeout(connectTimer);
        connectTimer = null;
      });
    });
    // stays attached for the request's life: a late error (after headers) must never be unhandled
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) {
        // A parse error in the body (a bad chunk size or trailer) is reported on the request, and the response
        // is only destroyed when its socket closes, a tick later. Destroyed now, a fault that came in the same
        // read as the head is seen before the head is forwarded, and the client gets a 502 (core/data/server.ts).
        // (Junk after a complete response is no reason to drop the response: `complete` keeps it.)
        if (response !== null && !response.complete && !response.destroyed) response.destroy(new UpstreamClientError('protocol', err.message, err));
        return;
      }
      fail(new UpstreamClientError(classifyErrorCode(err.code), err.message, err));
    });
    req.on('response', (res: IncomingMessage) => {
      if (settled) {
        res.destroy();
        return;
      }
      const status = res.statusCode ?? 0;
      // llhttp takes any 3 digits ("000", "099"); node:http's writeHead throws outside 100-999
      if (status < 100 || status > 999) {
        res.destroy();
        fail(new UpstreamClientError('protocol', `invalid upstream status code ${status}`));
        return;
      }
      if (o.method === 'HEAD' || ((status === 204 || status === 304) && announcesBody(res.headers))) {
        // No body is read after this head, so bytes the upstream writes anyway would be parsed as the next
        // request's answer on this pooled socket — another client's (see docs/reliability.md "Bodies where none
        // may be"). A HEAD answer's Content-Length describes the GET body, so no HEAD answer can be trusted.
        // Node closes the socket at the response's end instead of returning it to the agent. (1xx heads need
        // nothing: node parses whatever follows one as the same request's final answer.)
        req.shouldKeepAlive = false;
      }
      settled = true;
      response = res;
      clearTimers();
      // body idle timeout on the socket; the agent resets it to its keep-alive timeout when the socket goes idle,
      // so only touch it when it differs (setTimeout on a socket is not free)
      const sock = res.socket as Socket;
      if (sock.timeout !== o.idleTimeoutMs) sock.setTimeout(o.idleTimeoutMs);
      res.on('timeout', () => res.destroy(new UpstreamClientError('reset', `response body idle for ${o.idleTimeoutMs} ms`)));
      res.once('close', release);
      // only a chunked body can end with a trailer section; node sets rawTrailers before 'end'
      if (res.headers['transfer-encoding'] !== undefined)
        resolve({ statusCode: res.statusCode ?? 502, headers: res.headers, body: res, trailers: () => res.rawTrailers });
      else resolve({ statusCode: res.statusCode ?? 502, headers: res.headers, body: res });
    });

    if (body === null) {
      req.end();
    } else {
      // not pipeline(): an upstream failure must not destroy the client's request (we still answer it with a 502)
      body.on('error', (err) => req.destroy(err));
      const trailers = o.trailers;
      if (trailers != null) {
        // before pipe(): this 'end' listener runs ahead of the one that ends the request
        body.once('end', () => {
          const pairs = trailers();
          if (pairs === null) return;
          const list: Array<[string, string]> = [];
          for (let i = 0; i + 1 < pairs.length; i += 2) list.push([pairs[i]!, pairs[i + 1]!]);
          try {
            req.addTrailers(list);
          } catch (err) {
            // filtered by the proxy already: a field node refuses anyway costs this request, never a bad byte upstream
            req.destroy(err as Error);
          }
        });
      }
      body.pipe(req);
    }
  }

  close(): Promise<void> {
    this.agent.destroy();
    return Promise.resolve();
  }
}

export const createUpstreamClient: UpstreamClientFactory = (origin, options) => new AgentUpstreamClient(origin, options);
