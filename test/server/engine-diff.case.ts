import { describe, expect, it } from 'vitest';
import { runEngineFuzz } from '../../scripts/fuzz/engine-differential.js';

/** The engine every other one is compared with. */
export const REFERENCE_ENGINE = 'node-http';

/**
 * One engine against node-http on 3000 generated request streams: both must dispatch and refuse the same, or the
 * difference must be one a stricter.ts rule lists. With node-http as the candidate nothing may differ at all.
 */
export function engineDifferential(candidate: string): void {
  describe(`engine ${candidate} against node-http on raw request streams`, () => {
    it('dispatches and refuses the same on 3000 generated streams, or stops earlier by a listed rule', async () => {
      const report = await runEngineFuzz(REFERENCE_ENGINE, candidate, 3000, 20_261_000, { concurrency: 16, maxFailures: 3000 });
      const failures = report.failures.map((f) => `seed ${f.seed} cuts ${JSON.stringify(f.cuts)} (${f.failure}): ${JSON.stringify(f.input)}`);
      console.log(
        `engine-diff ${candidate}: ${report.inputs} inputs in ${(report.ms / 1000).toFixed(1)} s, ${report.bothAccepted} accepted, ` +
          `${report.bothRefused} refused, ${report.statusDiffers} other status same class, allowed ${JSON.stringify(report.allowed)}`,
      );
      expect(failures).toEqual([]);
      expect(report.inputs).toBe(3000);
      // both outcomes must be exercised, or the comparison proves nothing
      expect(report.bothAccepted).toBeGreaterThan(500);
      expect(report.bothRefused).toBeGreaterThan(500);
      if (candidate === REFERENCE_ENGINE) expect(report.allowed).toEqual({});
    }, 120_000);
  });
}
