import type { UpstreamConfig } from '../config/types.js';
import { RollingPair } from './window.js';

export enum CircuitState {
  Closed = 0,
  Open = 1,
  HalfOpen = 2,
}

export const CIRCUIT_STATE_NAMES = ['closed', 'open', 'half-open'] as const;

type BreakerConfig = UpstreamConfig['circuitBreaker'];

/**
 * Per-target circuit breaker. Closed: outcomes counted over a rolling window; at ≥ minRequests with a failure
 * ratio ≥ failureRatio it opens. Open: no traffic for openMs. Half-open: at most halfOpenRequests probes in
 * flight; halfOpenRequests successes close it, any probe failure re-opens it.
 */
export class CircuitBreaker {
  state: CircuitState = CircuitState.Closed;
  /** times the breaker opened */
  opens = 0;
  private openedAt = 0;
  private probesInFlight = 0;
  private probeSuccesses = 0;
  /** a = successes, b = failures */
  private readonly window: RollingPair;

  constructor(
    private readonly cfg: BreakerConfig,
    private readonly onChange: (from: CircuitState, to: CircuitState) => void,
  ) {
    this.window = new RollingPair(cfg.windowMs);
  }

  /** May a request be sent now? (May move open → half-open; does not reserve a probe slot.) */
  allows(now: number): boolean {
    if (!this.cfg.enabled) return true;
    const s = this.state;
    if (s === CircuitState.Closed) return true;
    if (s === CircuitState.Open) {
      if (now - this.openedAt < this.cfg.openMs) return false;
      this.transition(CircuitState.HalfOpen);
      this.probesInFlight = 0;
      this.probeSuccesses = 0;
    }
    return this.probesInFlight < this.cfg.halfOpenRequests;
  }

  /** A request is being sent; returns true when it is a half-open probe (pass it back to record()). */
  dispatch(): boolean {
    if (this.state !== CircuitState.HalfOpen) return false;
    this.probesInFlight++;
    return true;
  }

  record(success: boolean, probe: boolean, now: number): void {
    if (!this.cfg.enabled) return;
    if (probe) {
      this.probesInFlight--;
      if (this.state !== CircuitState.HalfOpen) return;
      if (!success) {
        this.open(now);
      } else if (++this.probeSuccesses >= this.cfg.halfOpenRequests) {
        this.window.clear();
        this.transition(CircuitState.Closed);
      }
      return;
    }
    // outcomes of requests sent before the breaker opened say nothing about the probes
    if (this.state !== CircuitState.Closed) return;
    if (success) {
      this.window.addA(now);
      return;
    }
    this.window.addB(now);
    const failures = this.window.sumB(now);
    const total = failures + this.window.sumA(now);
    if (total >= this.cfg.minRequests && failures / total >= this.cfg.failureRatio) this.open(now);
  }

  /** A probe ended without a verdict (the client went away): free its slot. */
  cancel(probe: boolean): void {
    if (probe) this.probesInFlight--;
  }

  /** ms until an open breaker lets a probe through (0 when not open). */
  retryAfterMs(now: number): number {
    if (this.state !== CircuitState.Open) return 0;
    return Math.max(0, this.cfg.openMs - (now - this.openedAt));
  }

  private open(now: number): void {
    this.openedAt = now;
    this.opens++;
    this.transition(CircuitState.Open);
  }

  private transition(to: CircuitState): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.onChange(from, to);
  }
}
