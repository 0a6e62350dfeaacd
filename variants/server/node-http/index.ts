import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { Http2ServerRequest } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { overflowStatus, rawErrorResponse } from '../../../core/base/raw-http.js';
import type { ServerConfig, ServerEngine, ServerEngineFactory, ServerEngineHandlers } from '../../../core/contracts/server.js';
import { continueOnRead, rejectH2Connect } from '../shared/h2-sessions.js';
import { ClientProtocols } from './protocols.js';

/**
 * The node:http engine (the default): Node's llhttp parser, IncomingMessage and ServerResponse, and node:https /
 * node:http2 for the TLS and h2c listeners (./protocols.ts). What it adds to Node is the contract's policy where
 * Node's differs: a late `100 Continue`, and answers to bytes llhttp refuses.
 */
export const createServerEngine: ServerEngineFactory = (config, handlers) => new NodeHttpEngine(config, handlers);

class NodeHttpEngine implements ServerEngine {
  readonly name = 'node-http';
  private readonly protocols: ClientProtocols;

  constructor(
    private config: ServerConfig,
    handlers: ServerEngineHandlers,
  ) {
    this.protocols = new ClientProtocols(config);
    const srv = this.protocols.server;
    srv.on('request', (req: IncomingMessage, res: ServerResponse) => {
      // HTTP/2 streams have no pipelining, and their socket is a proxy that can throw once the session is gone.
      if (req.httpVersionMajor === 2) return handlers.request(req, res);
      const socket = req.socket as ClosingSocket;
      // Node dispatches a pipelined request parsed after an answer that closes the connection (a request the
      // pipeline refused with Connection: close), then throws its answer away: it must not reach an upstream.
      // It is left unanswered; Node closes the socket once the closing answer is out.
      if (socket[kClosing] === true) return;
      handlers.request(req, res);
      if ((res as ServerResponse & { _last?: boolean })._last === true && res.headersSent) socket[kClosing] = true;
    });
    srv.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => handlers.upgrade(req, socket, head));
    // Node attaches its parser in its own 'connection' listener (registered first); a refused socket is paused by
    // the handler before a byte is read, so no request on it reaches the pipeline.
    srv.on('connection', (socket: Socket) => handlers.connection(socket));
    srv.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket));
    srv.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => continueOnRead(req, res, handlers));
    // No route tunnels CONNECT: without a listener Node would drop the socket silently; answer instead.
    srv.on('connect', (req: IncomingMessage, socket: Duplex) => {
      // An HTTP/2 stream's CONNECT comes here as (request, response); an HTTP/1.1 request line claiming
      // HTTP/2.0 (llhttp accepts any digit) comes as (request, socket) and must not be taken for one.
      if (req instanceof Http2ServerRequest) return rejectH2Connect(socket);
      socket.on('error', () => socket.destroy());
      socket.end(rawErrorResponse(405, 'Method Not Allowed'), () => socket.destroy());
    });
  }

  get kind(): ClientProtocols['kind'] {
    return this.protocols.kind;
  }

  get listener(): ClientProtocols['server'] {
    return this.protocols.server;
  }

  prepareReload(next: ServerConfig): ReturnType<ServerEngine['prepareReload']> {
    const reload = this.protocols.prepareReload(next);
    return {
      ...reload,
      commit: () => {
        this.config = next;
        reload.commit();
      },
    };
  }

  closeIdle(): void {
    this.protocols.closeIdle();
  }

  closeAll(): void {
    this.protocols.closeAll();
  }

  stats(): ReturnType<ServerEngine['stats']> {
    return this.protocols.stats;
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    // Node's parser rejected the bytes before any request object existed: answer and close, never forward.
    if (!socket.writable || err.code === 'ECONNRESET' || err.code === 'EPIPE') {
      socket.destroy();
      return;
    }
    const s = socket as HttpSocket;
    // llhttp stays in its error state and reports again on every later packet: answer once.
    if (s[kAnswered] === true) return;
    s[kAnswered] = true;
    socket.pause();
    let status = 400;
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      const e = err as { rawPacket?: unknown; bytesParsed?: unknown };
      status = overflowStatus(e.rawPacket, e.bytesParsed, this.config.maxUrlLength);
    } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') status = 408;
    else if (err.code === 'HPE_URI_TOO_LONG') status = 414;
    const answer = (): void => {
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      socket.end(rawErrorResponse(status, STATUS_CODES[status] ?? 'Bad Request'), () => socket.destroy());
    };
    const current = s._httpMessage;
    if (current === null || current === undefined) {
      answer();
      return;
    }
    const incoming = s.parser?.incoming;
    if (incoming !== null && incoming !== undefined && !incoming.complete) {
      // The bad bytes are the body of a request being answered (or a slow POST timed out): that exchange cannot
      // complete. A status line after a started response would corrupt it, so then the connection is just cut.
      if (current.headersSent) socket.destroy();
      else answer();
      return;
    }
    // The bad bytes follow complete pipelined requests still being answered: their responses go out first, in
    // order, then the error; answering now would hand the client the 400 as the answer to an earlier request.
    whenIdle(s, answer);
  }
}

const kAnswered = Symbol('clientErrorAnswered');
const kClosing = Symbol('closingAnswerSent');

/** A socket whose last answer (Connection: close) has been written: later pipelined requests are not dispatched. */
type ClosingSocket = Socket & { [kClosing]?: boolean };

/** The parts of Node's http server socket state onClientError needs (internal but stable since Node 12). */
type HttpSocket = Duplex & {
  _httpMessage?: ServerResponse | null;
  parser?: { incoming?: IncomingMessage | null } | null;
  [kAnswered]?: boolean;
};

/** Calls `done` once every response queued on this keep-alive socket has finished (or the socket closed). */
function whenIdle(socket: HttpSocket, done: () => void): void {
  const current = socket._httpMessage;
  if (current === null || current === undefined || socket.destroyed) {
    done();
    return;
  }
  let fired = false;
  const next = (): void => {
    if (fired) return;
    fired = true;
    // Node assigns the next queued response to the socket in its own 'finish' listener; look again after it.
    setImmediate(() => whenIdle(socket, done));
  };
  current.once('finish', next);
  current.once('close', next);
}
