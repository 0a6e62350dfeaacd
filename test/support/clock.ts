/**
 * A wall clock a test moves instead of sleeping: it starts at the real time and stands still until `advance(ms)`
 * moves it (so a check "1 ms before exp" stays 1 ms before exp however slow the machine is). Injected into the plugins that compare against wall time (auth's exp/nbf, cache freshness) through
 * their `create*Plugin({ now })` factories.
 */
export interface TestClock {
  now: () => number;
  advance(ms: number): void;
}

export function testClock(): TestClock {
  let t = Date.now();
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}
