import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { CLIENT_VARIANTS, rawExchange, sleep, startProxy, startUpstream, waitFor, type GatewayUnderTest } from './helpers.js';

type Closer = { close(): Promise<void> };

describe.each(CLIENT_VARIANTS)('websocket and client aborts (%s client)', (variant) => {
  const closers: Closer[] = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((c) => c.close()));
  });

  async function proxy(targets: string[], routes: unknown[] = [{ path: '/*', upstream: 'svc' }]): Promise<GatewayUnderTest> {
    const gw = await startProxy(variant, { svc: { targets } }, routes);
    closers.push(gw);
    return gw;
  }

  it('tunnels a WebSocket echo (text and binary) with the proxy header rules', async () => {
    const up = await startUpstream('ws', (_req, res) => res.end('plain'));
    closers.push(up);
    const wss = new WebSocketServer({ server: up.server });
    let handshake: http.IncomingHttpHeaders | null = null;
    let handshakeUrl = '';
    wss.on('connection', (sock, req) => {
      handshake = req.headers;
      handshakeUrl = req.url!;
      sock.on('message', (data, isBinary) => sock.send(data, { binary: isBinary }));
    });
    const gw = await proxy([up.url], [{ path: '/ws/*', upstream: 'svc', stripPrefix: true }]);
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/ws/echo?room=1`, { headers: { 'proxy-authorization': 'Basic eDp5', 'x-forwarded-for': '6.6.6.6' } });
    const upgradeHeaders = await new Promise<http.IncomingHttpHeaders>((resolve, reject) => {
      ws.on('upgrade', (res) => resolve(res.headers));
      ws.on('error', reject);
    });
    await new Promise<void>((r) => (ws.readyState === WebSocket.OPEN ? r() : ws.once('open', () => r())));
    expect(upgradeHeaders.via).toBe('1.1 ts-gateway');
    const replies: Array<string | Buffer> = [];
    ws.on('message', (d, isBinary) => replies.push(isBinary ? (d as Buffer) : d.toString()));
    ws.send('hello');
    ws.send(Buffer.from([1, 2, 3]));
    const big = 'x'.repeat(200_000);
    ws.send(big);
    expect(await waitFor(() => replies.length === 3)).toBe(true);
    expect(replies[0]).toBe('hello');
    expect(Buffer.compare(replies[1] as Buffer, Buffer.from([1, 2, 3]))).toBe(0);
    expect(replies[2]).toBe(big);
    expect(handshakeUrl).toBe('/echo?room=1');
    const h = handshake as unknown as http.IncomingHttpHeaders;
    expect(h['proxy-authorization']).toBeUndefined();
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h.upgrade).toBe('websocket');
    ws.close();
    await new Promise<void>((r) => ws.once('close', () => r()));
    wss.close();
  });

  it('an upgrade to a dead upstream gets a 502 and the socket is closed', async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const gw = await proxy([`http://127.0.0.1:${port}`]);
    const out = await rawExchange(
      gw.port,
      'GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    expect(out).toMatch(/^HTTP\/1\.1 502 /);
  });

  it('a client abort while waiting for headers aborts the upstream request', async () => {
    let upstreamClosed = false;
    const up = await startUpstream('hang', (req, res) => {
      res.on('close', () => (upstreamClosed = true));
      void req;
    });
    closers.push(up);
    const gw = await proxy([up.url]);
    const req = http.get({ hostname: '127.0.0.1', port: gw.port, path: '/slow', agent: false });
    req.on('error', () => {});
    expect(await waitFor(() => up.received.length === 1)).toBe(true);
    req.destroy();
    expect(await waitFor(() => upstreamClosed)).toBe(true);
    expect(await waitFor(() => gw.stats('svc').targets[0]!.active === 0)).toBe(true);
  });

  it('a client abort mid-body aborts the upstream response and its connection is not reused', async () => {
    let closedMidBody = false;
    const sockets = new Set<net.Socket>();
    const up = await startUpstream('trickle', (req, res) => {
      sockets.add(req.socket);
      if (req.url === '/ok') {
        res.end('ok');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('start');
      const timer = setInterval(() => res.write('.'), 20);
      res.on('close', () => {
        clearInterval(timer);
        closedMidBody = !res.writableFinished;
      });
    });
    closers.push(up);
    const gw = await proxy([up.url]);
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ hostname: '127.0.0.1', port: gw.port, path: '/stream', agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => {});
      setTimeout(() => reject(new Error('no data')), 5000).unref();
    });
    expect(await waitFor(() => closedMidBody)).toBe(true);
    expect(await waitFor(() => gw.stats('svc').targets[0]!.active === 0)).toBe(true);
    const streamSocket = [...sockets][0]!;
    expect(await waitFor(() => streamSocket.destroyed)).toBe(true);
    // the next request works, on a different upstream connection
    const r = await new Promise<string>((resolve, reject) => {
      http
        .get({ hostname: '127.0.0.1', port: gw.port, path: '/ok', agent: false }, (res) => {
          let b = '';
          res.on('data', (c) => (b += c));
          res.on('end', () => resolve(b));
        })
        .on('error', reject);
    });
    expect(r).toBe('ok');
    expect(sockets.size).toBe(2);
    await sleep(0);
  });
});
