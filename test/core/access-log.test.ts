import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import http, { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../core/config/validator.js';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { variantNames } from '../../core/variants.js';
import { startCli } from '../support/cli.js';
import { request } from '../support/http.js';
import { needService } from '../support/services.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { eventually, until } from '../support/wait.js';
import { TestCa } from '../tls/certs.js';
import { closeSession, h1, h2, h2session } from '../tls/clients.js';

/** The access log is the operator's record of every answer; with request-id on it carries the id to join on. */
interface Line {
  msg: string;
  url?: string;
  status?: number;
  requestId?: string;
}
const lines: Line[] = [];
/** the lines as written: JSON.parse keeps the last of two equal keys, the text shows both */
const raw: string[] = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(chunk.toString());
      lines.push(JSON.parse(chunk.toString()) as Line);
      done();
    },
  }),
);

// An upstream whose only target refuses connections: its active check logs "target unhealthy" at once.
const closed = http.createServer();

let gw: RunningGateway;
beforeAll(async () => {
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  gw = await startGateway(
    {
      logging: { level: 'info', accessLog: true },
      upstreams: {
        gone: { targets: [`http://127.0.0.1:${deadPort}`], healthCheck: { active: { intervalMs: 50, timeoutMs: 500, unhealthyThreshold: 1 } } },
      },
      routes: [
        { path: '/gone', methods: ['GET'], upstream: 'gone' },
        { path: '/with-id', methods: ['GET'], response: { body: 'a' }, plugins: [{ name: 'request-id' }] },
        { path: '/without-id', methods: ['GET'], response: { body: 'b' } },
      ],
    },
    { logger },
  );
});
afterAll(() => gw?.close());

const accessLine = (url: string): Promise<Line> =>
  eventually(() => lines.find((l) => l.msg === 'access' && l.url === url), { timeoutMs: 5000, message: `no access-log line for ${url}` });

describe('access log', () => {
  it('carries the request id the client was given', async () => {
    const r = await request(`${gw.url}/with-id`);
    const id = r.headers['x-request-id'];
    expect(typeof id).toBe('string');
    const line = await accessLine('/with-id');
    expect(line.status).toBe(200);
    expect(line.requestId).toBe(id);
  });

  it('keeps a client-supplied id', async () => {
    await request(`${gw.url}/with-id?x=1`, { headers: { 'x-request-id': 'abc-123' } });
    expect((await accessLine('/with-id?x=1')).requestId).toBe('abc-123');
  });

  it('is the one line a request logs, with request-id on', async () => {
    await request(`${gw.url}/with-id?one=1`, { headers: { 'x-request-id': 'one-line-id' } });
    await accessLine('/with-id?one=1');
    // a later request's line: whatever the first one logs on its response's close has been written by then
    await request(`${gw.url}/without-id?after=1`);
    await accessLine('/without-id?after=1');
    expect(raw.filter((l) => l.includes('one-line-id'))).toHaveLength(1);
  });

  it('names the upstream once in an upstream line', async () => {
    const line = await eventually(() => raw.find((l) => l.includes('"target unhealthy"')), { timeoutMs: 10_000, message: 'no "target unhealthy" line' });
    expect(line.match(/"upstream":/g)).toHaveLength(1);
    expect(JSON.parse(line)).toMatchObject({ upstream: 'gone', level: 40 });
  });

  it('has no requestId field on a route without the plugin', async () => {
    await request(`${gw.url}/without-id`);
    expect((await accessLine('/without-id')).requestId).toBeUndefined();
  });
});

// certificates for the TLS case come from the openssl CLI
const openssl = needService('openssl');

/** One request on a fresh connection; what the client's socket counted (the gateway's bytes out and in). */
function counted(url: string, headers: Record<string, string> = {}): Promise<{ status: number; read: number; written: number }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers }, (res) => {
      res.resume();
      res.on('end', () => {
        const s = res.socket;
        resolve({ status: res.statusCode!, read: s.bytesRead, written: s.bytesWritten });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('access log fields (logging.accessLog)', () => {
  let up: RecordingUpstream;
  let dir: string;
  beforeAll(async () => {
    up = await startUpstream('up');
    dir = mkdtempSync(join(tmpdir(), 'gw-access-'));
  });
  afterAll(async () => {
    await up?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const routes = (): unknown[] => [{ path: '/static', methods: ['GET'], response: { body: 'static answer' } }];

  it.each(variantNames('server'))(
    'JSON by default (engine %s): client, method, url, route, upstream and its timings, status, exact bytes, user agent, protocol',
    async (engine) => {
      const file = join(dir, `default-${engine}.log`);
      const gw = await startGateway({
        variants: { server: engine },
        logging: { level: 'silent', accessLog: { file } },
        upstreams: { up: { targets: [up.url] } },
        routes: [...routes(), { path: '/up/*', methods: ['GET'], upstream: 'up' }],
      });
      try {
        const r = await counted(`${gw.url}/up/x?y=1`, { 'user-agent': 'probe/1.0' });
        expect(r.status).toBe(200);
        const line = await eventually(() => readLines(file).find((l) => l.url === '/up/x?y=1'), { timeoutMs: 5000, message: 'no line' });
        expect(line).toMatchObject({
          msg: 'access',
          client: '127.0.0.1',
          peer: '127.0.0.1',
          method: 'GET',
          route: 'GET /up/*',
          upstream: up.url,
          status: 200,
          userAgent: 'probe/1.0',
          protocol: 'HTTP/1.1',
          // what the client's socket wrote and read, byte for byte
          bytesIn: r.written,
          bytesOut: r.read,
        });
        expect(Date.parse(String(line.time))).toBeGreaterThan(Date.now() - 60_000);
        for (const k of ['ms', 'upstreamConnectMs', 'upstreamFirstByteMs', 'upstreamMs']) expect(typeof line[k], k).toBe('number');
        expect(line.upstreamMs as number).toBeGreaterThanOrEqual(line.upstreamFirstByteMs as number);
        expect(line.ms as number).toBeGreaterThanOrEqual(line.upstreamMs as number);
        // a route without an upstream has no upstream fields (left out, not null)
        await counted(`${gw.url}/static`);
        const plain = await eventually(() => readLines(file).find((l) => l.url === '/static'), { timeoutMs: 5000, message: 'no line' });
        expect(plain.upstream).toBeUndefined();
        expect(plain.upstreamMs).toBeUndefined();
        expect(plain.tls).toBeUndefined();
      } finally {
        await gw.close();
      }
    },
  );

  it('"combined": nginx combined lines, where no value can break a line or a quoted field', async () => {
    const combined = join(dir, 'combined.log');
    const gw = await startGateway({ logging: { level: 'silent', accessLog: { format: 'combined', file: combined } }, routes: routes() });
    try {
      const r = await counted(`${gw.url}/static`, { 'user-agent': 'evil"ag\tent\\', referer: 'https://ref.example/' });
      await until(() => readFileSync(combined, 'utf8').includes('GET /static'), { timeoutMs: 5000, message: 'no line' });
      const text = readFileSync(combined, 'utf8');
      expect(text.split('\n').filter(Boolean)).toHaveLength(1);
      expect(text).toMatch(
        new RegExp(
          String.raw`^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET /static HTTP/1\.1" 200 ${r.read} "https://ref\.example/" "evil\\x22ag\\x09ent\\x5c"\n$`,
        ),
      );
    } finally {
      await gw.close();
    }
  });

  it('a field list picks the JSON fields, a template the text, both reloadable', async () => {
    const file = join(dir, 'fields.log');
    const gw = await startGateway({ logging: { level: 'silent', accessLog: { fields: ['status', 'path'], file } }, routes: routes() });
    try {
      await counted(`${gw.url}/static?q=1`);
      await until(() => readLines(file).length === 1, { timeoutMs: 5000, message: 'no line' });
      expect(readLines(file)).toEqual([{ msg: 'access', status: 200, path: '/static' }]);
      const r = await gw.gateway.reload({
        logging: { level: 'silent', accessLog: { format: '$method ${path} -> $status $upstream', file } },
        routes: routes(),
      });
      expect(r.ok).toBe(true);
      await counted(`${gw.url}/nowhere`);
      await until(() => readFileSync(file, 'utf8').includes('GET /nowhere -> 404 -\n'), { timeoutMs: 5000, message: () => readFileSync(file, 'utf8') });
    } finally {
      await gw.close();
    }
  });

  it('sampleSuccess 0: answers below 400 are left out, errors are all logged', async () => {
    const file = join(dir, 'sampled.log');
    const gw = await startGateway({ logging: { level: 'silent', accessLog: { sampleSuccess: 0, fields: ['status', 'url'], file } }, routes: routes() });
    try {
      for (let i = 0; i < 5; i++) await counted(`${gw.url}/static`);
      await counted(`${gw.url}/missing`);
      await until(() => readLines(file).length === 1, { timeoutMs: 5000, message: 'no line' });
      // the 404 came last: had any 200 been logged, it would be in the file before it
      expect(readLines(file)).toEqual([{ msg: 'access', status: 404, url: '/missing' }]);
    } finally {
      await gw.close();
    }
  });

  it('reopen (SIGUSR2 in the CLI): after logrotate moved the file, lines go to a new file at the path', async () => {
    const file = join(dir, 'rotated.log');
    const gw = await startGateway({ logging: { level: 'silent', accessLog: { fields: ['url'], file } }, routes: routes() });
    try {
      await counted(`${gw.url}/static?before`);
      await until(() => readLines(file).length === 1, { timeoutMs: 5000, message: 'no line' });
      renameSync(file, `${file}.1`);
      gw.gateway.reopenLogs();
      await counted(`${gw.url}/static?after`);
      await until(() => existsSync(file) && readLines(file).length === 1, { timeoutMs: 5000, message: 'no new file' });
      expect(readLines(`${file}.1`)).toEqual([{ msg: 'access', url: '/static?before' }]);
      expect(readLines(file)).toEqual([{ msg: 'access', url: '/static?after' }]);
    } finally {
      await gw.close();
    }
  });

  it('lines still queued for the file when the gateway closes are written by the close', async () => {
    const file = join(dir, 'closing.log');
    const gw = await startGateway({ logging: { level: 'silent', accessLog: { fields: ['url'], file } }, routes: routes() });
    for (let i = 0; i < 3; i++) await counted(`${gw.url}/static?${i}`);
    await gw.close();
    // no wait: queued lines are written once 8 KiB are queued or a second passed, or by the close
    expect(readLines(file).map((l) => l.url)).toEqual(['/static?0', '/static?1', '/static?2']);
  });

  it("SIGUSR2 to the CLI's primary (server.workers 1): its worker reopens the file, and the gateway keeps serving", async () => {
    const file = join(dir, 'cli.log');
    const cli = await startCli({
      server: { workers: 1 },
      logging: { level: 'info', accessLog: { fields: ['url'], file } },
      routes: routes(),
    });
    try {
      expect((await request(`${cli.url}/static?before`)).status).toBe(200);
      await until(() => readLines(file).length === 1, { timeoutMs: 10_000, message: 'no line' });
      renameSync(file, `${file}.1`);
      cli.proc.kill('SIGUSR2');
      // the signal travels primary → worker; requests until the new file appears (each one lands in one of them)
      await until(
        async () => {
          await request(`${cli.url}/static?after`);
          return existsSync(file) && readLines(file).some((l) => l.url === '/static?after');
        },
        { timeoutMs: 10_000, message: () => `no new file; output:\n${cli.output()}` },
      );
      expect(readLines(`${file}.1`)[0]).toEqual({ msg: 'access', url: '/static?before' });
      expect(cli.proc.exitCode).toBeNull();
    } finally {
      await cli.stop();
    }
  }, 60_000);

  it.skipIf(!openssl.available)('on TLS: the TLS version and protocol; HTTP/2 streams have no per-request byte counts', async () => {
    const ca = new TestCa();
    const leaf = ca.leaf('localhost');
    const file = join(dir, 'tls.log');
    const gw = await startGateway({
      server: { host: '127.0.0.1', tls: { cert: leaf.cert, key: leaf.key } },
      logging: { level: 'silent', accessLog: { fields: ['url', 'tls', 'protocol', 'bytesIn', 'bytesOut'], file } },
      routes: routes(),
    });
    const session = await h2session(`https://localhost:${gw.port}`, ca.caPem);
    try {
      expect((await h1(`https://localhost:${gw.port}/static?h1`, ca.caPem)).status).toBe(200);
      expect((await h2(session, '/static?h2')).status).toBe(200);
      await until(() => readLines(file).length === 2, { timeoutMs: 5000, message: () => readFileSync(file, 'utf8') });
      const byUrl = new Map(readLines(file).map((l) => [l.url, l]));
      expect(byUrl.get('/static?h1')).toMatchObject({ tls: 'TLSv1.3', protocol: 'HTTP/1.1' });
      expect(typeof byUrl.get('/static?h1')!.bytesOut).toBe('number');
      expect(byUrl.get('/static?h2')).toEqual({ msg: 'access', url: '/static?h2', tls: 'TLSv1.3', protocol: 'HTTP/2.0' });
    } finally {
      await closeSession(session);
      await gw.close();
      rmSync(ca.dir, { recursive: true, force: true });
    }
  });

  it('a config naming an unknown field is refused with its path', () => {
    const bad = validateConfig({ logging: { accessLog: '$client $stauts' } });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors.join('\n')).toMatch(/\/logging\/accessLog: unknown field "\$stauts"/);
    const noField = validateConfig({ logging: { accessLog: { format: 'plain text' } } });
    if (!noField.ok) expect(noField.errors.join('\n')).toMatch(/\/logging\/accessLog\/format: must be "json", "combined", or a template/);
    expect(noField.ok).toBe(false);
    const wrongShape = validateConfig({ logging: { accessLog: 5 } });
    expect(wrongShape.ok ? [] : wrongShape.errors).toEqual([
      '/logging/accessLog: must be true, false, "json", "combined", a template naming $fields, a list of field names, or an object (format, fields, sampleSuccess, file)',
    ]);
    const badFields = validateConfig({ logging: { accessLog: { fields: ['status', 'nope'] } } });
    expect(badFields.ok).toBe(false);
  });
});

function readLines(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
