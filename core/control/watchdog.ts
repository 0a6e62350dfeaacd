import type { HeartbeatReport } from './messages.js';

/** Ping period: a fifth of server.watchdogMs, so a frozen worker is noticed within watchdogMs plus one period. */
const PING_DIVISOR = 5;
const MIN_PING_MS = 50;
const MAX_PING_MS = 1000;
/**
 * A worker whose ping has waited this long (or half of watchdogMs, when shorter) no longer counts as able to take
 * a request: /ready says so at once, long before the watchdog kills it. A healthy worker answers in well under a
 * millisecond; a second is a stall no client waits through gladly.
 */
const SUSPECT_AFTER_MS = 1000;
/** Worker boot time assumed by the liveness window when server.workerStartTimeoutMs is 0 (no bound). */
const UNBOUNDED_START_MS = 60_000;

export interface WatchdogSettings {
  /** server.watchdogMs (0 = off) */
  watchdogMs: number;
  /** server.workerStartTimeoutMs: how long a replacement may take to boot before it, too, is killed */
  workerStartTimeoutMs: number;
  /** the longest restart backoff (core/control/orchestrator.ts) */
  restartMaxMs: number;
}

/** What the watchdog knew of a worker it killed: logged by the orchestrator. */
export interface UnresponsiveWorker {
  /** when it last answered a ping (epoch ms), or null when it never did since it became ready */
  lastHeartbeatAt: number | null;
  /** ms since the unanswered ping was sent */
  silentForMs: number;
  /** the worker's own report at its last heartbeat (in-flight count, the request waiting longest on a plugin) */
  report: HeartbeatReport | null;
}

export interface WatchdogActions {
  /** sends a PING to the worker of slot `slot`; false when its channel is already closed */
  ping(slot: number, id: number): boolean;
  /** the worker of `slot` missed server.watchdogMs: kill it (its exit replaces it) */
  kill(slot: number, what: UnresponsiveWorker): void;
}

interface Beat {
  /** when the worker last answered (epoch ms); 0 before its first answer */
  lastBeatAt: number;
  /** when the ping now unanswered was sent; 0 while none is */
  pendingSince: number;
  pendingId: number;
  report: HeartbeatReport | null;
  /** killed by the watchdog, its exit not seen yet */
  killed: boolean;
}

/**
 * The primary's watchdog over serving workers. Liveness is proved by something only a free event loop does: the
 * worker answers a PING from its IPC message handler (core/control/worker.ts), so a plugin's busy loop, a catastrophic
 * regular expression or a synchronous call that never returns silences it. A worker that leaves a ping unanswered
 * for server.watchdogMs is handed to `kill` (SIGKILL: a frozen loop never runs a SIGTERM handler) and the
 * orchestrator's exit handling replaces it with the usual backoff.
 *
 * It also answers the probes' questions: whether a worker can take a request now (`responsive`, for /ready), and
 * whether no worker has been able to for longer than the watchdog, a restart and a boot take together
 * (`live`, for /health): then only restarting the whole process (the orchestrator above, e.g. Kubernetes) helps.
 */
export class Watchdog {
  private readonly beats = new Map<number, Beat>();
  private settings: WatchdogSettings = { watchdogMs: 0, workerStartTimeoutMs: 0, restartMaxMs: 0 };
  private timer: NodeJS.Timeout | null = null;
  private intervalMs = 0;
  private lastTick = 0;
  private nextId = 1;
  /** last time some watched worker could take a request (epoch ms) */
  private lastServingAt = Date.now();

  constructor(private readonly actions: WatchdogActions) {}

  get enabled(): boolean {
    return this.settings.watchdogMs > 0;
  }

  /** Applies server.watchdogMs (at start and on every reload): 0 stops pinging, a new value re-times the pings. */
  configure(settings: WatchdogSettings): void {
    const wasEnabled = this.enabled;
    this.settings = settings;
    const interval = this.enabled ? Math.min(MAX_PING_MS, Math.max(MIN_PING_MS, Math.floor(settings.watchdogMs / PING_DIVISOR))) : 0;
    if (interval === this.intervalMs) return;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.intervalMs = interval;
    for (const b of this.beats.values()) b.pendingSince = 0;
    if (interval === 0) return;
    if (!wasEnabled) this.lastServingAt = Date.now();
    this.lastTick = Date.now();
    this.timer = setInterval(() => this.tick(), interval);
    this.timer.unref();
  }

  /** A worker of slot `slot` listens: watched from now on (a fresh start, whatever the slot's earlier worker did). */
  watch(slot: number): void {
    this.beats.set(slot, { lastBeatAt: 0, pendingSince: 0, pendingId: 0, report: null, killed: false });
    this.lastServingAt = Date.now();
  }

  /** The slot's worker exited. */
  forget(slot: number): void {
    this.beats.delete(slot);
  }

  /** A HEARTBEAT arrived: the answer to the pending ping clears it (an older one, after a primary stall, too). */
  heartbeat(slot: number, id: number, report: HeartbeatReport): void {
    const b = this.beats.get(slot);
    if (b === undefined || b.killed) return;
    const now = Date.now();
    b.lastBeatAt = now;
    b.report = report;
    if (id === b.pendingId) b.pendingSince = 0;
    this.lastServingAt = now;
  }

  /**
   * Whether the slot's worker can take a request now: watched, not killed, and not sitting on an old ping. With
   * the watchdog off every listening worker counts (nothing is known otherwise).
   */
  responsive(slot: number, now = Date.now()): boolean {
    if (!this.enabled) return true;
    const b = this.beats.get(slot);
    if (b === undefined || b.killed) return false;
    return b.pendingSince === 0 || now - b.pendingSince <= this.suspectAfterMs();
  }

  /**
   * False once no worker has been able to take a request for longer than the watchdog can fix: noticing
   * (watchdogMs), the longest restart backoff and a replacement's boot (workerStartTimeoutMs). Always true with
   * the watchdog off.
   */
  live(now = Date.now()): boolean {
    if (!this.enabled) return true;
    if ([...this.beats.keys()].some((slot) => this.responsive(slot, now))) return true;
    return now - this.lastServingAt <= this.livenessWindowMs();
  }

  /** How long no worker may be able to take a request before `live` says false. */
  livenessWindowMs(): number {
    const s = this.settings;
    return s.watchdogMs + s.restartMaxMs + (s.workerStartTimeoutMs > 0 ? s.workerStartTimeoutMs : UNBOUNDED_START_MS);
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.intervalMs = 0;
  }

  private suspectAfterMs(): number {
    return Math.min(SUSPECT_AFTER_MS, this.settings.watchdogMs / 2);
  }

  private tick(): void {
    const now = Date.now();
    // The primary's own loop was held (a synchronous config read on a slow disk, a GC pause): answers may sit
    // unread in the channels, so nobody is judged on this tick and every pending ping starts its clock again.
    const primaryStalled = now - this.lastTick > 2 * this.intervalMs;
    this.lastTick = now;
    let serving = false;
    for (const [slot, b] of this.beats) {
      if (b.killed) continue;
      if (b.pendingSince === 0) {
        b.pendingId = this.nextId++;
        b.pendingSince = now;
        if (!this.actions.ping(slot, b.pendingId)) b.pendingSince = 0;
        serving = true;
        continue;
      }
      if (primaryStalled) {
        b.pendingSince = now;
        continue;
      }
      const silentForMs = now - b.pendingSince;
      if (silentForMs >= this.settings.watchdogMs) {
        b.killed = true;
        this.actions.kill(slot, { lastHeartbeatAt: b.lastBeatAt === 0 ? null : b.lastBeatAt, silentForMs, report: b.report });
        continue;
      }
      if (silentForMs <= this.suspectAfterMs()) serving = true;
    }
    if (serving) this.lastServingAt = now;
  }
}
