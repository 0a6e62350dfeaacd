import type { ChildProcess } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/scenario/paths.js';
import { spawnPeer } from '../../scripts/scenario/peers/index.js';
import { freePort, stopProcess, tail, waitReady } from '../../scripts/scenario/processes.js';

/** Raw bytes in, everything the peer answers until it closes or `until` matches. */
function exchange(port: number, bytes: string, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    const done = () => {
      s.destroy();
      resolve(got);
    };
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (until.test(got)) done();
    });
    s.on('end', done);
    s.on('error', reject);
    s.write(bytes);
  });
}

// The floor peer is measured as the least a Node proxy that reads what it forwards costs; these check that it
// does forward correctly (a floor that cheats on framing would measure nothing).
describe('the floor peer', () => {
  let upstream: Server;
  let peer: ChildProcess;
  let port: number;
  const seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders; body: string }> = [];

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        const answer = `${req.method} ${req.url} ${body}`;
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(answer) });
        res.end(req.method === 'HEAD' ? undefined : answer);
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    port = await freePort();
    const out = tail();
    peer = spawnPeer('floor', {
      port,
      upstreamPort: (upstream.address() as { port: number }).port,
      prefixes: ['/api', '/users'],
      cpus: [],
      dir: ROOT,
      nodeArgs: [],
      spawn: { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT },
    });
    peer.stdout?.on('data', (d: Buffer) => out.push(d));
    peer.stderr?.on('data', (d: Buffer) => out.push(d));
    await waitReady(peer, { port }, 20_000, () => `floor:\n${out.text()}`);
  }, 30_000);

  afterAll(async () => {
    if (peer !== undefined) await stopProcess(peer, 3000);
    await new Promise<void>((r) => upstream.close(() => r()));
  });

  it('answers pipelined requests in order, each forwarded with X-Forwarded-For and its body', async () => {
    seen.length = 0;
    const got = await exchange(
      port,
      'GET /api/a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n' +
        'POST /users/7 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello' +
        'HEAD /api/b HTTP/1.1\r\nHost: h\r\n\r\n' +
        'GET /api/c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n',
      /GET \/api\/c $/,
    );
    const bodies = got.split('HTTP/1.1 200 OK').slice(1);
    expect(bodies).toHaveLength(4);
    expect(bodies[0]).toMatch(/GET \/api\/a\?x=1 $/);
    expect(bodies[1]).toMatch(/POST \/users\/7 hello$/);
    expect(bodies[2]).toMatch(/content-length: 12\r\n/i);
    expect(bodies[2]).toMatch(/\r\n\r\n$/);
    expect(bodies[3]).toMatch(/GET \/api\/c $/);
    expect(seen.map((s) => s.headers['x-forwarded-for'])).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1']);
  });

  it('answers 404 itself for a path outside its prefixes, and sends nothing upstream', async () => {
    seen.length = 0;
    const got = await exchange(port, 'GET /apix HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n', /\r\n\r\n/);
    expect(got).toMatch(/^HTTP\/1\.1 404 /);
    expect(seen).toHaveLength(0);
  });

  it('refuses what it cannot frame (Transfer-Encoding, two Content-Lengths) and forwards none of it', async () => {
    seen.length = 0;
    const te = await exchange(port, 'POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', /\r\n\r\n/);
    expect(te).toMatch(/^HTTP\/1\.1 501 /);
    const cl = await exchange(port, 'POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', /\r\n\r\n/);
    expect(cl).toMatch(/^HTTP\/1\.1 400 /);
    expect(seen).toHaveLength(0);
  });
});
