/**
 * The `fastify-http-proxy` peer: fastify 5 with @fastify/http-proxy (reply-from over undici, keep-alive) registered
 * once per prefix, path unchanged. Logger off (the gateway's access log is off in the scenarios too).
 *
 * argv: --port N --upstream-port N --prefix /p…
 */
import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';
import { onStop, peerArgs } from './args.js';

const { port, upstreamPort, prefixes } = peerArgs();
const app = Fastify({ logger: false });
for (const prefix of prefixes.length > 0 ? prefixes : ['/']) {
  await app.register(proxy, { upstream: `http://127.0.0.1:${upstreamPort}`, prefix, rewritePrefix: prefix });
}
await app.listen({ port, host: '127.0.0.1' });
onStop(() => app.close());
