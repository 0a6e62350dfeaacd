/**
 * The `fast-gateway` peer: fast-gateway 5 (restana + fast-proxy-lite, whose http.Agent keeps connections alive)
 * with one route per prefix, forwarding the path unchanged. Defaults otherwise, as its README shows it.
 *
 * argv: --port N --upstream-port N --prefix /p…
 */
import gateway from 'fast-gateway';
import { onStop, peerArgs } from './args.js';

const { port, upstreamPort, prefixes } = peerArgs();
const target = `http://127.0.0.1:${upstreamPort}`;
const server = gateway({
  // prefixRewrite = prefix: fast-gateway strips the prefix by default, the other peers forward the path as-is
  routes: (prefixes.length > 0 ? prefixes : ['']).map((prefix) => ({ prefix, prefixRewrite: prefix, target })),
  enableServicesEndpoint: false,
});
await server.start(port, '127.0.0.1');
onStop(() => server.close());
