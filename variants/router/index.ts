/** Router family: every variant by name (config `variants.router`, CLI --router). */
import type { RouterFactory } from '../../core/contracts/router.js';
import { createRouter as compiled } from './compiled/index.js';
import { createRouter as findMyWay, unsupported as findMyWayUnsupported } from './find-my-way/index.js';
import { createRouter as findMyWayCompiled, unsupported as findMyWayCompiledUnsupported } from './find-my-way-compiled/index.js';
import { createRouter as hybrid } from './hybrid/index.js';
import { createRouter as linear } from './linear/index.js';
import { createRouter as memoirist, unsupported as memoiristUnsupported } from './memoirist/index.js';
import { createRouter as radix } from './radix/index.js';
import { createRouter as regex } from './regex/index.js';
import { createRouter as rou3, unsupported as rou3Unsupported } from './rou3/index.js';
import { createRouter as segmentTrie } from './segment-trie/index.js';

export const routerVariants: Record<string, RouterFactory> = {
  hybrid,
  compiled,
  radix,
  'segment-trie': segmentTrie,
  linear,
  regex,
  'find-my-way': findMyWay,
  'find-my-way-compiled': findMyWayCompiled,
  memoirist,
  rou3,
};

export const DEFAULT_ROUTER = 'hybrid';

/** Adapters around third-party routers: compared against, never the production choice. */
export const referenceRouters: string[] = ['find-my-way', 'find-my-way-compiled', 'memoirist', 'rou3'];

/**
 * Conformance cases (test/router/common.case.ts, by name) each reference adapter cannot pass, with the
 * reason. The suite reports them as skipped and checks they really fail. Own variants have none.
 */
export const routerUnsupported: Record<string, Record<string, string>> = {
  'find-my-way': findMyWayUnsupported,
  'find-my-way-compiled': findMyWayCompiledUnsupported,
  memoirist: memoiristUnsupported,
  rou3: rou3Unsupported,
};
