/**
 * The `handwritten` peer: the minimal proxy a gateway must justify itself against. One http.request per
 * request over a keep-alive http.Agent, request and response piped, headers passed through untouched: no
 * routing, no hop-by-hop filtering, no forwarding headers, no timeouts, no balancing. Anything the gateway does
 * beyond this is its cost; the target is gateway ≥ 1.1× this.
 *
 * argv: --port N --upstream-port N [--prefix /p]… (prefixes are accepted and ignored: everything is forwarded)
 */
import { Agent, createServer, request } from 'node:http';
import { onStop, peerArgs } from './args.js';

const { port, upstreamPort } = peerArgs();
// maxSockets well above the load generator's connection count, so the pool never queues
const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });

const server = createServer((req, res) => {
  const up = request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent }, (ures) => {
    res.writeHead(ures.statusCode ?? 502, ures.headers);
    ures.pipe(res);
  });
  up.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(up);
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
onStop(() => new Promise<void>((r) => server.close(() => r())));
