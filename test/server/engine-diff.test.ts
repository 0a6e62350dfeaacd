import { describe, expect, it } from 'vitest';
import { variantNames } from '../../core/variants.js';
import { compareEngines, EchoEngine, engineConfig, runEngineCase, type EngineOutcome } from '../../scripts/fuzz/engine-differential.js';
import type { FuzzCase } from '../../scripts/fuzz/generator.js';
import { engineDifferential, REFERENCE_ENGINE } from './engine-diff.case.js';

/**
 * The engine-level differential check of npm run fuzz:http-engines, a few thousand inputs of it: every server
 * engine against node-http, each input sent over a loopback socket in writes cut at random boundaries
 * (engine-diff.case.ts). node-http against itself, which proves the harness deterministic, runs from
 * engine-diff-reference.test.ts: the two comparisons are the longest tests of the suite, and in one file they
 * made its longest file.
 */
for (const candidate of variantNames('server')) if (candidate !== REFERENCE_ENGINE) engineDifferential(candidate);

describe('the engine comparison can fail', () => {
  const c: FuzzCase = { seed: 0, input: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi', maxHeaderSize: 16384, mutations: [] };
  const outcome = (engine: string, body: string, refusals: number[] = []): EngineOutcome => ({
    engine,
    dispatched: [
      {
        kind: 'request',
        method: 'POST',
        target: '/',
        version: '1.1',
        rawHeaders: ['Host', 'a'],
        headers: { host: 'a' },
        body,
        complete: true,
        rawTrailers: [],
      },
    ],
    refusals,
    outOfOrder: false,
    hung: false,
    received: '',
  });

  it('a body framed differently is a failure, even for the own parser', () => {
    expect(compareEngines(c, outcome('node-http', 'hi'), outcome('own', 'h'), true).failure).toMatch(/request 0: body differs/);
  });

  it('refusing what the reference accepts is a failure unless a stricter.ts rule names the request', () => {
    const none = { ...outcome('own', 'hi'), dispatched: [], refusals: [400] };
    expect(compareEngines(c, outcome('node-http', 'hi'), none, true).failure).toMatch(/missing request/);
    const dup: FuzzCase = { ...c, input: 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' };
    const v = compareEngines(dup, { ...outcome('node-http', ''), dispatched: [{ ...outcome('', '').dispatched[0]!, method: 'GET' }] }, none, true);
    expect(v).toEqual({ failure: null, allowedBy: ['hostRepeated'], statusDiffers: false });
    // the same difference between two engines on llhttp is a failure: only the own parser has listed rules
    expect(compareEngines(dup, outcome('node-http', ''), none, false).failure).not.toBeNull();
  });

  it('accepting what the reference refuses is a failure', () => {
    expect(compareEngines(c, { ...outcome('node-http', 'hi'), refusals: [400] }, outcome('own', 'hi'), true).failure).toMatch(/refusal/);
  });

  it('trailer fields that differ are a failure', () => {
    const withTrailers = (engine: string, value: string): EngineOutcome => {
      const o = outcome(engine, 'hi');
      return { ...o, dispatched: [{ ...o.dispatched[0]!, rawTrailers: ['X-T', value] }] };
    };
    expect(compareEngines(c, withTrailers('node-http', '1'), withTrailers('own', '2'), true).failure).toMatch(/request 0: rawTrailers differs/);
  });

  it('a hung connection or answers out of order fail the case', () => {
    expect(compareEngines(c, outcome('node-http', 'hi'), { ...outcome('own', 'hi'), hung: true }, true).failure).toMatch(/still open/);
    expect(compareEngines(c, outcome('node-http', 'hi'), { ...outcome('own', 'hi'), outOfOrder: true }, true).failure).toMatch(/out of order/);
  });

  it.each(variantNames('server'))('the harness sees what %s dispatched: pipelined bodies, byte by byte', async (name) => {
    const echo = new EchoEngine(name, engineConfig(16384));
    await echo.listen();
    try {
      const input = Buffer.from(
        'POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc' +
          'POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n' +
          'GET /c HTTP/1.1\r\nHost: a\r\n\r\n',
        'latin1',
      );
      const cuts = Array.from({ length: input.length - 1 }, (_, i) => i + 1);
      const o = await runEngineCase(echo, input, cuts);
      expect(o.dispatched.map((d) => [d.method, d.target, d.body, d.complete])).toEqual([
        ['POST', '/a', 'abc', true],
        ['POST', '/b', 'xy', true],
        ['GET', '/c', '', true],
      ]);
      expect([o.refusals, o.hung, o.outOfOrder]).toEqual([[], false, false]);
      const bad = await runEngineCase(
        echo,
        Buffer.from('GET /x HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'latin1'),
        [5],
      );
      expect(bad.dispatched.map((d) => d.target)).toEqual(['/x']);
      expect(bad.refusals).toEqual([400]);
    } finally {
      await echo.close();
    }
  });

  /** trailer sections over a real socket, split at every byte: each engine hands over what node-http does */
  const TRAILERS = [
    ['X-A: 1\r\nx-b:\t 2 \r\n', 200],
    ['Content-Length: 0\r\n', 400],
    ['Transfer-Encoding: chunked\r\n', 400],
    ['X-A: a\0b\r\n', 400],
    ['X-A: 1\nX-B: 2\r\n', 400],
    ['X-A: 1\r\n folded\r\n', 400],
    [`X-Huge: ${'h'.repeat(17 * 1024)}\r\n`, 431],
  ] as const;

  it.each(variantNames('server'))('trailer sections, byte by byte, on %s', async (name) => {
    const echo = new EchoEngine(name, engineConfig(16384));
    await echo.listen();
    try {
      for (const [section, status] of TRAILERS) {
        const input = Buffer.from(`POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n${section}\r\n`, 'latin1');
        const cuts = input.length < 400 ? Array.from({ length: input.length - 1 }, (_, i) => i + 1) : [100, 200, 300];
        const o = await runEngineCase(echo, input, cuts);
        if (status === 200) {
          expect(o.dispatched.map((d) => [d.body, d.complete, d.rawTrailers])).toEqual([['xy', true, ['X-A', '1', 'x-b', '2']]]);
          expect(o.refusals).toEqual([]);
        } else {
          // refused once the section is read: the body never ends cleanly, no trailer reaches the handler
          expect(o.dispatched.map((d) => [d.complete, d.rawTrailers])).toEqual([[false, []]]);
          expect(o.refusals, section.slice(0, 40)).toEqual([status]);
        }
      }
    } finally {
      await echo.close();
    }
  });
});
