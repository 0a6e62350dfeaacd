import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../core/config/validator.js';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { CLIENT_VARIANTS } from '../proxy/helpers.js';
import { startCli } from '../support/cli.js';
import { load, request } from '../support/http.js';
import { needService } from '../support/services.js';
import { until } from '../support/wait.js';
import { TestCa, type Leaf } from './certs.js';

/**
 * Upstream TLS end to end: the real gateway in front of real https upstreams on 127.0.0.1 that demand a client
 * certificate, with certificates made by openssl for this run. Every failure mode the gateway must refuse (no
 * client certificate, a CA it was not told to trust, a name mismatch, an expired certificate) is a 502 and a
 * warning naming the upstream and the reason, and no request ever reaches the upstream's application.
 */
const openssl = needService('openssl');

interface Upstream {
  server: https.Server;
  port: number;
  /** requests the application saw (a refused handshake never gets here) */
  arrivals: number;
}

async function startHttps(leaf: Leaf, clientCa: Buffer): Promise<Upstream> {
  const u: Upstream = { server: null as unknown as https.Server, port: 0, arrivals: 0 };
  u.server = https.createServer(
    { cert: readFileSync(leaf.cert), key: readFileSync(leaf.key), ca: clientCa, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      u.arrivals++;
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ client: peer.subject?.CN ?? null, servername: (req.socket as TLSSocket).servername, host: req.headers.host }));
    },
  );
  u.server.on('tlsClientError', () => {});
  await new Promise<void>((r) => u.server.listen(0, '127.0.0.1', r));
  u.port = (u.server.address() as AddressInfo).port;
  return u;
}

async function stopHttps(u: Upstream | undefined): Promise<void> {
  if (u === undefined) return;
  u.server.closeAllConnections();
  await new Promise<void>((r) => u.server.close(() => r()));
}

interface LogLine {
  level: number;
  msg: string;
  upstream?: string;
  reason?: string;
}

function capture(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'warn' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as LogLine);
        done();
      },
    }),
  );
  return { logger, lines };
}

describe.skipIf(!openssl.available)('upstream TLS: CA, client certificate, SNI and name checks', () => {
  let ca: TestCa;
  let otherCa: TestCa;
  let good: Upstream;
  let foreign: Upstream;
  let expired: Upstream;
  let client: Leaf;
  let caFile: string;

  beforeAll(() => {
    ca = new TestCa();
    otherCa = new TestCa();
    client = ca.leaf('gateway', ['gateway'], 'clientAuth');
    caFile = ca.caCert;
  });
  beforeAll(async () => {
    good = await startHttps(ca.leaf('up.test'), ca.caPem);
    foreign = await startHttps(otherCa.leaf('up.test'), ca.caPem);
    expired = await startHttps(ca.expiredLeaf('up.test'), ca.caPem);
  });
  afterAll(async () => {
    await Promise.all([stopHttps(good), stopHttps(foreign), stopHttps(expired)]);
    ca?.cleanup();
    otherCa?.cleanup();
  });

  function upstreams(): Record<string, unknown> {
    const clientTls = { ca: caFile, cert: client.cert, key: client.key, servername: 'up.test' };
    const one = (port: number, tls: Record<string, unknown>): Record<string, unknown> => ({
      targets: [`https://127.0.0.1:${port}`],
      tls,
      retries: { count: 0 },
    });
    return {
      good: one(good.port, clientTls),
      noClientCert: one(good.port, { ca: caFile, servername: 'up.test' }),
      unknownCa: one(foreign.port, clientTls),
      mismatch: one(good.port, { ...clientTls, servername: 'wrong.test' }),
      expired: one(expired.port, clientTls),
    };
  }
  const routes = ['good', 'noClientCert', 'unknownCa', 'mismatch', 'expired'].map((u) => ({ path: `/${u}`, upstream: u }));

  for (const variant of CLIENT_VARIANTS) {
    it(`${variant}: accepted with the right client certificate; 502 without one, for an unknown CA, a name mismatch, an expired certificate`, async () => {
      const { logger, lines } = capture();
      const gw = await startGateway(
        { server: { host: '127.0.0.1' }, admin: { enabled: false }, variants: { upstream: variant }, upstreams: upstreams(), routes },
        { logger },
      );
      try {
        const before = { good: good.arrivals, foreign: foreign.arrivals, expired: expired.arrivals };
        const ok = await request(`${gw.url}/good`);
        expect(ok.status).toBe(200);
        expect(JSON.parse(ok.body)).toEqual({ client: 'gateway', servername: 'up.test', host: `127.0.0.1:${good.port}` });

        const reasons: Record<string, RegExp> = {
          noClientCert: /certificate required/i,
          unknownCa: /unable to (verify|get)|self.signed|issuer/i,
          mismatch: /altnames|wrong\.test|does not match/i,
          expired: /expired/i,
        };
        for (const [name, reason] of Object.entries(reasons)) {
          const r = await request(`${gw.url}/${name}`);
          expect(r.status, name).toBe(502);
          // TLS 1.3: the upstream checks our certificate after our handshake finished and answers with an alert;
          // undici reports only "other side closed" (a reset, logged at debug), the other clients the alert
          if (name === 'noClientCert' && variant === 'undici') continue;
          const line = lines.find((l) => l.upstream === name && l.level === 40);
          expect(line, `a warning for ${name}: ${JSON.stringify(lines)}`).toBeDefined();
          expect(line!.msg).toContain(`upstream ${name}`);
          expect(line!.reason).toMatch(reason);
        }
        // none of the refused connections reached an application
        expect(good.arrivals - before.good).toBe(1);
        expect(foreign.arrivals - before.foreign).toBe(0);
        expect(expired.arrivals - before.expired).toBe(0);
      } finally {
        await gw.close();
      }
    });
  }

  it('shows the certificates’ days until expiry on /metrics and /stats (the upstream’s and the client certificate)', async () => {
    const gw = await startGateway({ server: { host: '127.0.0.1' }, admin: { enabled: true, host: '127.0.0.1' }, upstreams: upstreams(), routes });
    try {
      expect((await request(`${gw.url}/good`)).status).toBe(200);
      const metrics = (await request(`${gw.adminUrl}/metrics`)).body;
      // TestCa certificates are valid for 2 days
      const peer = metrics.match(
        new RegExp(`gateway_upstream_target_tls_cert_expiry_days\\{upstream="good",target="https://127.0.0.1:${good.port}"\\} ([0-9.]+)`),
      );
      expect(peer, metrics).not.toBeNull();
      expect(Number(peer![1])).toBeGreaterThan(1.9);
      expect(Number(peer![1])).toBeLessThanOrEqual(2);
      const own = metrics.match(/gateway_upstream_tls_client_cert_expiry_days\{upstream="good"\} ([0-9.]+)/);
      expect(own, metrics).not.toBeNull();
      expect(Number(own![1])).toBeGreaterThan(1.9);
      const stats = JSON.parse((await request(`${gw.adminUrl}/stats`)).body) as {
        workers: Array<{ upstreams: Record<string, { tls: { clientCertExpiresInDays: number }; targets: Array<{ tlsCertExpiresInDays: number | null }> }> }>;
      };
      const u = stats.workers[0]!.upstreams.good!;
      expect(u.tls.clientCertExpiresInDays).toBeGreaterThan(1.9);
      expect(u.targets[0]!.tlsCertExpiresInDays).toBeGreaterThan(1.9);
    } finally {
      await gw.close();
    }
  });

  it('a 2-worker cluster reports the soonest expiry, not the sum over workers', async () => {
    const gw = await startCli({
      server: { host: '127.0.0.1', workers: 2 },
      // startCli reads the listening ports from the info lines
      logging: { level: 'info', accessLog: false },
      upstreams: { good: (upstreams() as { good: unknown }).good },
      routes: [{ path: '/good', upstream: 'good' }],
    });
    try {
      for (let i = 0; i < 4; i++) expect((await request(`${gw.url}/good`, { agent: false })).status).toBe(200);
      const metrics = (await request(`${gw.adminUrl}/metrics`)).body;
      const own = metrics.match(/gateway_upstream_tls_client_cert_expiry_days\{upstream="good"\} ([0-9.]+)/);
      expect(own, metrics).not.toBeNull();
      // each worker reports ~2 days: summed it would read ~4
      expect(Number(own![1])).toBeGreaterThan(1.9);
      expect(Number(own![1])).toBeLessThanOrEqual(2);
      const peer = metrics.match(/gateway_upstream_target_tls_cert_expiry_days\{upstream="good",[^}]*\} ([0-9.]+)/);
      expect(peer, metrics).not.toBeNull();
      expect(Number(peer![1])).toBeLessThanOrEqual(2);
    } finally {
      await gw.stop();
    }
  }, 70_000);

  it('active health checks connect with the upstream’s TLS settings (CA, client certificate, SNI)', async () => {
    const { good: base } = upstreams() as { good: Record<string, unknown> };
    const gw = await startGateway({
      server: { host: '127.0.0.1' },
      admin: { enabled: false },
      logging: { level: 'silent' },
      upstreams: { good: { ...base, healthCheck: { active: { path: '/', intervalMs: 20, healthyThreshold: 1, unhealthyThreshold: 1 } } } },
      routes: [{ path: '/good', upstream: 'good' }],
    });
    try {
      const before = good.arrivals;
      // a check that reaches the application completed the mTLS handshake (system roots alone would refuse it)
      await until(() => good.arrivals >= before + 3, { message: () => `${good.arrivals - before} checks arrived` });
      const m = gw.gateway.server.currentRuntime.upstreams!;
      const target = (m.stats().good as { targets: Array<{ activeHealthy: boolean }> }).targets[0]!;
      expect(target.activeHealthy).toBe(true);
      expect((await request(`${gw.url}/good`)).status).toBe(200);
    } finally {
      await gw.close();
    }
  });

  it('refuses a certificate file that is a directory or not PEM, naming the JSON path', () => {
    const dir = join(ca.dir, 'a-directory');
    mkdirSync(dir, { recursive: true });
    const notPem = join(ca.dir, 'not.pem');
    writeFileSync(notPem, 'this is no certificate\n');
    const errorsOf = (upstream: Record<string, unknown>): string[] => {
      const v = validateConfig({ upstreams: { api: { targets: ['https://127.0.0.1:1'], ...upstream } }, routes: [{ path: '/', upstream: 'api' }] });
      return v.ok ? [] : v.errors;
    };
    expect(errorsOf({ tls: { ca: dir, cert: notPem, key: client.key } })).toEqual([
      `/upstreams/api/tls/ca: ${dir} is a directory, not a PEM file`,
      `/upstreams/api/tls/cert: ${notPem} is not a PEM file (no "-----BEGIN" line)`,
    ]);
    // a key that is not the certificate's
    expect(errorsOf({ tls: { cert: client.cert, key: ca.caKey } })).toEqual([
      expect.stringMatching(/^\/upstreams\/api\/tls: invalid certificate\/key \(.*mismatch/),
    ]);
    expect(errorsOf({ tls: { cert: client.cert } })).toEqual(['/upstreams/api/tls: must have property key when property cert is present']);
  });

  it('a client certificate swapped on disk is used after a reload, with no request failing meanwhile', async () => {
    const dir = join(ca.dir, 'swap');
    mkdirSync(dir, { recursive: true });
    const cert = join(dir, 'client.pem');
    const key = join(dir, 'client.key');
    copyFileSync(client.cert, cert);
    copyFileSync(client.key, key);
    const raw = {
      server: { host: '127.0.0.1' },
      admin: { enabled: false },
      upstreams: { good: { targets: [`https://127.0.0.1:${good.port}`], tls: { ca: caFile, cert, key, servername: 'up.test' } } },
      routes: [{ path: '/good', upstream: 'good' }],
    };
    let gw: RunningGateway | null = null;
    try {
      gw = await startGateway(raw);
      const url = gw.url;
      expect(JSON.parse((await request(`${url}/good`)).body).client).toBe('gateway');
      const renewed = ca.leaf('gateway-renewed', ['gateway-renewed'], 'clientAuth');
      // requests keep flowing while the files change and the reload swaps the generation
      const traffic = load(`${url}/good`, 400, 4);
      await until(() => good.arrivals > 20, { message: 'traffic started' });
      copyFileSync(renewed.cert, cert);
      copyFileSync(renewed.key, key);
      const result = await gw.reload(raw);
      expect(result.errors).toEqual([]);
      const { statuses, errors } = await traffic;
      expect(errors).toEqual([]);
      expect([...statuses]).toEqual([[200, 400]]);
      expect(JSON.parse((await request(`${url}/good`)).body).client).toBe('gateway-renewed');
    } finally {
      await gw?.close();
    }
  });
});
