/**
 * The `baseline` variant: a bare http.createServer answering the scenario's requests with the same bytes the
 * gateway's routes produce (static answers) or by forwarding to the upstream stub (proxy answers). Its only
 * "routing" is one Map lookup of the exact request line, so it measures what Node's HTTP layer costs on this
 * machine: the ceiling for any Node gateway.
 *
 * argv: --port N --answers FILE [--upstream-port N]
 */
import { readFileSync } from 'node:fs';
import { Agent, createServer, request, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import type { Answer } from './traffic.js';
import { NOT_FOUND_ANSWER } from './traffic.js';

const { values } = parseArgs({
  options: { port: { type: 'string' }, answers: { type: 'string' }, 'upstream-port': { type: 'string' } },
});
const port = Number(values.port);
const upstreamPort = values['upstream-port'] !== undefined ? Number(values['upstream-port']) : 0;
const table = JSON.parse(readFileSync(values.answers!, 'utf8')) as Record<string, Answer>;

interface Prepared {
  proxy: boolean;
  status: number;
  headers: OutgoingHttpHeaders;
  body: Buffer;
}

function prepare(a: Answer): Prepared {
  if (a.kind === 'proxy') return { proxy: true, status: 0, headers: {}, body: Buffer.alloc(0) };
  const body = Buffer.from(a.body);
  return { proxy: false, status: a.status, headers: { ...a.headers, 'content-length': body.length }, body };
}

const answers = new Map<string, Prepared>();
for (const [key, a] of Object.entries(table)) answers.set(key, prepare(a));
const notFound = prepare(NOT_FOUND_ANSWER);

const agent = new Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 1024 });

function forward(req: IncomingMessage, res: ServerResponse): void {
  const up = request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent }, (ures) => {
    res.writeHead(ures.statusCode ?? 502, ures.headers);
    ures.pipe(res);
  });
  up.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(up);
}

const server = createServer((req, res) => {
  const a = answers.get(`${req.method} ${req.url}`) ?? notFound;
  if (a.proxy) {
    forward(req, res);
    return;
  }
  res.writeHead(a.status, a.headers);
  res.end(a.body);
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
