import { variantFamilies } from '../../core/variants.js';
import { shortSoak } from './soak.case.js';

// The default engine's soak. The other engines' run from soak-engines.test.ts: together in one file they made one
// of the suite's longest files, and apart they run on both vitest workers at once.
shortSoak(variantFamilies.server.default);
