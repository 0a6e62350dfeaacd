import cluster from 'node:cluster';
import { callPrimary, registerPrimaryService } from '../../../control/primary-rpc.js';

/** What a claim got: this request leads (fetches from the upstream), or another one led and has finished (or timed out). */
export type Claim = 'lead' | 'followed';

interface Flight {
  waiters: Array<() => void>;
  timer: NodeJS.Timeout;
}

/**
 * Requests in flight to the upstream, per key, held in one process per instance (the primary when clustered, like
 * the memory store): concurrent misses for one key make one upstream request, the others wait for it and look
 * again. A flight ends when its leader releases it or after `holdMs` (a leader that died, or a slow upstream: the
 * waiters then go to the upstream themselves rather than wait without bound).
 */
export class Flights {
  private readonly flights = new Map<string, Flight>();

  /** Lead the flight for `key`, or wait for the current one to end. */
  claim(key: string, holdMs: number): Claim | Promise<Claim> {
    const f = this.flights.get(key);
    if (f === undefined) {
      this.start(key, holdMs);
      return 'lead';
    }
    return new Promise<Claim>((resolve) => f.waiters.push(() => resolve('followed')));
  }

  /** Lead the flight for `key` if none is running; never waits (a background revalidation). */
  tryClaim(key: string, holdMs: number): boolean {
    if (this.flights.has(key)) return false;
    this.start(key, holdMs);
    return true;
  }

  release(key: string): void {
    const f = this.flights.get(key);
    if (f === undefined) return;
    this.flights.delete(key);
    clearTimeout(f.timer);
    for (const w of f.waiters) w();
  }

  private start(key: string, holdMs: number): void {
    const timer = setTimeout(() => this.release(key), holdMs);
    timer.unref();
    this.flights.set(key, { waiters: [], timer });
  }
}

type FlightCall = { op: 'claim'; key: string; holdMs: number } | { op: 'try'; key: string; holdMs: number } | { op: 'release'; key: string };

const SERVICE = 'cache/flights';
const flights = new Flights();

registerPrimaryService(SERVICE, (payload) => {
  const c = payload as FlightCall;
  if (c.op === 'claim') return flights.claim(c.key, c.holdMs);
  if (c.op === 'try') return flights.tryClaim(c.key, c.holdMs);
  flights.release(c.key);
  return undefined;
});

/** The instance's flights: direct in a single process, one IPC round trip to the primary from a worker. */
export const instanceFlights = {
  claim(key: string, holdMs: number): Claim | Promise<Claim> {
    if (!cluster.isWorker) return flights.claim(key, holdMs);
    return callPrimary(SERVICE, { op: 'claim', key, holdMs } satisfies FlightCall) as Promise<Claim>;
  },
  tryClaim(key: string, holdMs: number): boolean | Promise<boolean> {
    if (!cluster.isWorker) return flights.tryClaim(key, holdMs);
    return callPrimary(SERVICE, { op: 'try', key, holdMs } satisfies FlightCall) as Promise<boolean>;
  },
  release(key: string): void {
    if (!cluster.isWorker) flights.release(key);
    else callPrimary(SERVICE, { op: 'release', key } satisfies FlightCall).catch(() => undefined);
  },
};
