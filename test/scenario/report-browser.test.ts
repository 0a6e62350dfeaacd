/**
 * Issue 16: report.html in a real browser. A report rendered from a committed results.json (the harness's own
 * output, validated by the schema) is opened from disk in Debian's chromium: no console error, no request
 * beyond the file itself and its data: URIs, every chart an image that decoded.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { rerender } from '../../scripts/scenario/report/write.js';
import { launchChromium, watchPage } from '../support/browser.js';
import { needService } from '../support/services.js';

const chromiumTool = needService('chromium');
const ROOT = resolve(import.meta.dirname, '../..');

describe.skipIf(!chromiumTool.available)('report.html in chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-report-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is self-contained: no console error, no external request, charts decoded', async () => {
    // A two-variant comparison: all three charts (throughput, latency, ratio) are drawn.
    copyFileSync(join(ROOT, 'reports/latest/routers/results.json'), join(dir, 'results.json'));
    await rerender(dir);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    const url = pathToFileURL(join(dir, 'report.html')).href;

    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const watch = watchPage(page, [url]);
      await page.goto(url);
      await page.waitForLoadState('load');
      const images = await page.$$eval('figure img', (imgs) =>
        (imgs as HTMLImageElement[]).map((i) => ({ alt: i.getAttribute('alt'), complete: i.complete, width: i.naturalWidth, src: i.src.slice(0, 22) })),
      );
      expect(images.map((i) => i.alt)).toEqual(['throughput', 'latency', 'ratio']);
      for (const i of images) {
        expect(i.complete, i.alt ?? '').toBe(true);
        expect(i.width, i.alt ?? '').toBeGreaterThan(100);
        expect(i.src).toBe('data:image/png;base64,');
      }
      // the page's own text is there, not a blank document
      expect(await page.locator('h1').innerText()).not.toBe('');
      expect(watch.problems).toEqual([]);
      expect(watch.external()).toEqual([]);
      expect(html).not.toMatch(/(src|href)="https?:/);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
