import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WebhookNotifier } from '../../core/alerts/webhook.js';
import type { WebhookNotifierConfig } from '../../core/config/types.js';
import { validateConfig } from '../../core/config/validator.js';
import { until } from '../support/wait.js';

/**
 * Alert webhooks as hostile input to the primary, where the alert engine runs in cluster mode: whatever the URL,
 * the headers or the receiver do, a delivery is an attempt that fails, never a throw, and the queue moves on.
 */
const webhook = (url: string, over: Partial<WebhookNotifierConfig> = {}): WebhookNotifierConfig => ({
  type: 'webhook',
  url,
  headers: {},
  name: 'gateway',
  timeoutMs: 2000,
  maxAttempts: 1,
  backoffMs: 1,
  maxBackoffMs: 1,
  maxQueue: 10,
  ...over,
});

function notifier(config: WebhookNotifierConfig): { n: WebhookNotifier; results: Array<string | null> } {
  const results: Array<string | null> = [];
  return { n: new WebhookNotifier(config, (_rule, error) => results.push(error)), results };
}

describe('a webhook URL or header that http.request refuses', () => {
  it('is a config error naming its JSON path (it used to be accepted, then throw at the first alert)', () => {
    const v = validateConfig({
      alerts: {
        rules: [{ name: 'a', metric: 'rps', below: 1 }],
        notify: [{ type: 'webhook', url: 'http://[::1/h', headers: { 'bad name': 'x', 'x-ok': 'a\nb' } }],
      },
    });
    expect(v.ok ? [] : v.errors).toEqual([
      '/alerts/notify/0/url: "http://[::1/h" is not a valid URL',
      '/alerts/notify/0/headers: header name "bad name" is not an HTTP token',
      '/alerts/notify/0/headers/x-ok: header value has a character HTTP forbids',
    ]);
  });

  it('given to the notifier anyway, each delivery is a failed attempt and the queue moves on (no throw, no wedge)', async () => {
    for (const config of [webhook('http://[::1/h'), webhook('http://127.0.0.1:9/h', { headers: { 'x-bad': 'a\u0100b' } })]) {
      const { n, results } = notifier({ ...config, maxAttempts: 2 });
      // Before the fix send() threw here, and the notifier stayed busy: the second delivery was never attempted.
      expect(() => n.send({ rule: 'r1', body: '{}' })).not.toThrow();
      n.send({ rule: 'r2', body: '{}' });
      // the retry runs from a timer: a throw there would be an uncaught exception (vitest reports it)
      await until(() => n.stats.abandoned === 2, { timeoutMs: 5000, message: () => `both deliveries given up: ${JSON.stringify(n.stats)}` });
      expect(n.stats).toMatchObject({ delivered: 0, failedAttempts: 4, abandoned: 2 });
      expect(results.map((r) => r?.endsWith('(given up)'))).toEqual([false, true, false, true]);
      await n.close(100);
    }
  });
});

describe('a receiver that misbehaves', () => {
  async function listen(server: net.Server): Promise<string> {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  }

  it('resets, answers garbage, redirects: each a failed attempt with its reason', async () => {
    const reset = net.createServer((s) => s.once('data', () => s.resetAndDestroy()));
    const garbage = net.createServer((s) => s.once('data', () => s.end('SPLAT\r\n\r\n')));
    const redirect = http.createServer((req, res) => {
      req.resume();
      res.writeHead(302, { location: 'http://127.0.0.1:9/elsewhere' }).end();
    });
    try {
      const cases: Array<[net.Server, RegExp]> = [
        [reset, /ECONNRESET|socket hang up/],
        [garbage, /Parse Error/],
        [redirect, /HTTP 302/],
      ];
      for (const [server, reason] of cases) {
        const { n, results } = notifier(webhook(await listen(server)));
        n.send({ rule: 'r', body: '{}' });
        await until(() => results.length === 1, { timeoutMs: 5000, message: () => `one attempt: ${JSON.stringify(results)}` });
        expect(results[0]).toMatch(reason);
        expect(n.stats).toMatchObject({ delivered: 0, failedAttempts: 1, abandoned: 1 });
        await n.close(100);
      }
    } finally {
      for (const s of [reset, garbage, redirect]) s.close();
    }
  });
});
