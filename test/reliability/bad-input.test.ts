import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { variantNames } from '../../core/variants.js';
import { upstreamClientVariants } from '../../variants/upstream/index.js';
import { exchange } from '../support/raw.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';
import { sleep } from '../support/wait.js';
import { badInputCases, forEngine, type BadInputCase } from './bad-input.cases.js';

/** Every upstream client: whether a doomed request leaks bytes upstream can depend on how eagerly one writes. */
const VARIANTS = Object.keys(upstreamClientVariants);
/** Every server engine: each parses and frames the bytes itself (about 11 s per engine for the whole table). */
const ENGINES = variantNames('server');
const tally = { tried: 0, passed: 0, controls: 0 };

async function runCase(c: BadInputCase, gw: RunningGateway, up: RecordingUpstream): Promise<void> {
  up.reset();
  const expectedStatuses = c.responses ?? [Array.isArray(c.status) ? c.status[0] : c.status];
  const ex = await exchange(gw.port, c.send, { expected: expectedStatuses.length, waitClose: c.close, timeoutMs: 3000 });
  // A forward that was already under way when the gateway answered would land now.
  await sleep(c.control ? 0 : 40);
  const finals = ex.responses.filter((r) => r.status >= 200);
  const allowed = Array.isArray(c.status) ? c.status : [c.status];
  const detail = `${c.name}: got ${JSON.stringify(ex.raw.slice(0, 300))}, upstream saw ${JSON.stringify(up.data().slice(0, 200))}`;
  expect(finals.length, detail).toBeGreaterThanOrEqual(1);
  expect(allowed, detail).toContain(finals[0]!.status);
  if (c.responses !== undefined) {
    expect(
      finals.map((r) => r.status),
      detail,
    ).toEqual([...c.responses]);
  }
  if (c.close) expect(ex.closed, `${c.name}: connection left open`).toBe(true);
  if (c.continueFirst)
    expect(
      ex.responses.map((r) => r.status),
      detail,
    ).toEqual([100, 200]);
  if (c.noContinue)
    expect(
      ex.responses.some((r) => r.status === 100),
      `${c.name}: 100 Continue was sent`,
    ).toBe(false);
  const forwarded = c.forwarded ?? 0;
  if (forwarded === 0) {
    expect(up.bytes, detail).toBe(0);
  } else {
    expect(up.requests.length, detail).toBe(forwarded);
  }
  if (c.neverUpstream !== undefined) expect(up.data()).not.toContain(c.neverUpstream);
}

for (const engine of ENGINES)
  for (const variant of VARIANTS) {
    describe(`bad input never reaches the upstream (engine ${engine}, client ${variant})`, () => {
      let up: RecordingUpstream;
      let gw: RunningGateway;

      beforeAll(async () => {
        up = await startUpstream('rec');
        gw = await startGateway({
          server: { host: '127.0.0.1', maxHeaderSize: 8192, maxUrlLength: 2048, maxHeaderCount: 50 },
          admin: { enabled: false },
          logging: { level: 'silent', accessLog: false },
          variants: { upstream: variant, server: engine },
          plugins: [{ name: 'body-limit', options: { maxBytes: 1024 } }],
          upstreams: { rec: { targets: [up.url] } },
          routes: [{ path: '/api/*', upstream: 'rec' }],
        });
      });
      afterAll(async () => {
        await gw?.close();
        await up?.close();
      });

      for (const c of badInputCases) {
        it(c.name, async () => {
          tally.tried++;
          if (c.control) tally.controls++;
          await runCase(forEngine(c, engine), gw, up);
          tally.passed++;
        });
      }

      it('the gateway is still healthy after the whole table', async () => {
        up.reset();
        const ex = await exchange(gw.port, ['GET /api/after HTTP/1.1\r\nHost: gw\r\n\r\n']);
        expect(ex.responses[0]?.status).toBe(200);
        expect(up.requests.map((r) => r.url)).toEqual(['/api/after']);
      });
    });
  }

afterAll(() => {
  // Summary for docs/reliability.md (controls are valid requests proving forwarding is observable).
  console.log(
    `bad-input: ${tally.passed}/${tally.tried} cases passed (${badInputCases.length} cases x ${VARIANTS.length} upstream clients x ${ENGINES.length} server engines, ${tally.controls} control runs)`,
  );
});
