import { createServer } from 'node:http';

/**
 * The physical limit for any Node gateway on this machine: node:http answering the same bytes as the gateway's
 * static route, with nothing else. Usage: node dist/scripts/bare-server.js PORT
 */
const port = Number(process.argv[2] ?? 8081);
const body = Buffer.from('pong');
createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '4' });
  res.end(body);
}).listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
