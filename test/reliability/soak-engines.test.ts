import { variantFamilies, variantNames } from '../../core/variants.js';
import { shortSoak } from './soak.case.js';

// Every engine but the default one (soak.test.ts runs that).
for (const engine of variantNames('server')) if (engine !== variantFamilies.server.default) shortSoak(engine);
