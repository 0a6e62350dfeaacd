import cluster from 'node:cluster';
import { callPrimary, registerPrimaryService } from '../../../control/primary-rpc.js';
import { decide, type Algorithm, type Decision, type KeyState } from './algorithms.js';

export interface TakeRequest {
  /** which limiter (plugin instance bucket) */
  ns: string;
  key: string;
  algorithm: Algorithm;
  limit: number;
  windowMs: number;
  /** `${ns}\0${key}` when the caller keeps one (a string used before has its hash computed already) */
  id?: string;
}

const SERVICE = 'rate-limit/memory';
const SWEEP_MS = 10_000;
/** bound on tracked keys, so a flood of distinct keys cannot exhaust the primary's memory */
const MAX_KEYS = 1_000_000;

/**
 * The counters, held in exactly one process: the primary when clustered (workers ask over IPC, so N workers
 * enforce one limit), or the serving process itself when single-process.
 */
class Counters {
  private readonly states = new Map<string, KeyState>();
  private timer: NodeJS.Timeout | null = null;

  take(r: TakeRequest): Decision {
    const id = r.id ?? storeId(r.ns, r.key);
    const now = Date.now();
    let s = this.states.get(id);
    if (s !== undefined && s.expiresAt <= now) s = undefined;
    const { state, decision } = decide(r.algorithm, s, r.limit, r.windowMs, now);
    if (s === undefined) {
      if (this.states.size >= MAX_KEYS) this.sweep(now, true);
      this.states.set(id, state);
      this.schedule();
    }
    return decision;
  }

  private schedule(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.sweep(Date.now(), false), SWEEP_MS);
    this.timer.unref();
  }

  private sweep(now: number, force: boolean): void {
    for (const [k, s] of this.states) if (s.expiresAt <= now) this.states.delete(k);
    // Still full of live keys: forget the oldest (Map iteration is insertion order) rather than grow unbounded.
    if (force && this.states.size >= MAX_KEYS) {
      let drop = this.states.size - MAX_KEYS + 1024;
      for (const k of this.states.keys()) {
        if (drop-- <= 0) break;
        this.states.delete(k);
      }
    }
    if (this.states.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}

/** The counters' key for one client key of one limiter. */
export function storeId(ns: string, key: string): string {
  return `${ns}\0${key}`;
}

const counters = new Counters();

// Registered at module load: the primary and every worker import this module with the builtin registry.
registerPrimaryService(SERVICE, (payload) => counters.take(payload as TakeRequest));

/** Synchronous when single-process (no promise per request), one IPC round trip to the primary in a worker. */
export function takeMemory(r: TakeRequest): Decision | Promise<Decision> {
  if (!cluster.isWorker) return counters.take(r);
  return callPrimary(SERVICE, r) as Promise<Decision>;
}
