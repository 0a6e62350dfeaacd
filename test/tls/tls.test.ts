import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/base/errors.js';
import { validateConfig } from '../../core/config/validator.js';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { variantNames } from '../../core/variants.js';
import { needService } from '../support/services.js';
import { TestCa, type Leaf } from './certs.js';
import { closeSession, h1, h2, h2session, handshake } from './clients.js';

const execFileP = promisify(execFile);
// Certificates come from the openssl CLI; curl is a second, independent TLS client for one check.
const openssl = needService('openssl');
const curl = needService('curl');

/** The listener suites run on every server engine; the validation suite does not start one. */
const ENGINES = variantNames('server');

function config(tls: Record<string, unknown>, server: Record<string, unknown> = {}, engine = 'node-http') {
  return {
    // a refused reload (a missing certificate, below) logs by design; the reload result is what is asserted
    logging: { level: 'silent' },
    variants: { server: engine },
    server: { host: '127.0.0.1', tls, ...server },
    routes: [{ path: '/hello', response: { status: 200, body: 'hello over tls' } }],
  };
}

describe.skipIf(!openssl.available).each(ENGINES)('TLS termination (engine %s)', (engine) => {
  let ca: TestCa;
  let main: Leaf;
  let alpha: Leaf;
  let wild: Leaf;
  let gw: RunningGateway;

  beforeAll(async () => {
    ca = new TestCa();
    main = ca.leaf('localhost');
    alpha = ca.leaf('alpha.test');
    wild = ca.leaf('any.beta.test', ['*.beta.test']);
    gw = await startGateway(
      config(
        {
          cert: main.cert,
          key: main.key,
          sni: { 'alpha.test': { cert: alpha.cert, key: alpha.key }, '*.beta.test': { cert: wild.cert, key: wild.key } },
        },
        {},
        engine,
      ),
    );
  });

  afterAll(async () => {
    await gw?.close();
    ca?.cleanup();
  });

  it('serves HTTPS to a client that verifies the server against the CA', async () => {
    expect(gw.url.startsWith('https://')).toBe(true);
    const r = await h1(`https://localhost:${gw.port}/hello`, ca.caPem);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('hello over tls');
    // A client that does not trust the CA refuses the connection.
    await expect(h1(`https://localhost:${gw.port}/hello`, Buffer.from(''))).rejects.toThrow(/certificate/i);
  });

  it.skipIf(!curl.available)('curl --cacert verifies the chain and gets the response (HTTP/2 where curl supports it)', async () => {
    // Async: the gateway serves from this process, a synchronous spawn would block it.
    const { stdout } = await execFileP('curl', [
      '-sS',
      '--max-time',
      '10',
      '--cacert',
      ca.caCert,
      '--resolve',
      `localhost:${gw.port}:127.0.0.1`,
      '-w',
      '\\n%{http_version}',
      `https://localhost:${gw.port}/hello`,
    ]);
    const [body, version] = stdout.split('\n');
    expect(body).toBe('hello over tls');
    expect(['1.1', '2']).toContain(version);
  });

  it('ALPN negotiates h2 and falls back to http/1.1 on the same listener', async () => {
    expect((await handshake(gw.port, { ca: ca.caPem, alpn: ['h2', 'http/1.1'] })).alpn).toBe('h2');
    expect((await handshake(gw.port, { ca: ca.caPem, alpn: ['http/1.1'] })).alpn).toBe('http/1.1');
    // A client without ALPN speaks HTTP/1.1 (node-http: Node's allowHTTP1 path; own: its own connection).
    expect((await handshake(gw.port, { ca: ca.caPem })).alpn).toBe(false);
    const r = await h1(`https://localhost:${gw.port}/hello`, ca.caPem);
    expect(r.body.toString()).toBe('hello over tls');
  });

  it('SNI picks the certificate for the name (exact and wildcard), the default otherwise, with h2 on each', async () => {
    const a = await handshake(gw.port, { ca: ca.caPem, servername: 'alpha.test', alpn: ['h2', 'http/1.1'] });
    expect(a.fingerprint256).toBe(alpha.fingerprint256);
    expect(a.alpn).toBe('h2');
    const b = await handshake(gw.port, { ca: ca.caPem, servername: 'x.beta.test', alpn: ['h2'] });
    expect(b.fingerprint256).toBe(wild.fingerprint256);
    expect(b.alpn).toBe('h2');
    const d = await handshake(gw.port, { ca: ca.caPem, servername: 'localhost' });
    expect(d.fingerprint256).toBe(main.fingerprint256);
    // The wildcard covers exactly one label.
    const deep = await handshake(gw.port, { ca: ca.caPem, servername: 'a.b.beta.test' }).catch((e: Error) => e);
    expect(deep instanceof Error ? deep.message : (deep as { fingerprint256: string }).fingerprint256).not.toBe(wild.fingerprint256);
    // A request to an SNI name is verified against that name.
    const s = await h2session(`https://alpha.test:${gw.port}`, ca.caPem, { host: '127.0.0.1', servername: 'alpha.test' } as never);
    try {
      const r = await h2(s, '/hello');
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('hello over tls');
    } finally {
      await closeSession(s);
    }
  });

  it('counts failed TLS handshakes in the stats', async () => {
    const before = (gw.gateway.exportMetrics().sections.tls as { tlsHandshakeErrors: number }).tlsHandshakeErrors;
    // Cleartext HTTP to the TLS port: not a ClientHello.
    await new Promise<void>((resolve) => {
      const sock = net.connect(gw.port, '127.0.0.1', () => sock.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n'));
      sock.on('error', () => undefined);
      sock.on('close', () => resolve());
      sock.resume();
    });
    const stats = gw.gateway.exportMetrics().sections.tls as { tlsHandshakeErrors: number; listener: string };
    expect(stats.listener).toBe('h2');
    expect(stats.tlsHandshakeErrors).toBe(before + 1);
  });

  it('a certificate swapped by hot reload is presented to new connections only', async () => {
    const s = await h2session(`https://localhost:${gw.port}`, ca.caPem);
    try {
      expect((await h2(s, '/hello')).status).toBe(200);
      const oldFp = (s.socket as unknown as { getPeerCertificate(): { fingerprint256: string } }).getPeerCertificate().fingerprint256;
      expect(oldFp).toBe(main.fingerprint256);

      const next = ca.leaf('localhost');
      const alpha2 = ca.leaf('alpha.test');
      const r = await gw.reload(config({ cert: next.cert, key: next.key, sni: { 'alpha.test': { cert: alpha2.cert, key: alpha2.key } } }, {}, engine));
      expect(r).toMatchObject({ ok: true });

      expect((await handshake(gw.port, { ca: ca.caPem })).fingerprint256).toBe(next.fingerprint256);
      expect((await handshake(gw.port, { ca: ca.caPem, servername: 'alpha.test' })).fingerprint256).toBe(alpha2.fingerprint256);
      // The wildcard entry was removed by the reload: that name now gets the default certificate.
      const gone = await handshake(gw.port, { ca: ca.caPem, servername: 'x.beta.test' }).catch(() => null);
      expect(gone?.fingerprint256 ?? null).not.toBe(wild.fingerprint256);
      // The session opened before the reload keeps its certificate and keeps working.
      expect((await h2(s, '/hello')).status).toBe(200);
      expect((s.socket as unknown as { getPeerCertificate(): { fingerprint256: string } }).getPeerCertificate().fingerprint256).toBe(oldFp);
      main = next;
    } finally {
      await closeSession(s);
    }
  });

  it('a reload naming a missing certificate is rejected and the current certificate keeps serving', async () => {
    const r = await gw.reload(config({ cert: '/nonexistent/gw.pem', key: main.key }, {}, engine));
    expect(r.ok).toBe(false);
    expect(r.errors).toContain('/server/tls/cert: cannot read /nonexistent/gw.pem (ENOENT)');
    expect((await handshake(gw.port, { ca: ca.caPem })).fingerprint256).toBe(main.fingerprint256);
    expect((await h1(`https://localhost:${gw.port}/hello`, ca.caPem)).status).toBe(200);
  });
});

describe.skipIf(!openssl.available)('TLS config validation', () => {
  let ca: TestCa;
  let leaf: Leaf;
  beforeAll(() => {
    ca = new TestCa();
    leaf = ca.leaf('localhost');
  });
  afterAll(() => ca?.cleanup());

  it('names the JSON path of every missing or unreadable PEM file', () => {
    const v = validateConfig(config({ cert: '/x.pem', key: leaf.key, ca: ca.caKey + '.missing', sni: { 'a.test': { cert: leaf.cert, key: '/nope/k.pem' } } }));
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.errors).toEqual(
      expect.arrayContaining([
        '/server/tls/cert: cannot read /x.pem (ENOENT)',
        `/server/tls/ca: cannot read ${ca.caKey}.missing (ENOENT)`,
        '/server/tls/sni/a.test/key: cannot read /nope/k.pem (ENOENT)',
      ]),
    );
    // A directory is unreadable as a file.
    const d = validateConfig(config({ cert: ca.dir, key: leaf.key }));
    expect(d.ok ? [] : d.errors).toEqual([`/server/tls/cert: cannot read ${ca.dir} (EISDIR)`]);
  });

  it('rejects a key that does not match its certificate, and contradictory listener options', () => {
    const other = ca.leaf('other');
    const v = validateConfig(config({ cert: leaf.cert, key: other.key }));
    expect(v.ok ? [] : v.errors).toEqual([expect.stringMatching(/^\/server\/tls: invalid certificate\/key \(.*\)$/)]);
    const h2c = validateConfig(config({ cert: leaf.cert, key: leaf.key }, { http2: 'h2c' }));
    expect(h2c.ok ? [] : h2c.errors).toEqual(['/server/http2: "h2c" is cleartext HTTP/2 and cannot be combined with server.tls']);
    const noTls = validateConfig({ server: { hsts: {}, redirectHttp: { port: 0 } } });
    expect(noTls.ok ? [] : noTls.errors).toEqual([
      '/server/redirectHttp: needs server.tls (the redirect points at the TLS listener)',
      '/server/hsts: needs server.tls (browsers ignore HSTS on cleartext responses)',
    ]);
    const badName = validateConfig(config({ cert: leaf.cert, key: leaf.key, sni: { 'a b': { cert: leaf.cert, key: leaf.key } } }));
    expect(badName.ok).toBe(false);
  });

  it('startGateway refuses to start without its certificate', async () => {
    await expect(startGateway(config({ cert: '/missing/cert.pem', key: leaf.key }))).rejects.toThrow(ConfigError);
    await expect(startGateway(config({ cert: '/missing/cert.pem', key: leaf.key }))).rejects.toThrow(
      '/server/tls/cert: cannot read /missing/cert.pem (ENOENT)',
    );
  });
});

describe.skipIf(!openssl.available).each(ENGINES)('HSTS and the HTTP→HTTPS redirect listener (engine %s)', (engine) => {
  let ca: TestCa;
  let gw: RunningGateway;
  beforeAll(async () => {
    ca = new TestCa();
    const leaf = ca.leaf('localhost');
    gw = await startGateway(config({ cert: leaf.cert, key: leaf.key }, { hsts: { maxAgeS: 600, includeSubDomains: true }, redirectHttp: { port: 0 } }, engine));
  });
  afterAll(async () => {
    await gw?.close();
    ca?.cleanup();
  });

  it('adds Strict-Transport-Security to TLS responses on both protocols, errors included', async () => {
    const r1 = await h1(`https://localhost:${gw.port}/hello`, ca.caPem);
    expect(r1.headers['strict-transport-security']).toBe('max-age=600; includeSubDomains');
    const s = await h2session(`https://localhost:${gw.port}`, ca.caPem);
    try {
      expect((await h2(s, '/hello')).headers['strict-transport-security']).toBe('max-age=600; includeSubDomains');
      const miss = await h2(s, '/missing');
      expect(miss.status).toBe(404);
      expect(miss.headers['strict-transport-security']).toBe('max-age=600; includeSubDomains');
    } finally {
      await closeSession(s);
    }
  });

  it('answers cleartext requests with 308 to the same path on https, and 400 without a usable Host', async () => {
    const port = gw.gateway.redirectPort!;
    expect(port).toBeGreaterThan(0);
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/a/b?c=1', headers: { host: 'example.test:8080' }, agent: false }, resolve).on('error', reject);
    });
    res.resume();
    expect(res.statusCode).toBe(308);
    expect(res.headers.location).toBe(`https://example.test:${gw.port}/a/b?c=1`);
    const bad = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/', headers: { host: 'evil.test/@x' }, agent: false }, resolve).on('error', reject);
    });
    bad.resume();
    expect(bad.statusCode).toBe(400);
    expect((gw.gateway.exportMetrics().sections.tls as { redirects: number }).redirects).toBe(1);
  });
});
