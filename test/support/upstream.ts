import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';

/** One request as the upstream saw it, recorded when its head arrives; the body fills in as it is read. */
export interface Arrival {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  /** the body bytes read so far (the whole body once `complete`), recorded when the answer reads the body */
  readonly body: Buffer;
  bodyBytes: number;
  /** the body ended: the request arrived whole */
  complete: boolean;
  /** the connection broke before the body ended */
  aborted: boolean;
}

export type Answer = (req: IncomingMessage, res: ServerResponse) => void;

export interface RecordingUpstream {
  server: http.Server;
  name: string;
  url: string;
  port: number;
  /** every request, in arrival order */
  received: Arrival[];
  /** the requests that arrived whole */
  readonly requests: Arrival[];
  /** bytes received on any connection (socket level, before the upstream's own parser) since the last reset() */
  bytes: number;
  /** the raw bytes received since the last reset() */
  data(): string;
  /** connections accepted since start */
  connections: number;
  /** forgets the arrivals and bytes recorded so far */
  reset(): void;
  close(): Promise<void>;
}

/** The default answer: once the request body has arrived, 200 text/plain with the upstream's name. */
export const answerName =
  (name: string): Answer =>
  (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(name) });
      res.end(name);
    });
  };

/**
 * The one recording upstream of the suite: an HTTP server on 127.0.0.1:0 that records method, url, headers and
 * body of every request, and every byte its sockets received, then answers with `answer`. A 'data' listener on
 * the socket makes Node feed its parser from JS, so the raw record is exactly what the parser saw.
 * `configure` gets the server before it listens (timeouts, 'upgrade' handlers, ...).
 */
export async function startUpstream(
  name = 'upstream',
  answer: Answer = answerName(name),
  configure?: (server: http.Server) => void,
): Promise<RecordingUpstream> {
  const chunks: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    const arrival: Arrival = {
      method: req.method!,
      url: req.url!,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      get body() {
        return Buffer.concat(parts);
      },
      bodyBytes: 0,
      complete: false,
      aborted: false,
    };
    up.received.push(arrival);
    // The body is recorded once the answer reads it (flowing mode, as the default answer and any pipe do); an
    // answer that reads late or not at all keeps control of the stream's pace.
    req.once('resume', () =>
      req.on('data', (c: Buffer) => {
        parts.push(c);
        arrival.bodyBytes += c.length;
      }),
    );
    req.on('end', () => (arrival.complete = true));
    req.on('aborted', () => (arrival.aborted = true));
    req.on('error', () => (arrival.aborted = true));
    answer(req, res);
  });
  server.on('connection', (s: net.Socket) => {
    up.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('data', (c: Buffer) => {
      up.bytes += c.length;
      chunks.push(c);
    });
  });
  configure?.(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const up: RecordingUpstream = {
    server,
    name,
    url: `http://127.0.0.1:${port}`,
    port,
    received: [],
    get requests() {
      return up.received.filter((a) => a.complete);
    },
    bytes: 0,
    data: () => Buffer.concat(chunks).toString('latin1'),
    connections: 0,
    reset() {
      up.bytes = 0;
      chunks.length = 0;
      up.received.length = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  return up;
}

/** A free port on 127.0.0.1: bound, then released (nothing listens on it afterwards). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A URL where nothing listens (connections are refused). */
export async function closedPortUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}
