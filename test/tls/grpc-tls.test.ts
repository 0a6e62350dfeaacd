import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { callPath, echoClient, grpc, startEchoServer, unary, type EchoClientT, type GrpcServer, type Msg } from '../support/grpc.js';
import { needService } from '../support/services.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { TestCa } from './certs.js';

/**
 * gRPC over TLS on both hops, on both server engines: a grpc-js client with the test CA talks to the gateway's h2
 * listener (ALPN), and the gateway to a grpc-js TLS server through an `h2` upstream (ALPN over the upstream's TLS
 * settings). An https upstream that only speaks HTTP/1.1 under `protocol: "h2"` is a gRPC UNAVAILABLE, not a hang.
 */
const openssl = needService('openssl');

describe.skipIf(!openssl.available).each(['node-http', 'own'])('gRPC over TLS both ways (engine %s)', (engine) => {
  let ca: TestCa;
  let svc: GrpcServer;
  let h1only: RecordingUpstream;
  let gw: RunningGateway;
  let client: EchoClientT;

  beforeAll(async () => {
    ca = new TestCa();
    const gwLeaf = ca.leaf('gateway.test', ['gateway.test', 'localhost']);
    const svcLeaf = ca.leaf('svc.test', ['svc.test', 'localhost']);
    svc = await startEchoServer(grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(svcLeaf.cert), private_key: readFileSync(svcLeaf.key) }]));
    h1only = await startUpstream('h1');
    gw = await startGateway({
      variants: { server: engine },
      server: { host: '127.0.0.1', tls: { cert: gwLeaf.cert, key: gwLeaf.key } },
      admin: { enabled: false },
      logging: { level: 'silent', accessLog: false },
      upstreams: {
        echo: { targets: [`https://localhost:${svc.port}`], protocol: 'h2', tls: { ca: ca.caCert, servername: 'svc.test' } },
        // plain HTTP on that port: the TLS handshake itself fails
        wrong: { targets: [`https://127.0.0.1:${h1only.port}`], protocol: 'h2', tls: { ca: ca.caCert }, retries: { count: 0 } },
      },
      routes: [
        { path: '/wrong/*', upstream: 'wrong', stripPrefix: '/wrong' },
        { path: '/gwtest.Echo/*', upstream: 'echo' },
      ],
    });
    client = echoClient(`localhost:${gw.port}`, grpc.credentials.createSsl(readFileSync(ca.caCert)), { 'grpc.ssl_target_name_override': 'gateway.test' });
  });
  afterAll(async () => {
    client?.close();
    await gw?.close();
    await svc?.close();
    await h1only?.close();
    ca?.cleanup();
  });

  it('unary and bidi', async () => {
    expect((await unary(client, { text: 'tls' })).msg.text).toBe('echo:tls');
    const s = (client as unknown as { bidi(): grpc.ClientDuplexStream<Msg, Msg> }).bidi();
    const got: string[] = [];
    const status = new Promise<grpc.StatusObject>((r) => s.on('status', r));
    s.on('data', (m: Msg) => got.push(m.text!));
    s.on('error', () => {});
    for (const t of ['a', 'b', 'c']) s.write({ text: t });
    s.end();
    expect((await status).code).toBe(grpc.status.OK);
    expect(got).toEqual(['echo:a', 'echo:b', 'echo:c']);
  });

  it('an upstream that does not speak TLS/h2: UNAVAILABLE', async () => {
    const err = await callPath(`localhost:${gw.port}`, grpc.credentials.createSsl(readFileSync(ca.caCert)), '/wrong/gwtest.Echo/Unary', {
      'grpc.ssl_target_name_override': 'gateway.test',
    });
    expect(err!.code).toBe(grpc.status.UNAVAILABLE);
  });
});
