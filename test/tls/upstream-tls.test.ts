import { execFile } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUpstreamClient } from '../../variants/upstream/h1/index.js';
import { needService } from '../support/services.js';
import { TestCa } from './certs.js';

/**
 * The h1 upstream client over TLS: it verifies the upstream's certificate against the trusted roots (system CAs
 * plus NODE_EXTRA_CA_CERTS) and sends SNI. Trust is per process, so the trusted case runs the client in a child
 * process started with NODE_EXTRA_CA_CERTS pointing at the test CA.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const H1 = join(ROOT, 'dist/variants/upstream/h1/index.js');

const openssl = needService('openssl');

describe.skipIf(!openssl.available)('h1 client to an https upstream', () => {
  let ca: TestCa;
  let server: https.Server;
  let port = 0;
  const sni: Array<string | false | null> = [];
  let handshakes = 0;

  beforeAll(async () => {
    ca = new TestCa();
    const leaf = ca.leaf('localhost');
    server = https.createServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, (req, res) => {
      sni.push((req.socket as TLSSocket).servername);
      res.setHeader('content-type', 'text/plain');
      res.end(`ok over tls ${req.url}`);
    });
    server.on('secureConnection', () => handshakes++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    ca?.cleanup();
  });

  it('refuses an upstream whose certificate it cannot verify (before any request byte is sent)', async () => {
    const client = createUpstreamClient(new URL(`https://localhost:${port}`), { connectTimeoutMs: 2000, maxSockets: 2, maxIdleSockets: 2, idleMs: 5000 });
    const before = sni.length;
    await expect(
      client.request({
        method: 'GET',
        path: '/x',
        headers: { host: `localhost:${port}` },
        body: null,
        headersTimeoutMs: 2000,
        idleTimeoutMs: 2000,
        abort: null,
      }),
    ).rejects.toMatchObject({ name: 'UpstreamClientError' });
    expect(sni.length).toBe(before);
    await client.close();
  });

  it('speaks HTTP/1.1 over a verified connection, with SNI, and reuses it', async () => {
    const script = `
      const { createUpstreamClient } = await import(${JSON.stringify(H1)});
      const c = createUpstreamClient(new URL('https://localhost:${port}'), { connectTimeoutMs: 2000, maxSockets: 2, maxIdleSockets: 2, idleMs: 5000 });
      const out = [];
      for (const p of ['/a', '/b']) {
        const r = await c.request({ method: 'GET', path: p, headers: { host: 'localhost:${port}' }, body: null, headersTimeoutMs: 2000, idleTimeoutMs: 2000, abort: null });
        out.push(Buffer.isBuffer(r.body) ? r.body.toString() : 'stream');
      }
      await c.close();
      console.log(JSON.stringify(out));`;
    // npm test builds first; the child process runs the compiled client
    expect(existsSync(H1), `${H1} missing: run npm run build`).toBe(true);
    const handshakesBefore = handshakes;
    const stdout = await new Promise<string>((res, rej) => {
      execFile(
        process.execPath,
        ['--input-type=module', '-e', script],
        { env: { ...process.env, NODE_EXTRA_CA_CERTS: ca.caCert }, timeout: 15_000 },
        (err, out, errOut) => (err ? rej(new Error(`${err.message}\n${errOut}`)) : res(out)),
      );
    });
    expect(JSON.parse(stdout.trim())).toEqual(['ok over tls /a', 'ok over tls /b']);
    expect(sni.slice(-2)).toEqual(['localhost', 'localhost']);
    // both requests went over one kept-alive TLS connection
    expect(handshakes - handshakesBefore).toBe(1);
  });
});
