/**
 * The dashboard's first state comes with the page: chromium's own headless `--dump-dom` and `--screenshot`
 * capture the page at its load event, before the event stream has said anything, and still show numbers.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { request } from '../support/http.js';
import { needService } from '../support/services.js';

const chromiumTool = needService('chromium');
const run = promisify(execFile);
const CHROMIUM = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--window-size=1280,1000'];

describe.skipIf(!chromiumTool.available)('the dashboard at load, in chromium --headless', () => {
  let gw: RunningGateway;
  let running = true;
  let traffic: Promise<void>;
  beforeAll(async () => {
    gw = await startGateway({ logging: { level: 'silent' }, routes: [{ name: 'hello', path: '/hello', methods: ['GET'], response: { body: 'hi' } }] });
    for (let i = 0; i < 30; i++) await request(`${gw.url}/hello`);
    // traffic while the browser loads the page: rates and percentiles have something to show
    traffic = (async () => {
      while (running) await request(`${gw.url}/hello`).catch(() => undefined);
    })();
  });
  afterAll(async () => {
    running = false;
    await traffic;
    await gw?.close();
  });

  it('--dump-dom: the numbers are on the page before the stream speaks', async () => {
    const { stdout } = await run('chromium', [...CHROMIUM, '--dump-dom', `${gw.adminUrl}/dashboard`], { timeout: 60_000, maxBuffer: 16 << 20 });
    const kpi = (id: string): string => new RegExp(`id="${id}">([^<]*)<`).exec(stdout)?.[1] ?? '(missing)';
    expect(Number(kpi('kpi-requests').replace(/,/g, ''))).toBeGreaterThanOrEqual(30);
    expect(kpi('kpi-rps')).toMatch(/^\d[\d,]*\.\d$/);
    expect(kpi('kpi-connections')).toMatch(/^\d+$/);
    // the routes table is filled from the same state
    expect(stdout).toMatch(/<td[^>]*>hello<\/td>/);
  }, 90_000);

  it('--screenshot: writes the page as a PNG', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'gw-shot-')), 'dashboard.png');
    await run('chromium', [...CHROMIUM, `--screenshot=${file}`, `${gw.adminUrl}/dashboard`], { timeout: 60_000 });
    const png = readFileSync(file);
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(png.length).toBeGreaterThan(20_000);
  }, 90_000);
});
