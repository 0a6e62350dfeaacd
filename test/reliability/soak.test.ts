import { describe, expect, it } from 'vitest';
import { formatReport, runSoak } from '../../scripts/soak.js';

/** The short soak: the same harness as `npm run soak`, 20,000 iterations (1,000 of them client disconnects). */
describe('soak (short)', () => {
  it('20k mixed requests with injected upstream faults and client disconnects: nothing lost, gauges back to zero', async () => {
    const lines: string[] = [];
    const report = await runSoak({ requests: 20_000, durationS: 90, connections: 32, workers: 2, disconnectEvery: 20, log: (l) => lines.push(l) });
    console.log(formatReport(report));
    expect(report.sent + report.clientDisconnects).toBe(20_000);
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
