import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { GatewayConfig } from './config/types.js';
import type { FromWorker, ToWorker } from './messages.js';
import { aggregateMetrics, type WorkerMetricsExport } from './metrics.js';
import { renderPrometheus } from './prometheus.js';
import { redactConfig } from './config/redact.js';
import type { AdminSource } from './admin.js';
import { dryRun } from './runtime.js';
import type { ReloadResult } from './gateway.js';
import { answerRpc, type RpcRequest } from './primary-rpc.js';

const METRICS_TIMEOUT_MS = 1000;
const RESTART_BASE_MS = 100;
const RESTART_MAX_MS = 10_000;
/** a worker that lived this long is considered healthy again: its next crash restarts after the base delay */
const STABLE_AFTER_MS = 10_000;

interface Slot {
  id: number;
  worker: Worker | null;
  startedAt: number;
  failures: number;
  restarts: number;
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
  private shuttingDown = false;
  private started = false;
  private nextRequestId = 1;
  /** last overload state each worker reported (ready() is synchronous, so it reads this cache) */
  private readonly overloaded = new Map<number, boolean>();
  private overloadPoll: NodeJS.Timeout | null = null;
  private readonly pending = new Map<number, { results: WorkerMetricsExport[]; expected: number; done: () => void }>();
  port = 0;

  constructor(
    private config: GatewayConfig,
    private readonly logger: Logger,
    private readonly execArgs: string[] = [],
  ) {}

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
      const slot: Slot = { id: i, worker: null, startedAt: 0, failures: 0, restarts: 0, timer: null };
      this.slots.push(slot);
      ready.push(this.spawn(slot));
    }
    const ports = await Promise.all(ready);
    this.port = ports[0]!;
    this.started = true;
    const ov = this.config.server.overload;
    if (ov.maxEventLoopDelayMs > 0 || ov.maxHeapUsedRatio > 0 || ov.maxHeapUsedBytes > 0) {
      // Keep the per-worker overload flags fresh for /ready even when nobody scrapes /stats.
      this.overloadPoll = setInterval(() => void this.collect(), Math.max(100, ov.checkIntervalMs));
      this.overloadPoll.unref();
    }
    return this.port;
  }

  private spawn(slot: Slot): Promise<number> {
    return new Promise((resolve, reject) => {
      const worker = cluster.fork({ GATEWAY_WORKER_ID: String(slot.id), GATEWAY_WORKER_COUNT: String(this.config.server.workers) });
      slot.worker = worker;
      slot.startedAt = Date.now();
      let settled = false;
      worker.on('message', (msg: FromWorker | RpcRequest) => {
        switch (msg.type) {
          case 'RPC':
            answerRpc(worker, msg);
            break;
          case 'HELLO':
            this.send(worker, { type: 'CONFIG_UPDATE', version: this.version, config: this.config });
            break;
          case 'READY':
            settled = true;
            this.logger.info({ worker: slot.id, workerPid: worker.process.pid, port: msg.port }, 'worker ready');
            resolve(msg.port);
            break;
          case 'FATAL':
            settled = true;
            reject(new Error(msg.errors.join('\n')));
            break;
          case 'METRICS_RESPONSE': {
            const limits = msg.metrics.sections.limits as { overload?: { overloaded?: boolean } | null } | undefined;
            this.overloaded.set(slot.id, limits?.overload?.overloaded ?? false);
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
            break;
        }
      });
      worker.on('exit', (code, signal) => {
        if (slot.worker === worker) slot.worker = null;
        if (!settled) {
          settled = true;
          reject(new Error(`worker ${slot.id} exited during startup (code ${code}, signal ${signal})`));
          return;
        }
        if (this.shuttingDown || !this.started) return;
        const lived = Date.now() - slot.startedAt;
        slot.failures = lived > STABLE_AFTER_MS ? 1 : slot.failures + 1;
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

  private send(worker: Worker, msg: ToWorker): void {
    if (worker.isConnected()) worker.send(msg);
  }

  private liveWorkers(): Worker[] {
    return this.slots.map((s) => s.worker).filter((w): w is Worker => w !== null && w.isConnected());
  }

  /**
   * Applies a validated config to every worker. Plugins are first initialised once here (a dry run, then
   * destroyed) so a plugin whose init throws rejects the config before any worker swaps: workers never end up
   * on different configs.
   */
  async apply(config: GatewayConfig): Promise<ReloadResult> {
    const errors = await dryRun(config, this.logger);
    if (errors.length > 0) return this.rejectReload(errors);
    // Listener and process-level settings need a restart; keep the running ones.
    config.server = { ...config.server, host: this.config.server.host, port: this.config.server.port, workers: this.config.server.workers };
    this.version++;
    this.config = config;
    this.lastReloadError = null;
    for (const w of this.liveWorkers()) this.send(w, { type: 'CONFIG_UPDATE', version: this.version, config });
    this.logger.info({ version: this.version }, 'config pushed to workers');
    return { ok: true, version: this.version, errors: [] };
  }

  rejectReload(errors: string[]): ReloadResult {
    this.lastReloadError = errors;
    this.logger.error({ errors }, 'config reload rejected; previous config keeps serving');
    return { ok: false, version: this.version, errors };
  }

  /** Asks every live worker for its metrics; answers with what arrived within the timeout. */
  collect(): Promise<WorkerMetricsExport[]> {
    const workers = this.liveWorkers();
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

  workerInfo(): Array<{ id: number; pid: number | undefined; alive: boolean; restarts: number }> {
    return this.slots.map((s) => ({ id: s.id, pid: s.worker?.process.pid, alive: s.worker !== null && !s.worker.isDead(), restarts: s.restarts }));
  }

  adminSource(isReady: () => boolean, reload: () => Promise<ReloadResult>): AdminSource {
    return {
      ready: () => {
        const live = this.slots.filter((s) => s.worker !== null && s.worker.isConnected());
        return isReady() && !this.shuttingDown && live.length > 0 && !live.every((s) => this.overloaded.get(s.id) === true);
      },
      stats: async () => {
        const list = await this.collect();
        return {
          configVersion: this.version,
          lastReloadError: this.lastReloadError,
          metrics: aggregateMetrics(list),
          workers: this.workerInfo().map((w) => ({ ...w, ...(list.find((m) => m.workerId === w.id)?.sections ?? {}) })),
        };
      },
      metricsText: async () => {
        const list = await this.collect();
        return renderPrometheus(aggregateMetrics(list), list);
      },
      config: () => redactConfig(this.config),
      reload,
    };
  }

  /** Drain: every worker stops accepting and finishes in-flight requests; resolves when all have exited. */
  async shutdown(deadlineMs = this.config.server.shutdownTimeoutMs): Promise<void> {
    this.shuttingDown = true;
    if (this.overloadPoll !== null) clearInterval(this.overloadPoll);
    for (const s of this.slots) if (s.timer !== null) clearTimeout(s.timer);
    const exits = this.slots
      .map((s) => s.worker)
      .filter((w): w is Worker => w !== null && !w.isDead())
      .map((w) => new Promise<void>((resolve) => {
        w.once('exit', () => resolve());
        this.send(w, { type: 'SHUTDOWN', deadlineMs });
      }));
    const hardStop = setTimeout(() => {
      for (const s of this.slots) if (s.worker !== null && !s.worker.isDead()) s.worker.process.kill('SIGKILL');
    }, deadlineMs + 2000);
    await Promise.all(exits);
    clearTimeout(hardStop);
  }
}
