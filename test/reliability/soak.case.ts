import { describe, expect, it } from 'vitest';
import { variantFamilies } from '../../core/variants.js';
import { formatReport, runSoak } from '../../scripts/soak.js';

/**
 * The short soak against one server engine: the same harness as `npm run soak`. The default engine gets 20,000
 * iterations (1,000 of them client disconnects); the others 6,000 (300 disconnects): enough for every request
 * kind of the mix to meet the injected faults many times, at a third of the time.
 */
export function shortSoak(engine: string): void {
  describe(`soak (short, engine ${engine})`, () => {
    const total = engine === variantFamilies.server.default ? 20_000 : 6_000;
    it(`${total} mixed requests with injected upstream faults and client disconnects: nothing lost, gauges back to zero`, async () => {
      const lines: string[] = [];
      // The run ends after `total` requests or 90 s, whichever comes first. A loaded 2-core machine may not get
      // through all of them (18,179 of 20,000 at load average 17 in one run), which is no fault of the gateway:
      // the checks are that every request sent was answered, on a run long enough to mean something.
      const report = await runSoak({
        requests: total,
        durationS: 90,
        connections: 32,
        workers: 2,
        disconnectEvery: 20,
        server: engine,
        log: (l) => lines.push(l),
      });
      console.log(`engine ${engine}\n${formatReport(report)}`);
      const started = report.sent + report.clientDisconnects;
      expect(started).toBeLessThanOrEqual(total);
      expect(started, `only ${started} of ${total} requests in ${report.durationS.toFixed(1)} s`).toBeGreaterThanOrEqual(total / 10);
      expect(report.errors).toEqual({});
      expect(report.lost).toBe(0);
      expect(report.answered).toBe(report.sent);
      // the injected faults really happened and were answered as such
      expect(report.byStatus['500']! + report.byStatus['503']!).toBeGreaterThan(0);
      expect(report.truncatedAsExpected).toBeGreaterThan(0);
      expect(report.after).toEqual({ activeConnections: 0, inFlight: 0, upstreamActive: 0 });
      expect(report.verdict).toBe('nothing lost');
    }, 150_000);
  });
}
