import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { AdminSource } from '../admin/source.js';
import { AlertEngine } from '../alerts/engine.js';
import { redactConfig } from '../config/redact.js';
import type { GatewayConfig } from '../config/types.js';
import { dryRun, DRY_RUN_TIMEOUT_MS, dryRunTimedOut } from '../data/runtime.js';
import type { ControlCounters } from '../observe/control-counters.js';
import { aggregateMetrics, type WorkerMetricsExport } from '../observe/metrics.js';
import { renderPrometheus } from '../observe/prometheus.js';
import { resolveVariants } from '../variants.js';
import type { ReloadResult } from './gateway.js';
import { sendToWorker } from './ipc.js';
import { notWorkerMessage, type FromWorker, type ToWorker } from './messages.js';
import { answerRpc, type RpcRequest } from './primary-rpc.js';
import { splitRestartOnly } from './restart-only.js';
import { Watchdog, type UnresponsiveWorker } from './watchdog.js';

const METRICS_TIMEOUT_MS = 1000;
const RESTART_BASE_MS = 100;
export const RESTART_MAX_MS = 10_000;
/**
 * a worker that served this long is considered healthy again: its next crash restarts after the base delay.
 * Counted from READY, not from the fork: a worker that takes 10 s to boot and dies at once is not healthy.
 */
const STABLE_AFTER_MS = 10_000;
/** Floor of the overload poll that keeps /ready current: a shorter checkIntervalMs would flood the IPC channel. */
const MIN_OVERLOAD_POLL_MS = 100;
export { DRY_RUN_TIMEOUT_MS } from '../data/runtime.js';
/** On shutdown, workers still alive this long after their own drain deadline are killed. */
export const HARD_STOP_GRACE_MS = 2000;

/**
 * starting: forked, not listening yet (booting, or waiting for its config); ready: listening and serving;
 * stopping: asked to drain; exited: gone (a restart may be scheduled).
 */
export type SlotState = 'starting' | 'ready' | 'stopping' | 'exited';

export interface WorkerInfo {
  id: number;
  pid: number | undefined;
  state: SlotState;
  /** listening and serving (state "ready"), not merely forked */
  alive: boolean;
  restarts: number;
  /** workers of this slot the watchdog killed (server.watchdogMs) */
  watchdogKills: number;
  /** whether the worker answers the watchdog's heartbeat (always true with server.watchdogMs 0) */
  responsive: boolean;
  /** the config version the worker last reported serving (0 before it first listens) */
  configVersion: number;
}

interface Slot {
  id: number;
  worker: Worker | null;
  state: SlotState;
  /** the worker's message listener is up (HELLO): config sent before that would be lost */
  greeted: boolean;
  configVersion: number;
  /** when the current worker reported READY (0 while it boots) */
  readyAt: number;
  failures: number;
  restarts: number;
  watchdogKills: number;
  timer: NodeJS.Timeout | null;
}

/**
 * The master process: spawns N cluster workers on one shared listening port (the primary distributes
 * connections round-robin), pushes config to them, gathers and aggregates their metrics, restarts crashed
 * workers with exponential backoff, and drains them on shutdown.
 */
export class Orchestrator {
  private readonly slots: Slot[] = [];
  private version = 1;
  private lastReloadError: string[] | null = null;
  private reloadFailures = 0;
  /** alert rules, evaluated here over the merged metrics of every worker (never per worker) */
  readonly alerts: AlertEngine;
  private shuttingDown = false;
  private started = false;
  private nextRequestId = 1;
  /** last overload state each worker reported (ready() is synchronous, so it reads this cache) */
  private readonly overloaded = new Map<number, boolean>();
  private overloadPoll: NodeJS.Timeout | null = null;
  private readonly watchdog = new Watchdog({
    ping: (slot, id) => {
      const w = this.slots[slot]?.worker;
      return w != null && sendToWorker(w, { type: 'PING', id } satisfies ToWorker);
    },
    kill: (slot, what) => this.killUnresponsive(slot, what),
  });
  private readonly pending = new Map<number, { results: WorkerMetricsExport[]; expected: number; done: () => void }>();
  /** reloads run one after another, so versions are handed out in the order reloads arrive */
  private applying: Promise<unknown> = Promise.resolve();
  port = 0;

  constructor(
    private config: GatewayConfig,
    private readonly logger: Logger,
    private readonly execArgs: string[] = [],
  ) {
    this.alerts = new AlertEngine(config.alerts, { collect: () => this.collect(), control: () => this.controlCounters() }, logger, {
      externalUrl: `http://${config.admin.host}:${config.admin.port}`,
    });
  }

  controlCounters(): ControlCounters {
    return {
      reloadFailures: this.reloadFailures,
      workerRestarts: this.slots.reduce((n, s) => n + s.restarts, 0),
      watchdogKills: this.slots.reduce((n, s) => n + s.watchdogKills, 0),
    };
  }

  get currentConfig(): GatewayConfig {
    return this.config;
  }

  /** Spawns the workers and resolves once all serve; rejects when the config cannot start any of them. */
  async start(): Promise<number> {
    if (this.config.server.workerMode === 'threads') {
      throw new Error('server.workerMode "threads" needs server.listen({ reusePort }), which this Node runtime lacks; use "cluster"');
    }
    cluster.setupPrimary({ execArgv: [...process.execArgv, ...this.execArgs], silent: false });
    const n = this.config.server.workers;
    const ready: Promise<number>[] = [];
    for (let i = 0; i < n; i++) {
      const slot: Slot = {
        id: i,
        worker: null,
        state: 'starting',
        greeted: false,
        configVersion: 0,
        readyAt: 0,
        failures: 0,
        restarts: 0,
        watchdogKills: 0,
        timer: null,
      };
      this.slots.push(slot);
      ready.push(this.spawn(slot));
    }
    const ports = await Promise.all(ready);
    this.port = ports[0]!;
    this.started = true;
    this.configureWatchdog();
    this.alerts.start();
    const ov = this.config.server.overload;
    if (ov.maxEventLoopDelayMs > 0 || ov.maxHeapUsedRatio > 0 || ov.maxHeapUsedBytes > 0) {
      // Keep the per-worker overload flags fresh for /ready even when nobody scrapes /stats.
      this.overloadPoll = setInterval(() => void this.collect(), Math.max(MIN_OVERLOAD_POLL_MS, ov.checkIntervalMs));
      this.overloadPoll.unref();
    }
    return this.port;
  }

  private spawn(slot: Slot): Promise<number> {
    return new Promise((resolve, reject) => {
      const worker = cluster.fork({ GATEWAY_WORKER_ID: String(slot.id), GATEWAY_WORKER_COUNT: String(this.config.server.workers) });
      slot.worker = worker;
      slot.state = 'starting';
      slot.greeted = false;
      slot.configVersion = 0;
      slot.readyAt = 0;
      let settled = false;
      // A worker that never says READY (a plugin init awaiting something that never comes) would hold the first
      // start forever, with no admin API and no log line, or leave a restarted slot "starting" for good.
      const startTimeoutMs = this.config.server.workerStartTimeoutMs;
      let startTimedOut = false;
      const startTimer =
        startTimeoutMs > 0
          ? setTimeout(() => {
              if (settled) return;
              startTimedOut = true;
              this.logger.error(
                { worker: slot.id, workerPid: worker.process.pid, workerStartTimeoutMs: startTimeoutMs },
                'worker did not become ready within server.workerStartTimeoutMs; killed',
              );
              worker.process.kill('SIGKILL');
            }, startTimeoutMs)
          : null;
      // Plugins run in the worker and can call process.send themselves: whatever arrives that is not the
      // protocol, or breaks it (a null, a METRICS_RESPONSE without metrics), is logged once per worker process
      // and dropped. Thrown here it would be an uncaught exception in the primary, taking every worker with it.
      let warned = false;
      const ignore = (why: string, msg: unknown): void => {
        if (warned) return;
        warned = true;
        this.logger.warn(
          { worker: slot.id, workerPid: worker.process.pid, why, message: preview(msg) },
          'ignored a message from a worker that is not the gateway protocol (a plugin calling process.send?)',
        );
      };
      worker.on('message', (msg: unknown) => {
        const why = notWorkerMessage(msg);
        if (why !== null) return ignore(why, msg);
        try {
          onMessage(msg as FromWorker | RpcRequest);
        } catch (err) {
          ignore((err as Error).message, msg);
        }
      });
      const onMessage = (msg: FromWorker | RpcRequest): void => {
        switch (msg.type) {
          case 'RPC':
            answerRpc(worker, msg);
            break;
          case 'HELLO':
            slot.greeted = true;
            this.send(worker, { type: 'CONFIG_UPDATE', version: this.version, config: this.config });
            break;
          case 'READY':
            settled = true;
            if (startTimer !== null) clearTimeout(startTimer);
            if (slot.worker === worker && slot.state === 'starting') {
              slot.state = 'ready';
              slot.readyAt = Date.now();
              this.watchdog.watch(slot.id);
            }
            slot.configVersion = Math.max(slot.configVersion, msg.version);
            this.logger.info({ worker: slot.id, workerPid: worker.process.pid, port: msg.port, version: msg.version }, 'worker ready');
            resolve(msg.port);
            break;
          case 'FATAL':
            settled = true;
            if (startTimer !== null) clearTimeout(startTimer);
            reject(new Error(msg.errors.join('\n')));
            break;
          case 'METRICS_RESPONSE': {
            this.overloaded.set(slot.id, msg.metrics.sections.limits.overload?.overloaded ?? false);
            const p = this.pending.get(msg.id);
            if (p !== undefined) {
              p.results.push(msg.metrics);
              if (p.results.length >= p.expected) p.done();
            }
            break;
          }
          case 'CONFIG_REJECTED':
            this.logger.error({ worker: slot.id, errors: msg.errors }, 'worker rejected config');
            break;
          case 'CONFIG_APPLIED':
            slot.configVersion = Math.max(slot.configVersion, msg.version);
            break;
          case 'HEARTBEAT':
            if (slot.worker === worker) this.watchdog.heartbeat(slot.id, msg.id, { inFlight: msg.inFlight, oldest: msg.oldest });
            break;
        }
      };
      // A failed kill or IPC write is reported as an 'error' event; unheard, it would end the primary.
      worker.on('error', (err: Error) => this.logger.warn({ worker: slot.id, err: err.message }, 'worker channel error'));
      worker.on('exit', (code, signal) => {
        if (slot.worker === worker) {
          slot.worker = null;
          slot.state = 'exited';
          slot.greeted = false;
          this.overloaded.delete(slot.id);
          this.watchdog.forget(slot.id);
        }
        if (startTimer !== null) clearTimeout(startTimer);
        if (!settled) {
          settled = true;
          reject(
            new Error(
              startTimedOut
                ? `worker ${slot.id} did not become ready within ${startTimeoutMs} ms (server.workerStartTimeoutMs); killed`
                : `worker ${slot.id} exited during startup (code ${code}, signal ${signal})`,
            ),
          );
          // At the first start the caller gives up on the whole gateway. A restart that dies while booting (a crash
          // loop) is a failure like any other: it used to end here, leaving the slot empty for good.
          if (!this.started) return;
        }
        // Not `!this.started` too: a worker that served and died while another was still booting was never replaced.
        if (this.shuttingDown) return;
        const served = slot.readyAt === 0 ? 0 : Date.now() - slot.readyAt;
        slot.failures = served > STABLE_AFTER_MS ? 1 : slot.failures + 1;
        const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (slot.failures - 1));
        this.logger.warn({ worker: slot.id, code, signal, restartInMs: delay }, 'worker exited; restarting');
        slot.timer = setTimeout(() => {
          slot.timer = null;
          if (this.shuttingDown) return;
          slot.restarts++;
          this.spawn(slot).catch((err: Error) => this.logger.error({ worker: slot.id, err: err.message }, 'worker restart failed'));
        }, delay);
      });
    });
  }

  /** SIGUSR2: every worker reopens its access log file (a worker still booting opens it fresh anyway). */
  reopenLogs(): void {
    for (const w of this.configurableWorkers()) this.send(w, { type: 'REOPEN_LOGS' });
  }

  private send(worker: Worker, msg: ToWorker): void {
    sendToWorker(worker, msg);
  }

  /** server.watchdogMs and what bounds a replacement's boot, from the config in force (at start and on reload). */
  private configureWatchdog(): void {
    const { watchdogMs, workerStartTimeoutMs } = this.config.server;
    const wasEnabled = this.watchdog.enabled;
    this.watchdog.configure({ watchdogMs, workerStartTimeoutMs, restartMaxMs: RESTART_MAX_MS });
    // turned on by a reload: the workers already serving are watched from now on
    if (!wasEnabled && this.watchdog.enabled) for (const s of this.slots) if (s.state === 'ready') this.watchdog.watch(s.id);
  }

  /**
   * A worker left the watchdog's ping unanswered for server.watchdogMs: its event loop is held (a plugin's busy
   * loop, a catastrophic regular expression, a synchronous call that never returns). SIGKILL, because a frozen
   * loop never runs a SIGTERM handler; its exit is handled like any crash (logged, restarted with backoff). The
   * log line carries what the worker said of itself at its last heartbeat: where it froze is only known when that
   * request was already waiting on a plugin then.
   */
  private killUnresponsive(slotId: number, what: UnresponsiveWorker): void {
    const slot = this.slots[slotId];
    const worker = slot?.worker;
    if (slot === undefined || worker == null || worker.isDead()) return;
    slot.watchdogKills++;
    this.logger.error(
      {
        worker: slot.id,
        workerPid: worker.process.pid,
        watchdogMs: this.config.server.watchdogMs,
        silentForMs: what.silentForMs,
        lastHeartbeatAt: what.lastHeartbeatAt === null ? null : new Date(what.lastHeartbeatAt).toISOString(),
        inFlight: what.report?.inFlight ?? null,
        oldestRequest: what.report?.oldest ?? null,
      },
      'worker did not answer its heartbeat within server.watchdogMs (event loop blocked); killed with SIGKILL',
    );
    worker.process.kill('SIGKILL');
  }

  /** Workers that take config updates: greeted and not on their way out (a booting one holds the update until it listens). */
  private configurableWorkers(): Worker[] {
    return this.slots
      .filter((s) => s.greeted && (s.state === 'starting' || s.state === 'ready'))
      .map((s) => s.worker)
      .filter((w): w is Worker => w !== null && w.isConnected());
  }

  /**
   * Workers that listen and answer metrics requests: a booting or frozen one would only make collect() wait for
   * its timeout.
   */
  private readyWorkers(): Worker[] {
    return this.slots
      .filter((s) => s.state === 'ready' && this.watchdog.responsive(s.id))
      .map((s) => s.worker)
      .filter((w): w is Worker => w !== null && w.isConnected());
  }

  /**
   * Applies a validated config to every worker. Plugins are first initialised once here (a dry run, then
   * destroyed) so a plugin whose init throws rejects the config before any worker swaps: workers never end up
   * on different configs. Process-level fields keep their running values (core/control/restart-only.ts), so a worker
   * restarted later matches the others; the reload logs which fields wait for a restart.
   */
  apply(config: GatewayConfig): Promise<ReloadResult> {
    const run = this.applying.then(() => this.applyNow(config));
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async applyNow(next: GatewayConfig): Promise<ReloadResult> {
    let deadline: NodeJS.Timeout | undefined;
    const timedOut = new Promise<string[]>((resolve) => {
      deadline = setTimeout(() => resolve([dryRunTimedOut(DRY_RUN_TIMEOUT_MS)]), DRY_RUN_TIMEOUT_MS);
    });
    const errors = await Promise.race([dryRun(next, resolveVariants(next.variants), this.logger), timedOut]).finally(() => clearTimeout(deadline));
    if (errors.length > 0) return this.rejectReload(errors);
    const { config, pending } = splitRestartOnly(this.config, next);
    this.version++;
    this.config = config;
    this.lastReloadError = null;
    this.alerts.reconfigure(config.alerts);
    this.configureWatchdog();
    for (const w of this.configurableWorkers()) this.send(w, { type: 'CONFIG_UPDATE', version: this.version, config });
    if (pending.length > 0) {
      this.logger.warn(
        { version: this.version, restartRequired: pending },
        `config pushed to workers; ${pending.join(', ')} keep their running values until a restart`,
      );
    } else {
      this.logger.info({ version: this.version }, 'config pushed to workers');
    }
    return { ok: true, version: this.version, errors: [] };
  }

  /** Records a reload refused before it reached the workers; `what` starts its one log line. */
  rejectReload(errors: string[], what = 'config reload rejected'): ReloadResult {
    this.lastReloadError = errors;
    this.reloadFailures++;
    this.logger.error({ errors }, `${what}; previous config keeps serving`);
    return { ok: false, version: this.version, errors };
  }

  /** The config file again holds the config in force: the last rejection no longer describes it (/stats, dashboard). */
  clearReloadError(): void {
    this.lastReloadError = null;
  }

  /** Asks every live worker for its metrics; answers with what arrived within the timeout. */
  collect(): Promise<WorkerMetricsExport[]> {
    const workers = this.readyWorkers();
    if (workers.length === 0) return Promise.resolve([]);
    const id = this.nextRequestId++;
    return new Promise((resolve) => {
      const entry = { results: [] as WorkerMetricsExport[], expected: workers.length, done: () => undefined as void };
      const timer = setTimeout(() => entry.done(), METRICS_TIMEOUT_MS);
      entry.done = () => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(entry.results.sort((a, b) => a.workerId - b.workerId));
      };
      this.pending.set(id, entry);
      for (const w of workers) this.send(w, { type: 'METRICS_REQUEST', id });
    });
  }

  workerInfo(): WorkerInfo[] {
    return this.slots.map((s) => ({
      id: s.id,
      pid: s.worker?.process.pid,
      state: s.state,
      alive: s.state === 'ready',
      restarts: s.restarts,
      watchdogKills: s.watchdogKills,
      responsive: s.state === 'ready' && this.watchdog.responsive(s.id),
      configVersion: s.configVersion,
    }));
  }

  adminSource(isReady: () => boolean, reload: () => Promise<ReloadResult>): AdminSource {
    return {
      ready: () => {
        // Ready while at least one listening worker is not shedding: the primary still spreads connections
        // over all of them, but a balancer in front would only make things worse by taking this node out.
        // A worker whose event loop is held (its heartbeat overdue) takes no request either.
        const live = this.slots.filter((s) => s.state === 'ready' && s.worker !== null && s.worker.isConnected() && this.watchdog.responsive(s.id));
        return isReady() && !this.shuttingDown && live.length > 0 && !live.every((s) => this.overloaded.get(s.id) === true);
      },
      // Liveness: false only once no worker could take a request for longer than the watchdog can fix.
      live: () => this.shuttingDown || this.watchdog.live(),
      stats: async () => {
        const list = await this.collect();
        return {
          configVersion: this.version,
          lastReloadError: this.lastReloadError,
          metrics: aggregateMetrics(list),
          // The slot's own fields last: its state and version are the primary's view, which a booting worker has no metrics for.
          workers: this.workerInfo().map((w) => ({ ...(list.find((m) => m.workerId === w.id)?.sections ?? {}), ...w })),
        };
      },
      metricsText: async () => {
        const list = await this.collect();
        return renderPrometheus(aggregateMetrics(list), list, this.controlCounters());
      },
      config: () => redactConfig(this.config),
      reload,
      alerts: async () => this.alerts.report(),
    };
  }

  /** Drain: every worker stops accepting and finishes in-flight requests; resolves when all have exited. */
  async shutdown(deadlineMs = this.config.server.shutdownTimeoutMs): Promise<void> {
    this.shuttingDown = true;
    if (this.overloadPoll !== null) clearInterval(this.overloadPoll);
    this.watchdog.close();
    // bounded (NOTIFY_SHUTDOWN_GRACE_MS) and concurrent with the drain: a dead receiver never holds the exit
    const alertsClosed = this.alerts.close();
    for (const s of this.slots) {
      if (s.timer !== null) clearTimeout(s.timer);
      if (s.worker !== null && !s.worker.isDead()) s.state = 'stopping';
    }
    const exits = this.slots
      .map((s) => s.worker)
      .filter((w): w is Worker => w !== null && !w.isDead())
      .map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once('exit', () => resolve());
            this.send(w, { type: 'SHUTDOWN', deadlineMs });
          }),
      );
    const hardStop = setTimeout(() => {
      for (const s of this.slots) if (s.worker !== null && !s.worker.isDead()) s.worker.process.kill('SIGKILL');
    }, deadlineMs + HARD_STOP_GRACE_MS);
    await Promise.all(exits);
    clearTimeout(hardStop);
    await alertsClosed;
  }
}

/** A bounded look at a message for the log line: a plugin's message may be large. */
function preview(msg: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(msg) ?? String(msg);
  } catch {
    text = String(msg);
  }
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
