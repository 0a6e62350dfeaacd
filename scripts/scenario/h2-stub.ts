/**
 * The upstream services of the h2load scenarios (h2load.ts), one process each, run pinned with the load
 * generator so their cost is never charged to the proxy:
 *
 * - `grpc`: a gRPC service over h2c. `/gwtest.Echo/Unary` answers one message; `/gwtest.Echo/ServerStream`
 *   answers STREAM_MESSAGES messages; both end with `grpc-status: 0` trailers. Fixed answers (no protobuf
 *   library): cheap, so the proxy in front of it dominates the measurement.
 * - `http1` / `h2c`: the same JSON body over HTTP/1.1 or over HTTP/2 cleartext, what `upstream-h2` compares.
 *
 * argv: --kind grpc|http1|h2c --port N
 */
import { createServer } from 'node:http';
import { createServer as createH2Server, type ServerHttp2Stream } from 'node:http2';
import { parseArgs } from 'node:util';
import { GRPC_PATHS, GRPC_REPLY, STREAM_MESSAGES, UPSTREAM_BODY } from './grpc-traffic.js';

const { values } = parseArgs({ options: { kind: { type: 'string' }, port: { type: 'string' } } });
const port = Number(values.port);
const kind = values.kind;

function grpcCall(stream: ServerHttp2Stream, path: string): void {
  stream.on('error', () => {});
  stream.resume();
  stream.on('end', () => {
    if (stream.destroyed) return;
    if (path !== GRPC_PATHS.unary && path !== GRPC_PATHS['server-stream']) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unknown method' }, { endStream: true });
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    if (path === GRPC_PATHS.unary) return void stream.end(GRPC_REPLY);
    for (let i = 1; i < STREAM_MESSAGES; i++) stream.write(GRPC_REPLY);
    stream.end(GRPC_REPLY);
  });
}

if (kind === 'grpc' || kind === 'h2c') {
  const server = createH2Server({ settings: { maxConcurrentStreams: 1000 } });
  server.on('stream', (stream, headers) => {
    if (kind === 'grpc') return grpcCall(stream, String(headers[':path']));
    stream.on('error', () => {});
    stream.resume();
    stream.respond({ ':status': 200, 'content-type': 'application/json', 'content-length': UPSTREAM_BODY.length });
    stream.end(UPSTREAM_BODY);
  });
  server.listen(port, '127.0.0.1');
} else if (kind === 'http1') {
  createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': UPSTREAM_BODY.length });
    res.end(UPSTREAM_BODY);
  }).listen(port, '127.0.0.1');
} else {
  process.stderr.write(`h2-stub: --kind must be grpc, http1 or h2c (got ${kind})\n`);
  process.exit(2);
}
