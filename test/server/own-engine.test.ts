import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse as NodeResponse } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ServerConfig } from '../../core/config/types.js';
import type { ServerEngine, ServerEngineHandlers, ServerRequest, ServerResponse } from '../../core/contracts/server.js';
import { createServerEngine } from '../../variants/server/own/index.js';
import { exchange, parseResponses } from '../support/raw.js';
import { sleep, until } from '../support/wait.js';
import { hasOpenssl, TestCa } from '../tls/certs.js';

/** The ServerConfig fields the engine reads, with node:http's defaults; tests override what they exercise. */
function serverConfig(over: Partial<ServerConfig> = {}): ServerConfig {
  return {
    keepAliveTimeoutMs: 5000,
    headersTimeoutMs: 60000,
    requestTimeoutMs: 300000,
    maxHeaderSize: 16384,
    connectionsCheckingIntervalMs: 30000,
    http2: false,
    ...over,
  } as ServerConfig;
}

type Handler = (req: ServerRequest, res: ServerResponse) => void;

const engines: ServerEngine[] = [];
const nodeServers: http.Server[] = [];

afterEach(async () => {
  for (const e of engines.splice(0)) {
    e.closeAll();
    await new Promise<void>((r) => e.listener.close(() => r()));
  }
  for (const s of nodeServers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

async function start(
  request: Handler,
  over: Partial<ServerConfig> = {},
  more: Partial<ServerEngineHandlers> = {},
): Promise<{ engine: ServerEngine; port: number }> {
  const engine = createServerEngine(serverConfig(over), {
    request,
    upgrade: more.upgrade ?? ((_req, socket) => socket.destroy()),
    connection: more.connection ?? (() => true),
  });
  engines.push(engine);
  await new Promise<void>((r) => engine.listener.listen(0, '127.0.0.1', r));
  return { engine, port: (engine.listener.address() as AddressInfo).port };
}

/** node:http with the same handler, for differential checks. */
async function startNode(request: Handler): Promise<number> {
  const s = http.createServer((req: IncomingMessage, res: NodeResponse) => request(req, res));
  nodeServers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

const hello: Handler = (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`hello ${req.url ?? ''}`);
};

function get(path: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
}

/** Everything the server sends until it closes (or `ms` pass). */
function collect(port: number, parts: Array<string | Buffer | number>, ms = 2000): Promise<{ raw: string; closed: boolean }> {
  return exchange(port, parts, { waitClose: true, timeoutMs: ms }).then((x) => ({ raw: x.raw, closed: x.closed }));
}

describe('own engine: framing', () => {
  it('answers several requests on one keep-alive connection', async () => {
    const { port } = await start(hello);
    const x = await exchange(port, [get('/a'), 30, get('/b'), 30, get('/c')], { expected: 3 });
    expect(x.responses.map((r) => r.body)).toEqual(['hello /a', 'hello /b', 'hello /c']);
    expect(x.responses[0]!.headers.connection).toBe('keep-alive');
    expect(x.responses[0]!.headers['keep-alive']).toBe('timeout=5');
    expect(x.responses[0]!.headers['content-length']).toBe('8');
    expect(x.responses[0]!.headers.date).toMatch(/GMT$/);
    expect(x.closed).toBe(false);
  });

  it('answers three pipelined requests in order although the first is the slowest', async () => {
    const seen: string[] = [];
    const { port } = await start((req, res) => {
      seen.push(req.url!);
      const delay = req.url === '/1' ? 80 : 0;
      setTimeout(() => hello(req, res), delay);
    });
    const x = await exchange(port, [get('/1') + get('/2') + get('/3')], { expected: 3 });
    expect(x.responses.map((r) => r.body)).toEqual(['hello /1', 'hello /2', 'hello /3']);
    expect(seen).toEqual(['/1', '/2', '/3']);
  });

  it('reassembles a chunked request body and reports its trailers', async () => {
    const { port } = await start((req, res) => {
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        res.writeHead(200, { 'x-complete': String(req.complete) });
        res.end(`${body}|${(req as unknown as { trailers: Record<string, string> }).trailers['x-t'] ?? ''}`);
      });
    });
    const x = await exchange(port, [
      'POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n',
      20,
      '4;ext=1\r\ndefg\r\n0\r\nX-T: tv\r\n\r\n',
    ]);
    expect(x.responses[0]!.body).toBe('abcdefg|tv');
    expect(x.responses[0]!.headers['x-complete']).toBe('true');
  });

  it('streams a body written in pieces as chunked (HTTP/1.1) and close-delimited (HTTP/1.0)', async () => {
    const { port } = await start((_req, res) => {
      res.writeHead(200);
      res.write('ab');
      res.write(Buffer.from('cd'));
      res.end('e');
    });
    const x = await exchange(port, [get('/')]);
    expect(x.responses[0]!.headers['transfer-encoding']).toBe('chunked');
    expect(x.raw).toContain('\r\n\r\n2\r\nab\r\n2\r\ncd\r\n1\r\ne\r\n0\r\n\r\n');
    const old = await collect(port, ['GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n']);
    expect(old.closed).toBe(true);
    expect(old.raw).toMatch(/Connection: close\r\n\r\nabcde$/);
  });

  it('sends no body bytes for HEAD, 204 and 304, and keeps the connection', async () => {
    const { port } = await start((req, res) => {
      const status = req.url === '/204' ? 204 : req.url === '/304' ? 304 : 200;
      res.writeHead(status, { 'x-s': String(status) });
      res.end('body!');
    });
    const x = await collect(port, ['HEAD / HTTP/1.1\r\nHost: x\r\n\r\n' + get('/204') + get('/304') + get('/last', 'Connection: close\r\n')]);
    const heads = x.raw.split('HTTP/1.1 ').slice(1);
    expect(heads).toHaveLength(4);
    for (const h of heads.slice(0, 3)) {
      expect(h.endsWith('\r\n\r\n')).toBe(true);
      expect(h).not.toMatch(/content-length|transfer-encoding/i);
    }
    expect(heads[3]).toMatch(/Connection: close\r\nContent-Length: 5\r\n\r\nbody!$/);
    expect(x.closed).toBe(true);
  });

  it('HTTP/1.0: closes unless keep-alive was asked for; Connection: close from the client or the answer closes', async () => {
    const { port } = await start((req, res) => {
      if (req.url === '/bye') res.setHeader('connection', 'close');
      hello(req, res);
    });
    const plain = await collect(port, ['GET /a HTTP/1.0\r\n\r\n']);
    expect(plain.closed).toBe(true);
    expect(plain.raw).toContain('Connection: close\r\n');
    const kept = await exchange(port, ['GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', 50, 'GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'], {
      expected: 2,
    });
    expect(kept.responses.map((r) => r.headers.connection)).toEqual(['keep-alive', 'keep-alive']);
    expect(kept.closed).toBe(false);
    const asked = await collect(port, [get('/a', 'Connection: close\r\n')]);
    expect(asked.closed).toBe(true);
    const answered = await collect(port, [get('/bye') + get('/never')]);
    expect(answered.closed).toBe(true);
    expect(parseResponses(answered.raw, true)).toHaveLength(1);
  });

  it('builds req.headers as node:http does (joined, first-wins, set-cookie array, cookie with "; ")', async () => {
    const echo: Handler = (req, res) => {
      const body = JSON.stringify({ headers: req.headers, raw: req.rawHeaders, v: req.httpVersion, method: req.method, url: req.url });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const { port } = await start(echo);
    const nodePort = await startNode(echo);
    const request =
      'GET /p?q=1 HTTP/1.1\r\nHost: h\r\nAccept: a\r\naccept: b\r\nCookie: c=1\r\nCookie: d=2\r\nSet-Cookie: s=1\r\nset-cookie: s=2\r\n' +
      'User-Agent: u1\r\nUser-Agent: u2\r\nX-Dup: 1\r\nX-Dup: 2\r\nConnection: close\r\n\r\n';
    const own = await exchange(port, [request]);
    const ref = await exchange(nodePort, [request]);
    expect(JSON.parse(own.responses[0]!.body)).toEqual(JSON.parse(ref.responses[0]!.body));
  });

  it('answers like node:http for the same handler (status line, field lines, framing)', async () => {
    const handler: Handler = (req, res) => {
      res.setHeader('X-Set', ['a', 'b']);
      res.setHeader('x-num', 5);
      if (req.url === '/json') res.writeHead(201, { 'Content-Type': 'application/json', 'content-length': '2' });
      // values a careless plugin stages: node writes String(value) for anything but an array
      if (req.url === '/odd')
        res.writeHead(200, { 'x-null': null, 'x-bool': true, 'x-obj': { toString: () => 'o' }, 'content-length': '5' } as unknown as OutgoingHttpHeaders);
      res.end(req.url === '/json' ? '{}' : 'plain');
    };
    const { port } = await start(handler);
    const nodePort = await startNode(handler);
    for (const path of ['/json', '/plain', '/odd']) {
      const strip = (raw: string): string => raw.replace(/Date: [^\r]+\r\n/, '');
      const own = await exchange(port, [get(path)]);
      const ref = await exchange(nodePort, [get(path)]);
      expect(strip(own.raw)).toBe(strip(ref.raw));
    }
  });
});

describe('own engine: request bodies', () => {
  it('a consumer that stops reading stops the socket (the client write stalls), and resumes it', async () => {
    let received = 0;
    let paused: ServerRequest | null = null;
    const total = 16 * 1024 * 1024;
    const { port } = await start((req, res) => {
      req.on('data', (c: Buffer) => {
        received += c.length;
        if (paused === null && received > 64 * 1024) {
          paused = req;
          req.pause();
        }
      });
      req.on('end', () => {
        res.writeHead(200);
        res.end(String(received));
      });
    });
    const sock = net.connect(port, '127.0.0.1');
    let answer = '';
    sock.on('data', (c: Buffer) => (answer += c.toString()));
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`);
    sock.write(Buffer.alloc(total, 97));
    await until(() => paused !== null, { message: 'the consumer paused' });
    await sleep(200);
    // the server stopped reading: the rest sits in the client's and the kernel's buffers
    expect(received).toBeLessThan(total / 2);
    expect(sock.writableLength).toBeGreaterThan(0);
    paused!.resume();
    await until(() => answer.endsWith(String(total)), { message: 'the whole body arrived after resume()' });
    sock.destroy();
  });

  it('Expect: 100-continue: 100 goes out on the first read, never when the answer comes without reading', async () => {
    const { port } = await start((req, res) => {
      if (req.url === '/refuse') {
        res.writeHead(413, { 'content-length': '0' });
        res.end();
        return;
      }
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        res.writeHead(200);
        res.end(body);
      });
    });
    const head = (path: string): string => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n`;
    // the client waits for the 100 before sending the body
    const sock = net.connect(port, '127.0.0.1');
    let raw = '';
    sock.on('data', (c: Buffer) => {
      raw += c.toString('latin1');
      if (raw === 'HTTP/1.1 100 Continue\r\n\r\n') sock.write('data');
    });
    sock.write(head('/read'));
    await until(() => raw.endsWith('data'), { message: 'the answer after the 100' });
    expect(raw.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK')).toBe(true);
    sock.destroy();

    const refused = await collect(port, [head('/refuse')]);
    expect(refused.raw).not.toContain('100 Continue');
    expect(refused.raw.startsWith('HTTP/1.1 413')).toBe(true);
    // the body was never invited: the connection cannot be reused
    expect(refused.raw).toContain('Connection: close');
    expect(refused.closed).toBe(true);
  });

  it('a client gone mid-body: the request errors with ECONNRESET "aborted", the response closes without finish', async () => {
    const events: string[] = [];
    const { port } = await start((req, res) => {
      req.on('aborted', () => events.push('aborted'));
      req.on('error', (err: NodeJS.ErrnoException) => events.push(`error:${err.code}:${err.message}`));
      res.on('finish', () => events.push('finish'));
      res.on('close', () => events.push('res-close'));
      req.resume();
    });
    const sock = net.connect(port, '127.0.0.1');
    sock.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc');
    await sleep(50);
    sock.destroy();
    await until(() => events.includes('res-close'), { message: 'res closed' });
    expect(events).toContain('aborted');
    expect(events).toContain('error:ECONNRESET:aborted');
    expect(events).not.toContain('finish');
  });

  it('an answer before the body was read discards the rest of the body and serves the next request', async () => {
    const { port } = await start(hello);
    const x = await exchange(port, ['POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234', 30, '56789' + get('/b')], { expected: 2 });
    expect(x.responses.map((r) => r.body)).toEqual(['hello /a', 'hello /b']);
  });
});

describe('own engine: streams both ways (as the proxy uses them)', () => {
  it('pipes the request body to an upstream and the upstream answer back, with backpressure on both', async () => {
    const upstream = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res); // chunked back: length unknown
    });
    nodeServers.push(upstream);
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upPort = (upstream.address() as AddressInfo).port;
    const { port } = await start((req, res) => {
      const up = http.request(
        { host: '127.0.0.1', port: upPort, method: 'POST', path: '/', headers: { 'content-length': req.headers['content-length'] } },
        (ur) => {
          res.writeHead(ur.statusCode!, { 'x-proxied': '1' });
          ur.pipe(res);
        },
      );
      req.pipe(up);
    });
    const size = 4 * 1024 * 1024;
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i++) payload[i] = (i * 7) & 0xff;
    const got = await new Promise<{ status: number; te: string | undefined; body: Buffer }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { 'content-length': String(size) } }, (res) => {
        const parts: Buffer[] = [];
        // a slow reader at first: the engine's writes must wait for 'drain'
        res.pause();
        setTimeout(() => res.resume(), 100);
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, te: res.headers['transfer-encoding'], body: Buffer.concat(parts) }));
      });
      req.on('error', reject);
      req.end(payload);
    });
    expect(got.status).toBe(200);
    expect(got.te).toBe('chunked');
    expect(got.body.equals(payload)).toBe(true);
  });
});

describe('own engine: upgrades, CONNECT, refused connections', () => {
  it('hands an upgrade the socket and the bytes read past its head', async () => {
    let seen: { url: string | undefined; head: string } | null = null;
    const { port } = await start(
      hello,
      {},
      {
        upgrade: (req, socket: Duplex, head: Buffer) => {
          seen = { url: req.url, head: head.toString() };
          socket.on('data', (c: Buffer) => socket.end(`echo:${c.toString()}`));
          socket.write(`switched:${head.toString()}|`);
        },
      },
    );
    const x = await collect(port, [get('/ws', 'Upgrade: websocket\r\nConnection: Upgrade\r\n') + 'EARLY', 50, 'LATER']);
    expect(seen).toEqual({ url: '/ws', head: 'EARLY' });
    expect(x.raw).toBe('switched:EARLY|echo:LATER');
  });

  it('answers CONNECT with 405 and closes', async () => {
    const { port } = await start(hello);
    const x = await collect(port, ['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n']);
    expect(x.raw.startsWith('HTTP/1.1 405 Method Not Allowed')).toBe(true);
    expect(x.closed).toBe(true);
  });

  it('does nothing with a connection the connection handler refused', async () => {
    let requests = 0;
    const { port } = await start(
      () => requests++,
      {},
      {
        connection: (socket: Socket) => {
          // as GatewayServer's per-IP cap does
          socket.end('refused', () => socket.destroy());
          return false;
        },
      },
    );
    const x = await collect(port, [get('/')]);
    expect(x.raw).toBe('refused');
    expect(requests).toBe(0);
  });

  it('a handler that throws cuts its connection only', async () => {
    const { port } = await start((req, res) => {
      if (req.url === '/throw') throw new Error('boom');
      hello(req, res);
    });
    const bad = await collect(port, [get('/throw')]);
    expect(bad).toEqual({ raw: '', closed: true });
    const good = await exchange(port, [get('/ok')]);
    expect(good.responses[0]!.body).toBe('hello /ok');
  });
});

describe('own engine: errors the engine answers', () => {
  const cases: Array<[string, string, number]> = [
    ['invalid method', 'G@T / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['unknown method', 'FOO / HTTP/1.1\r\nHost: x\r\n\r\n', 501],
    ['HTTP/2.0 in a request line', 'GET / HTTP/2.0\r\nHost: x\r\n\r\n', 505],
    ['no Host', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['bad chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
    ['Content-Length above 2^53', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999\r\n\r\n', 413],
    ['too long a target', `GET /${'a'.repeat(17000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414],
    ['too large a header', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17000)}\r\n\r\n`, 431],
    ['an unsupported transfer coding', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501],
  ];
  for (const [name, bytes, status] of cases) {
    it(`${name} → ${status} and close, after the answers to the requests before it`, async () => {
      const { port } = await start((req, res) => setTimeout(() => hello(req, res), 30));
      const x = await collect(port, [get('/first') + bytes]);
      const rs = parseResponses(x.raw, true);
      expect(rs.map((r) => r.status)).toEqual([200, status]);
      expect(rs[0]!.body).toBe('hello /first');
      expect(rs[1]!.headers.connection).toBe('close');
      expect(x.closed).toBe(true);
    });
  }

  it('refuses a header name or value node:http refuses, by throwing node:http’s error before any byte is written', async () => {
    const codes: string[] = [];
    const nodeCodes: string[] = [];
    const handler =
      (into: string[]): Handler =>
      (_req, res) => {
        for (const bad of [{ 'x-bad': 'a\nb' }, { 'bad name': 'v' }, { 'x-undef': undefined }]) {
          try {
            res.writeHead(200, bad as unknown as Record<string, string>);
          } catch (err) {
            into.push((err as NodeJS.ErrnoException).code!);
          }
        }
        try {
          res.writeHead(1000);
        } catch (err) {
          into.push(`${(err as Error).name}:${(err as NodeJS.ErrnoException).code!}`);
        }
        res.writeHead(500, { 'content-length': '0' });
        res.end();
      };
    const { port } = await start(handler(codes));
    const nodePort = await startNode(handler(nodeCodes));
    const x = await exchange(port, [get('/')]);
    await exchange(nodePort, [get('/')]);
    expect(codes).toEqual(nodeCodes);
    expect(codes).toEqual(['ERR_INVALID_CHAR', 'ERR_INVALID_HTTP_TOKEN', 'ERR_HTTP_INVALID_HEADER_VALUE', 'RangeError:ERR_HTTP_INVALID_STATUS_CODE']);
    expect(x.raw.startsWith('HTTP/1.1 500 ')).toBe(true);
    expect(parseResponses(x.raw, false)).toHaveLength(1);
  });

  it('setHeader after the head was sent throws ERR_HTTP_HEADERS_SENT', async () => {
    let code = '';
    const { port } = await start((req, res) => {
      hello(req, res);
      try {
        res.setHeader('x', '1');
      } catch (err) {
        code = (err as NodeJS.ErrnoException).code!;
      }
    });
    await exchange(port, [get('/')]);
    expect(code).toBe('ERR_HTTP_HEADERS_SENT');
  });
});

describe('own engine: timeouts and drain', () => {
  it('a head not complete within headersTimeoutMs (a slowloris) gets 408 and the close', async () => {
    const { port } = await start(hello, { headersTimeoutMs: 150, connectionsCheckingIntervalMs: 20 });
    const parts: Array<string | number> = [];
    for (const ch of 'GET / HTTP/1.1\r\nHost: x\r\n') parts.push(ch, 15);
    const x = await collect(port, parts, 3000);
    expect(x.raw.startsWith('HTTP/1.1 408 Request Timeout')).toBe(true);
    expect(x.closed).toBe(true);
  });

  it('a request not complete within requestTimeoutMs gets 408 and the close', async () => {
    const { port } = await start((req) => req.resume(), { requestTimeoutMs: 150, connectionsCheckingIntervalMs: 20 });
    const x = await collect(port, ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc'], 3000);
    expect(x.raw.startsWith('HTTP/1.1 408 Request Timeout')).toBe(true);
    expect(x.closed).toBe(true);
  });

  it('an idle keep-alive connection closes quietly after keepAliveTimeoutMs', async () => {
    const { port } = await start(hello, { keepAliveTimeoutMs: 150 });
    const t0 = Date.now();
    const x = await collect(port, [get('/')], 3000);
    expect(x.closed).toBe(true);
    expect(parseResponses(x.raw, true)).toHaveLength(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it('closeIdle closes idle connections only; closeAll closes the rest', async () => {
    let hold: ServerResponse | null = null;
    const { engine, port } = await start((req, res) => {
      if (req.url === '/hold') hold = res;
      else hello(req, res);
    });
    const idle = exchange(port, [get('/idle')], { waitClose: true, timeoutMs: 3000 });
    const busy = exchange(port, [get('/hold')], { waitClose: true, timeoutMs: 3000 });
    await until(() => hold !== null, { message: 'the held request arrived' });
    await sleep(50);
    engine.closeIdle();
    const i = await idle;
    expect(i.closed).toBe(true);
    expect(i.responses).toHaveLength(1);
    await sleep(50);
    engine.closeAll();
    const b = await busy;
    expect(b.closed).toBe(true);
    expect(b.raw).toBe('');
    await until(() => hold!.destroyed, { message: 'the held response is destroyed' });
  });
});

describe('own engine: reload', () => {
  it('applies new timeouts at commit and notes a listener kind it cannot change', async () => {
    const { engine, port } = await start(hello);
    const reload = engine.prepareReload(serverConfig({ keepAliveTimeoutMs: 9000, http2: 'h2c' }));
    expect(reload.errors).toEqual([]);
    expect(reload.kept).toEqual(['listener protocol stays http until restart']);
    reload.commit();
    const x = await exchange(port, [get('/')]);
    expect(x.responses[0]!.headers['keep-alive']).toBe('timeout=9');
  });
});

describe.skipIf(!hasOpenssl)('own engine: TLS', () => {
  const ca = hasOpenssl ? new TestCa() : null;
  afterAll(() => ca?.cleanup());

  it('serves HTTPS/1.1 with the configured certificate, and counts failed handshakes', async () => {
    const leaf = ca!.leaf('localhost');
    const { engine, port } = await start(hello, {
      tls: { cert: leaf.cert, key: leaf.key, minVersion: 'TLSv1.2', sni: {} },
      hsts: { maxAgeS: 60, includeSubDomains: false, preload: false },
    } as Partial<ServerConfig>);
    expect(engine.kind).toBe('https');
    const answer = await new Promise<{ status: number; body: string; hsts: string | undefined; alpn: unknown }>((resolve, reject) => {
      const options = { host: '127.0.0.1', port, path: '/tls', servername: 'localhost', ca: ca!.caPem, ALPNProtocols: ['http/1.1'] } as https.RequestOptions;
      const req = https.get(options, (res) => {
        let body = '';
        const alpn = (res.socket as { alpnProtocol?: unknown }).alpnProtocol;
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body, hsts: res.headers['strict-transport-security'], alpn }));
      });
      req.on('error', reject);
    });
    expect(answer).toEqual({ status: 200, body: 'hello /tls', hsts: 'max-age=60', alpn: 'http/1.1' });
    const garbage = net.connect(port, '127.0.0.1');
    garbage.on('error', () => undefined);
    garbage.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => engine.stats().tlsHandshakeErrors === 1, { message: 'the failed handshake was counted' });
    garbage.destroy();
  });
});

describe('own engine: HTTP/2 handed to node:http2', () => {
  const h2Limits = { maxConcurrentStreams: 100, idleTimeoutMs: 0, rapidReset: { maxResets: 100, windowMs: 1000 } };

  it('serves h2c by handing every connection over; a throwing handler cuts only its stream and is counted', async () => {
    const throwing: Handler = (req, res) => {
      if (req.url === '/boom') throw new Error('handler bug');
      hello(req, res);
    };
    const { engine, port } = await start(throwing, { http2: 'h2c', maxHeaderCount: 100, http2Limits: h2Limits } as Partial<ServerConfig>);
    expect(engine.kind).toBe('h2c');
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    try {
      const ask = (path: string) =>
        new Promise<{ status: number; body: string } | { rst: number }>((resolve) => {
          const stream = session.request({ ':path': path });
          let status = 0;
          let body = '';
          stream.on('response', (h) => (status = Number(h[':status'])));
          stream.on('data', (c: Buffer) => (body += c.toString()));
          stream.on('error', () => undefined);
          stream.on('close', () => resolve(status === 0 ? { rst: stream.rstCode } : { status, body }));
          stream.end();
        });
      expect(await ask('/boom')).toEqual({ rst: http2.constants.NGHTTP2_INTERNAL_ERROR });
      expect(await ask('/after')).toEqual({ status: 200, body: 'hello /after' });
      expect(engine.stats()).toMatchObject({ handlerErrors: 1, h2Sessions: 1, h2ActiveSessions: 1, h2ClientResets: 0 });
    } finally {
      session.destroy();
    }
    await until(() => engine.stats().h2ActiveSessions === 0, { message: 'the session closed with its client' });
  });
});
