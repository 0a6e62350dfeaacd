import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium package: the only browser the tests drive (playwright never downloads one here). */
export const CHROMIUM = '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  // --no-sandbox: the tests run as root in a container, where chromium's sandbox cannot start.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

export interface PageWatch {
  /** console messages of type error, uncaught page errors and failed requests, in order */
  problems: string[];
  /** every URL the page requested */
  requests: string[];
  /** requests whose URL is not under one of the allowed prefixes */
  external(): string[];
}

/**
 * Records what a page does that a self-contained page must not: console errors, uncaught exceptions, failed
 * requests, and requests to anything but `allowed` (URL prefixes; data: URLs are the page's own bytes).
 */
export function watchPage(page: Page, allowed: string[]): PageWatch {
  const watch: PageWatch = {
    problems: [],
    requests: [],
    external: () => watch.requests.filter((u) => !u.startsWith('data:') && !allowed.some((a) => u.startsWith(a))),
  };
  page.on('console', (m) => {
    if (m.type() === 'error') watch.problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => watch.problems.push(`page error: ${e.message}`));
  page.on('request', (r) => watch.requests.push(r.url()));
  page.on('requestfailed', (r) => {
    // The event stream is cut when the page closes: not a failure of the page.
    if (!r.url().endsWith('/dashboard/events')) watch.problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`);
  });
  return watch;
}

/** Whether a canvas has any non-transparent pixel: Chart.js drew something into it. */
export function canvasDrawn(page: Page, selector: string): Promise<boolean> {
  return page.$eval(selector, (el) => {
    const c = el as HTMLCanvasElement;
    if (c.width === 0 || c.height === 0) return false;
    const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
    return false;
  });
}
