import { describe } from 'vitest';
import { variantNames } from '../../core/variants.js';
import { serverConformance } from './common.case.js';

/** Every registered server engine against the server contract (core/contracts/server.ts). */
describe.each(variantNames('server'))('server engine %s', (engine) => serverConformance(engine));
