import { describe, expect, it } from 'vitest';
import { ABSOLUTE_ERROR_MS, RELATIVE_ERROR } from '../../core/base/histogram.js';
import { DEFAULT_METRICS, metricsAccuracy, metricsVariants } from '../../variants/metrics/index.js';
import { type AccuracyBound, metricsConformance } from './common.case.js';

const HDR_REL = 0.001; // "3 significant digits": HdrHistogram buckets are ≤ 1/1024 of their value wide
const NS = 1e-6; // ms: values are rounded to whole nanoseconds before they reach HDR

/** The stated accuracy of each variant (its `accuracy` string), as numbers. */
const BOUNDS: Record<string, AccuracyBound> = {
  ring: {
    kind: 'window',
    size: 4096,
    exportRel: RELATIVE_ERROR,
    exportAbs: ABSOLUTE_ERROR_MS,
    exportRankSlack: () => 0,
    additive: false,
    minMaxRel: 0,
    meanAbs: 0,
  },
  hdr: {
    kind: 'relative',
    rel: HDR_REL,
    abs: NS,
    exportRel: RELATIVE_ERROR + HDR_REL,
    exportAbs: ABSOLUTE_ERROR_MS + NS,
    exportRankSlack: () => 0,
    additive: true,
    minMaxRel: 0,
    meanAbs: 0,
  },
  native: {
    kind: 'relative',
    rel: HDR_REL,
    abs: NS,
    exportRel: RELATIVE_ERROR + HDR_REL,
    exportAbs: ABSOLUTE_ERROR_MS + NS,
    // each recorder's export moves a sample up by at most ceil(n / 1024) of its own ranks
    exportRankSlack: (a, b) => Math.ceil(a / 1024) + Math.ceil(b / 1024),
    additive: false,
    minMaxRel: 0,
    meanAbs: 0,
  },
  'atomic-buckets': {
    kind: 'relative',
    rel: RELATIVE_ERROR,
    abs: ABSOLUTE_ERROR_MS,
    exportRel: RELATIVE_ERROR,
    exportAbs: ABSOLUTE_ERROR_MS,
    exportRankSlack: () => 0,
    additive: true,
    minMaxRel: 2 ** -24, // float32
    meanAbs: 0.5 * NS, // sum kept in integer ns
  },
  'log-linear': {
    kind: 'relative',
    rel: RELATIVE_ERROR,
    abs: ABSOLUTE_ERROR_MS,
    exportRel: RELATIVE_ERROR,
    exportAbs: ABSOLUTE_ERROR_MS,
    exportRankSlack: () => 0,
    additive: true,
    minMaxRel: 0,
    meanAbs: 0,
  },
};

describe('metrics variant registry', () => {
  it('every variant states its accuracy and has a numeric bound encoded here', () => {
    for (const name of Object.keys(metricsVariants)) {
      expect(metricsAccuracy[name], name).toMatch(/\S/);
      expect(BOUNDS[name], `no numeric bound encoded for ${name}`).toBeDefined();
    }
    expect(Object.keys(metricsVariants)).toEqual(expect.arrayContaining(['ring', 'hdr', 'native', 'atomic-buckets']));
    expect(metricsVariants[DEFAULT_METRICS]).toBeTypeOf('function');
  });
});

for (const [name, factory] of Object.entries(metricsVariants)) {
  const bound = BOUNDS[name];
  if (bound) metricsConformance(name, factory, bound);
}
