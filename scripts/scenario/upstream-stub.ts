/**
 * The upstream the gateway proxies to in `proxy` mode: reads the request body, waits delayMs, answers 200 with
 * a fixed JSON body of bodyBytes. Runs in its own process (pinned with the load generator) so its cost is
 * never charged to the gateway's CPU.
 *
 * argv: --port N [--body-bytes N] [--delay-ms N]
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { stubBody } from './stub-body.js';

const { values } = parseArgs({
  options: { port: { type: 'string' }, 'body-bytes': { type: 'string' }, 'delay-ms': { type: 'string' } },
});
const port = Number(values.port);
const bodyBytes = Number(values['body-bytes'] ?? 256);
const delayMs = Number(values['delay-ms'] ?? 0);

const body = stubBody(bodyBytes);
const headers = { 'content-type': 'application/json', 'content-length': body.length };

const server = createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    if (delayMs > 0) {
      setTimeout(() => {
        res.writeHead(200, headers);
        res.end(body);
      }, delayMs);
    } else {
      res.writeHead(200, headers);
      res.end(body);
    }
  });
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
