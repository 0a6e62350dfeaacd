import type { Logger } from 'pino';
import { AdminServer } from '../admin/server.js';
import type { AdminSource } from '../admin/source.js';
import { AlertEngine } from '../alerts/engine.js';
import { ConfigError, TlsLoadError } from '../base/errors.js';
import { redactConfig } from '../config/redact.js';
import type { GatewayConfig } from '../config/types.js';
import { validateConfig } from '../config/validator.js';
import type { ObjectPool } from '../contracts/pool.js';
import type { VariantFactories } from '../contracts/variants.js';
import { createRequestState, resetRequestState, type RequestState } from '../data/request-state.js';
import { GatewayRuntime, DRY_RUN_TIMEOUT_MS, buildWithin } from '../data/runtime.js';
import { GatewayServer } from '../data/server.js';
import type { ControlCounters } from '../observe/control-counters.js';
import { createLogger } from '../observe/logger.js';
import type { PluginSection, WorkerMetricsExport } from '../observe/metrics.js';
import { GatewayMetrics, aggregateMetrics } from '../observe/metrics.js';
import { renderPrometheus } from '../observe/prometheus.js';
import { resolveVariants } from '../variants.js';
import { splitRestartOnly } from './restart-only.js';

export interface ReloadResult {
  ok: boolean;
  version: number;
  errors: string[];
}

export interface GatewayOptions {
  logger?: Logger;
  workerId?: number;
  workerCount?: number;
  /**
   * Evaluate `alerts` rules in this process: for a gateway that serves alone (server.workers 0, tests). Cluster
   * workers leave it off; their orchestrator evaluates over all of them.
   */
  evaluateAlerts?: boolean;
  /** the alert engine's clock (tests) */
  now?: () => number;
  /** longest a reload's build may take (default DRY_RUN_TIMEOUT_MS; tests shorten it) */
  reloadBuildTimeoutMs?: number;
}

/**
 * One worker's gateway: the data-plane server plus the config generations it serves. Used directly for
 * `server.workers: 0` and in tests, and inside every cluster worker.
 */
export class Gateway {
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly pool: ObjectPool<RequestState>;
  readonly server: GatewayServer;
  private configVersion = 1;
  private lastReloadError: string[] | null = null;
  private reloadFailures = 0;
  /** null in a cluster worker (see GatewayOptions.evaluateAlerts) */
  readonly alerts: AlertEngine | null;
  private readonly counters = new Map<string, { help: string; value: number }>();
  /** applies run one after another: two overlapping builds would otherwise swap in finishing order, not arrival order */
  private applying: Promise<unknown> = Promise.resolve();
  port = 0;
  /** port of the HTTP→HTTPS redirect listener (server.redirectHttp), null when none */
  redirectPort: number | null = null;
  private readonly buildTimeoutMs: number;

  private constructor(
    private config: GatewayConfig,
    variants: VariantFactories,
    runtime: GatewayRuntime,
    logger: Logger,
    metrics: GatewayMetrics,
    pool: ObjectPool<RequestState>,
    private readonly workerId: number,
    private readonly workerCount: number,
    counters: Map<string, { help: string; value: number }>,
    options: GatewayOptions,
  ) {
    this.logger = logger;
    this.buildTimeoutMs = options.reloadBuildTimeoutMs ?? DRY_RUN_TIMEOUT_MS;
    this.metrics = metrics;
    this.pool = pool;
    this.counters = counters;
    this.server = new GatewayServer(runtime, {
      server: config.server,
      engine: variants.server,
      pool,
      metrics,
      logger,
      accessLog: config.logging.accessLog,
    });
    this.alerts =
      options.evaluateAlerts === true
        ? new AlertEngine(config.alerts, { collect: async () => [this.exportMetrics()], control: () => this.controlCounters() }, logger, {
            externalUrl: `http://${config.admin.host}:${config.admin.port}`,
            ...(options.now === undefined ? {} : { now: options.now }),
          })
        : null;
  }

  controlCounters(): ControlCounters {
    return { reloadFailures: this.reloadFailures, workerRestarts: 0, watchdogKills: 0 };
  }

  /** Builds the first runtime; throws ConfigError when the config or a plugin's init is invalid. */
  static async create(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
    const workerId = options.workerId ?? 0;
    const workerCount = options.workerCount ?? 1;
    const logger = options.logger ?? createLogger(config.logging, { pid: process.pid, worker: workerId });
    // Pool and metrics variants are chosen once per process: swapping them would reset counters mid-flight.
    const variants = resolveVariants(config.variants);
    const metrics = new GatewayMetrics(variants.metrics, workerId);
    const pool = variants.pool<RequestState>({
      create: createRequestState,
      reset: resetRequestState,
      capacity: config.server.contextPoolSize,
    });
    const counters = new Map<string, { help: string; value: number }>();
    const built = await GatewayRuntime.build(config, 1, { variants, metrics, logger, workerId, workerCount, counters });
    if (!built.ok) {
      metrics.close();
      throw new ConfigError(built.errors);
    }
    try {
      return new Gateway(config, variants, built.value, logger, metrics, pool, workerId, workerCount, counters, options);
    } catch (err) {
      // A certificate that vanished or changed between validation and listener creation.
      if (!(err instanceof TlsLoadError)) throw err;
      await built.value.dispose();
      metrics.close();
      throw new ConfigError(err.errors);
    }
  }

  get currentConfig(): GatewayConfig {
    return this.config;
  }

  get version(): number {
    return this.configVersion;
  }

  get reloadError(): string[] | null {
    return this.lastReloadError;
  }

  async listen(port = this.config.server.port, host = this.config.server.host): Promise<number> {
    this.port = await this.server.listen(port, host);
    this.redirectPort = await this.server.redirect.listen(this.config.server, this.port);
    this.alerts?.start();
    return this.port;
  }

  /**
   * Applies a new validated config atomically: the new runtime is fully built (plugins initialised, upstream
   * pools created) before it is swapped in; if building fails the old one keeps serving untouched.
   * Process-level fields (core/control/restart-only.ts: listener, pool/metrics variants, server options fixed at
   * creation) keep their running values, and the reload logs which ones wait for a restart.
   * Calls are serialised; `version` defaults to one past the version current when this call's turn comes.
   */
  apply(config: GatewayConfig, version?: number): Promise<ReloadResult> {
    const run = this.applying.then(() => this.applyNow(config, version ?? this.configVersion + 1));
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async applyNow(next: GatewayConfig, version: number): Promise<ReloadResult> {
    const { config, pending } = splitRestartOnly(this.config, next, this.port);
    // Certificates are read before the runtime is built: a broken PEM rejects the reload with nothing to undo.
    const listener = this.server.engine.prepareReload(config.server);
    if (listener.errors.length > 0) return this.rejectReload(listener.errors);
    // The same deadline as the primary's dry run in cluster mode: a plugin init that never settles would otherwise
    // hold this reload, and every later one queued behind it, for good.
    const built = await buildWithin(
      config,
      version,
      {
        // router and upstream client may change with a reload (pool, metrics and server engine are restart-only)
        variants: resolveVariants(config.variants),
        metrics: this.metrics,
        logger: this.logger,
        workerId: this.workerId,
        workerCount: this.workerCount,
        counters: this.counters,
      },
      this.buildTimeoutMs,
    );
    if (!built.ok) return this.rejectReload(built.errors);
    this.config = config;
    this.configVersion = version;
    this.lastReloadError = null;
    this.alerts?.reconfigure(config.alerts);
    listener.commit();
    void this.server.swap(built.value, config.logging.accessLog);
    if (pending.length > 0) {
      this.logger.warn({ version, restartRequired: pending }, `config applied; ${pending.join(', ')} keep their running values until a restart`);
    } else {
      this.logger.info({ version }, 'config applied');
    }
    return { ok: true, version, errors: [] };
  }

  /** After logrotate moved the access log file (SIGUSR2): the next lines go to a new file at its path. */
  reopenLogs(): void {
    this.server.reopenAccessLog();
  }

  /** Records a config that failed validation elsewhere (file watcher, SIGHUP); the current one keeps serving. */
  rejectReload(errors: string[], what = 'config reload rejected'): ReloadResult {
    this.lastReloadError = errors;
    this.reloadFailures++;
    this.logger.error({ errors }, `${what}; previous config keeps serving`);
    return { ok: false, version: this.configVersion, errors };
  }

  /** The config file again holds the config in force: the last rejection no longer describes it (/stats, dashboard). */
  clearReloadError(): void {
    this.lastReloadError = null;
  }

  /** Validates raw JSON and applies it. */
  async reload(raw: unknown): Promise<ReloadResult> {
    const v = validateConfig(raw);
    return v.ok ? this.apply(v.value) : this.rejectReload(v.errors);
  }

  exportMetrics(): WorkerMetricsExport {
    const rt = this.server.currentRuntime;
    const plugins: Record<string, PluginSection> = {};
    for (const slot of rt.allSlots) {
      plugins[slot.scope === '' ? slot.name : `${slot.name}@${slot.scope}`] = { scope: slot.scope || 'global', version: slot.version, hooks: slot.stats };
    }
    const counters: Record<string, { help: string; value: number }> = {};
    for (const [k, v] of this.counters) counters[k] = { ...v };
    return this.metrics.export({
      configVersion: this.configVersion,
      pool: this.pool.stats(),
      plugins,
      counters,
      upstreams: rt.upstreams?.stats() ?? {},
      upstreamPrometheus: rt.upstreams?.prometheusLines() ?? [],
      traffic: rt.upstreams?.trafficStats() ?? {},
      tls: this.server.protocolStats(),
      limits: this.server.limitStats(),
    });
  }

  async close(deadlineMs = this.config.server.shutdownTimeoutMs): Promise<void> {
    // bounded and concurrent with the drain: a dead alert receiver never holds the exit
    const alertsClosed = this.alerts?.close();
    await this.server.drain(deadlineMs);
    await alertsClosed;
    this.metrics.close();
  }
}

/** An AdminSource over one in-process Gateway (workers: 0, tests). */
export function inProcessAdminSource(gw: Gateway, reload: () => Promise<ReloadResult>, isReady: () => boolean): AdminSource {
  return {
    // Shedding load is not ready: a balancer in front should send new traffic elsewhere until it recovers.
    ready: () => isReady() && !(gw.server.overload?.overloaded ?? false),
    async stats() {
      const w = gw.exportMetrics();
      return { configVersion: gw.version, lastReloadError: gw.reloadError, metrics: aggregateMetrics([w]), workers: [w.sections] };
    },
    async metricsText() {
      const w = gw.exportMetrics();
      return renderPrometheus(aggregateMetrics([w]), [w], gw.controlCounters());
    },
    config: () => redactConfig(gw.currentConfig),
    reload,
    alerts: async () => gw.alerts?.report() ?? null,
  };
}

/** Drain deadline of RunningGateway.close(): in-process gateways are for tests and embedding, not for draining long. */
const RUNNING_CLOSE_DEADLINE_MS = 1000;

export interface RunningGateway {
  gateway: Gateway;
  port: number;
  url: string;
  admin: AdminServer | null;
  adminPort: number;
  adminUrl: string;
  reload(raw: unknown): Promise<ReloadResult>;
  close(): Promise<void>;
}

/**
 * Starts a single-process gateway from raw (unvalidated) config. Ports default to ephemeral (0) so tests can
 * run in parallel; the admin listener starts only when `admin.enabled` is not false.
 */
export async function startGateway(raw: unknown, opts: GatewayOptions & { port?: number; adminPort?: number } = {}): Promise<RunningGateway> {
  const v = validateConfig(withEphemeralPorts(raw, opts));
  if (!v.ok) throw new ConfigError(v.errors);
  const config = v.value;
  const gateway = await Gateway.create(config, { evaluateAlerts: true, ...opts });
  const port = await gateway.listen(config.server.port, config.server.host);
  let admin: AdminServer | null = null;
  let adminPort = 0;
  let ready = false;
  if (config.admin.enabled) {
    admin = new AdminServer(
      inProcessAdminSource(
        gateway,
        async () => ({ ok: false, version: gateway.version, errors: ['/: no config file to reload from'] }),
        () => ready,
      ),
      { auth: config.admin.auth },
    );
    adminPort = await admin.listen(config.admin.port, config.admin.host);
  }
  ready = true;
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  return {
    gateway,
    port,
    url: `${config.server.tls === undefined ? 'http' : 'https'}://${host}:${port}`,
    admin,
    adminPort,
    adminUrl: `http://${config.admin.host}:${adminPort}`,
    reload: (r: unknown) => gateway.reload(withEphemeralPorts(r, opts)),
    async close() {
      ready = false;
      await admin?.close();
      await gateway.close(RUNNING_CLOSE_DEADLINE_MS);
    },
  };
}

function withEphemeralPorts(raw: unknown, opts: { port?: number; adminPort?: number }): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const r = raw as Record<string, Record<string, unknown> | undefined>;
  return {
    ...r,
    server: { port: opts.port ?? 0, workers: 0, ...(r.server ?? {}) },
    admin: { port: opts.adminPort ?? 0, ...(r.admin ?? {}) },
    logging: { level: 'warn', accessLog: false, ...(r.logging ?? {}) },
  };
}
