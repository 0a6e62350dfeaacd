/**
 * What only the process that owns the serving processes knows: the orchestrator (cluster) or the single-process
 * gateway. Workers cannot report these themselves: a restarted worker starts from zero, and a reload the primary
 * rejects never reaches them.
 */
export interface ControlCounters {
  /** config reloads rejected since start (file watcher, SIGHUP, POST /config/reload) */
  reloadFailures: number;
  /** workers restarted after they exited, since start (always 0 for a single process) */
  workerRestarts: number;
  /** workers killed by the watchdog (server.watchdogMs), since start (always 0 for a single process) */
  watchdogKills: number;
}

export const NO_CONTROL_COUNTERS: ControlCounters = Object.freeze({ reloadFailures: 0, workerRestarts: 0, watchdogKills: 0 });
