import { describe, expect, it } from 'vitest';
import { createRouter as createCompiledRouter } from '../../variants/router/compiled/index.js';
import { DEFAULT_ROUTER, referenceRouters, routerUnsupported, routerVariants } from '../../variants/router/index.js';
import { runRouterConformance } from './common.case.js';

for (const [name, createRouter] of Object.entries(routerVariants)) {
  runRouterConformance(name, createRouter, routerUnsupported[name] ?? {});
}
// `compiled` serves a table over its code budget with a tree walk: that path must obey the same contract
runRouterConformance('compiled (over its code budget)', <T>() => createCompiledRouter<T>({ codeBudgetChars: 0 }), {});

describe('router family index', () => {
  it('names a default that exists and is not a reference adapter', () => {
    expect(routerVariants[DEFAULT_ROUTER]).toBeTypeOf('function');
    expect(referenceRouters).not.toContain(DEFAULT_ROUTER);
  });

  it('only reference adapters may skip cases', () => {
    for (const name of Object.keys(routerUnsupported)) expect(referenceRouters).toContain(name);
    for (const name of referenceRouters) expect(routerVariants[name]).toBeTypeOf('function');
  });
});
