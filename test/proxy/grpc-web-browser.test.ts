/**
 * gRPC-Web from a real browser: the `grpc-web` npm client, bundled at test time (rolldown, into a temp dir) with
 * the hand-written Msg codec, runs in Debian's chromium (playwright-core). The page comes from its own origin (a
 * static server on 127.0.0.1) and calls the gateway on another, so the browser also does the CORS preflight the
 * grpc-web headers cause. The gateway translates to gRPC toward a @grpc/grpc-js service on an h2c upstream.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { build } from 'rolldown';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { launchChromium, watchPage, type PageWatch } from '../support/browser.js';
import type { WebMsg } from '../support/grpc-web-msg.js';
import type { CallResult } from '../support/grpc-web-page.js';
import { grpc, startEchoServer, type GrpcServer } from '../support/grpc.js';
import { needService } from '../support/services.js';

const chromiumTool = needService('chromium');
const PAGE_ENTRY = resolve(import.meta.dirname, '../support/grpc-web-page.ts');

interface EchoPage {
  unary(base: string, format: 'text' | 'binary', m: WebMsg): Promise<CallResult>;
  serverStream(base: string, m: WebMsg): Promise<CallResult>;
}

describe.skipIf(!chromiumTool.available)('gRPC-Web from chromium through the gateway', () => {
  let svc: GrpcServer;
  let gw: RunningGateway;
  let site: Server;
  let siteOrigin: string;
  let dir: string;
  let browser: Browser;
  let page: Page;
  let watch: PageWatch;
  let gateway: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gw-grpc-web-'));
    await build({ input: PAGE_ENTRY, output: { dir, format: 'iife', entryFileNames: 'echo.js' }, platform: 'browser', write: true, logLevel: 'warn' });
    const script = await readFile(join(dir, 'echo.js'));
    site = createServer((req, res) => {
      if (req.url === '/echo.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
      else res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>grpc-web</title><script src="/echo.js"></script>');
    });
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    const sitePort = (site.address() as { port: number }).port;
    siteOrigin = `http://127.0.0.1:${sitePort}`;

    svc = await startEchoServer();
    gw = await startGateway({
      server: { host: '127.0.0.1' },
      admin: { enabled: false },
      logging: { level: 'silent', accessLog: false },
      plugins: [{ name: 'cors', options: { origins: [siteOrigin], exposedHeaders: ['grpc-status', 'grpc-message', 'x-detail'] } }],
      upstreams: { echo: { targets: [svc.url], protocol: 'h2c' } },
      routes: [{ path: '/gwtest.Echo/*', upstream: 'echo' }],
    });
    gateway = `http://127.0.0.1:${gw.port}`;

    browser = await launchChromium();
    page = await browser.newPage();
    watch = watchPage(page, [siteOrigin, gateway]);
    await page.goto(siteOrigin + '/');
    await page.waitForFunction(() => 'echo' in globalThis);
  });
  afterAll(async () => {
    await browser?.close();
    await gw?.close();
    await svc?.close();
    await new Promise((r) => site?.close(r));
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const unary = (format: 'text' | 'binary', m: WebMsg): Promise<CallResult> =>
    page.evaluate(([base, f, msg]) => (globalThis as unknown as { echo: EchoPage }).echo.unary(base, f, msg), [gateway, format, m] as const);
  const serverStream = (m: WebMsg): Promise<CallResult> =>
    page.evaluate(([base, msg]) => (globalThis as unknown as { echo: EchoPage }).echo.serverStream(base, msg), [gateway, m] as const);

  for (const format of ['text', 'binary'] as const) {
    it(`a unary call (${format}) gets its answer`, async () => {
      const r = await unary(format, { text: `hi-${format}`, data: Uint8Array.from([0, 7, 255]) });
      expect(r.code).toBe(0);
      expect(r.texts).toEqual([`echo:hi-${format}`]);
      expect(r.data).toEqual([[0, 7, 255]]);
    });
  }

  it('a server-streaming call gets every message, then OK', async () => {
    const r = await serverStream({ text: 'b', count: 25 });
    expect(r.texts).toEqual(Array.from({ length: 25 }, (_, i) => `b#${i}`));
    expect(r.code).toBe(0);
  });

  it("a service's error status reaches the browser with its message", async () => {
    const r = await unary('text', { status: grpc.status.NOT_FOUND });
    expect(r.code).toBe(grpc.status.NOT_FOUND);
    expect(r.details).toBe('status 5 as asked');
  });

  it('a stream that fails after messages: the messages, then the status', async () => {
    const r = await serverStream({ text: 'f', count: 2, status: grpc.status.ABORTED });
    expect(r.texts).toEqual(['f#0', 'f#1']);
    expect(r.code).toBe(grpc.status.ABORTED);
  });

  it('the page stayed on its two origins and logged no error', () => {
    expect(watch.external()).toEqual([]);
    expect(watch.problems).toEqual([]);
  });
});
