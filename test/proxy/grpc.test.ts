import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { echoClient, grpc, startEchoServer, unary, type EchoClientT, type GrpcServer, type Msg } from '../support/grpc.js';

describe('gRPC through the gateway (h2c listener, h2c upstream)', () => {
  let svc: GrpcServer;
  let gw: RunningGateway;
  let client: EchoClientT;

  beforeAll(async () => {
    svc = await startEchoServer();
    gw = await startGateway({
      server: { host: '127.0.0.1', http2: 'h2c' },
      admin: { enabled: false },
      logging: { level: 'silent', accessLog: false },
      upstreams: { echo: { targets: [svc.url], protocol: 'h2c' } },
      routes: [{ path: '/gwtest.Echo/*', upstream: 'echo' }],
    });
    client = echoClient(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    client?.close();
    await gw?.close();
    await svc?.close();
  });

  it('unary', async () => {
    const r = await unary(client, { text: 'hi' });
    expect(r.msg.text).toBe('echo:hi');
    expect(r.trailers.get('x-trailer')).toEqual(['unary']);
  });

  it('status from the service', async () => {
    const err = await unary(client, { status: grpc.status.NOT_FOUND }).catch((e: grpc.ServiceError) => e);
    expect((err as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);
    expect((err as grpc.ServiceError).metadata.get('x-detail-bin')).toEqual([Buffer.from([0, 1, 2, 255])]);
  });
});
