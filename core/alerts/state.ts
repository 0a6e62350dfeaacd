import type { AlertRuleConfig } from '../config/types.js';

export type AlertState = 'inactive' | 'pending' | 'firing' | 'resolved';

/** What a step asks the engine to announce: a new firing, a resolution, or a reminder for a long-firing alert. */
export type AlertTransition = 'firing' | 'resolved' | 'repeat' | null;

/** Whether a measured value breaks the rule: above the `above` bound or below the `below` bound. No data never does. */
export function conditionHolds(rule: Pick<AlertRuleConfig, 'above' | 'below'>, value: number | null): boolean {
  if (value === null) return false;
  return (rule.above !== undefined && value > rule.above) || (rule.below !== undefined && value < rule.below);
}

/**
 * One rule's state machine, Prometheus-style:
 *   inactive ─holds→ pending ─holds for forMs→ firing ─stops holding→ resolved ─holds→ pending …
 *   pending ─stops holding→ inactive (a blip shorter than forMs never notifies)
 * forMs 0 goes straight to firing. Times are epoch ms from the engine's clock.
 */
export class RuleState {
  state: AlertState = 'inactive';
  value: number | null = null;
  /** when the condition started to hold (pending or firing), null otherwise */
  activeSince: number | null = null;
  firedAt: number | null = null;
  resolvedAt: number | null = null;
  /** last firing notification (first or reminder), for repeatIntervalMs */
  notifiedAt: number | null = null;
  lastNotifyError: string | null = null;

  step(holds: boolean, now: number, forMs: number, repeatIntervalMs: number): AlertTransition {
    if (!holds) {
      this.activeSince = null;
      if (this.state === 'firing') {
        this.state = 'resolved';
        this.resolvedAt = now;
        return 'resolved';
      }
      if (this.state === 'pending') this.state = 'inactive';
      return null;
    }
    if (this.state === 'inactive' || this.state === 'resolved') {
      this.state = 'pending';
      this.activeSince = now;
    }
    if (this.state === 'pending' && now - this.activeSince! >= forMs) {
      this.state = 'firing';
      this.firedAt = now;
      this.resolvedAt = null;
      this.notifiedAt = now;
      return 'firing';
    }
    if (this.state === 'firing' && now - this.notifiedAt! >= repeatIntervalMs) {
      this.notifiedAt = now;
      return 'repeat';
    }
    return null;
  }
}
