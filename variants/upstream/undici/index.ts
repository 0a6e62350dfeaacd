import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { Pool, errors as undiciErrors } from 'undici';
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

const EMPTY = Buffer.alloc(0);

function noop(): void {}

/** undici 7 Pool per target (undici 8 needs Node 22). */
class UndiciUpstreamClient implements UpstreamClient {
  inFlight = 0;
  private readonly pool: Pool;

  constructor(origin: URL, opts: UpstreamClientOptions) {
    this.pool = new Pool(origin.origin, {
      connections: opts.maxSockets,
      pipelining: 1,
      keepAliveTimeout: opts.idleMs,
      keepAliveMaxTimeout: opts.idleMs,
      connect: origin.protocol === 'https:' && opts.tls !== undefined ? { ...opts.tls, timeout: opts.connectTimeoutMs } : { timeout: opts.connectTimeoutMs },
    });
  }

  async request(o: UpstreamRequestOptions): Promise<UpstreamResponse> {
    this.inFlight++;
    let res;
    try {
      res = await this.send(o, true);
    } catch (err) {
      this.inFlight--;
      throw err;
    }
    const body = res.body;
    body.once('close', () => this.inFlight--);
    const status = res.statusCode;
    if (status === 204 || status === 304 || o.method === 'HEAD') {
      // These answers have no body whatever their head says. undici still holds a 204/304 to its Content-Length
      // and errors the (empty) body stream with a length mismatch, which would turn a valid answer into a broken
      // one; the mismatch also makes undici close that connection, so nothing the upstream writes after the head
      // can reach another request.
      body.on('error', noop);
      body.resume();
      return { statusCode: status, headers: res.headers as IncomingHttpHeaders, body: EMPTY };
    }
    // undici reads the trailer section (res.trailers, filled before the body ends) but cannot send one: its
    // HTTP/1.1 writer ends every chunked request body with a bare last-chunk (client-h1.js), so
    // sendsRequestTrailers stays unset and the proxy drops the client's request trailers
    if (res.headers['transfer-encoding'] !== undefined)
      return { statusCode: status, headers: res.headers as IncomingHttpHeaders, body, trailers: () => trailerPairs(res.trailers) };
    return { statusCode: status, headers: res.headers as IncomingHttpHeaders, body };
  }

  private async send(o: UpstreamRequestOptions, mayRetry: boolean): Promise<Awaited<ReturnType<Pool['request']>>> {
    // undici's own headersTimeout runs on its coarse (~1 s) fast timers: keep an exact one here. The abort
    // signal is a plain EventEmitter (undici accepts one): an AbortController costs measurably more per request.
    const signal = new AbortEmitter();
    const timer = setTimeout(() => signal.abort('headers-timeout'), o.headersTimeoutMs);
    o.abort = () => signal.abort('aborted');
    try {
      return await this.pool.request({
        method: o.method as 'GET',
        path: o.path,
        headers: o.headers,
        body: o.body,
        headersTimeout: 0,
        bodyTimeout: o.idleTimeoutMs,
        signal: signal as unknown as AbortSignal,
      });
    } catch (err) {
      if (signal.why === 'headers-timeout') throw new UpstreamClientError('headers-timeout', `no response headers within ${o.headersTimeoutMs} ms`, err);
      if (signal.why === 'aborted') throw new UpstreamClientError('aborted', 'request aborted', err);
      const kind = errorKind(err);
      if (mayRetry && kind === 'reset' && keepAliveRace(err) && o.body === null && isReplayable(o.method, false)) {
        // keep-alive race: the upstream closed an idle connection as we wrote to it; nothing came back, repeat once
        clearTimeout(timer);
        return this.send(o, false);
      }
      throw new UpstreamClientError(kind, (err as Error).message, err);
    } finally {
      clearTimeout(timer);
      o.abort = null;
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** undici's trailers object (lower-cased names, a repeated name as an array) as name, value pairs. */
function trailerPairs(trailers: Record<string, string | string[] | undefined>): string[] | null {
  let out: string[] | null = null;
  for (const name in trailers) {
    const v = trailers[name];
    if (v === undefined) continue;
    out ??= [];
    if (Array.isArray(v)) for (const x of v) out.push(name, x);
    else out.push(name, v);
  }
  return out;
}

/** The subset of AbortSignal undici uses (`aborted`, `reason`, an 'abort' event), on a cheap EventEmitter. */
class AbortEmitter extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;
  why: 'headers-timeout' | 'aborted' | null = null;

  abort(why: 'headers-timeout' | 'aborted'): void {
    if (this.aborted) return;
    this.aborted = true;
    this.why = why;
    this.reason = new UpstreamClientError(why, why);
    this.emit('abort');
  }
}

function errorKind(err: unknown): UpstreamClientError['kind'] {
  if (err instanceof undiciErrors.InvalidArgumentError) return 'protocol';
  // A malformed answer. undici's HTTPParserError carries no `code`, a Content-Length mismatch has its own, and a
  // status below 100 trips an assert in its parser: all of them would otherwise count as a reset (and be replayed).
  if (err instanceof undiciErrors.HTTPParserError || err instanceof undiciErrors.ResponseContentLengthMismatchError) return 'protocol';
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ERR_ASSERTION' || code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') return 'protocol';
  return classifyErrorCode(code);
}

/**
 * Whether a reset can be the keep-alive race (the upstream closed an idle connection as we reused it), the only
 * failure this client repeats on its own; everything else follows the gateway's retry policy. undici does not
 * say whether the connection was reused: a SocketError carries the socket's byte counts, and a connection that
 * had read nothing at all was a fresh one. An RST (ECONNRESET/EPIPE) carries no such detail and counts as the race.
 */
function keepAliveRace(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNRESET' || code === 'EPIPE') return true;
  if (code !== 'UND_ERR_SOCKET') return false;
  const info = (err as { socket?: { bytesRead?: number } }).socket;
  return info?.bytesRead === undefined || info.bytesRead > 0;
}

export const createUpstreamClient: UpstreamClientFactory = (origin, options) => new UndiciUpstreamClient(origin, options);
