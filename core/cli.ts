#!/usr/bin/env node
import cluster from 'node:cluster';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AdminServer } from './admin/server.js';
import type { Result } from './base/result.js';
import { checkConfig } from './config/check.js';
import { defaultConfig } from './config/defaults.js';
import { loadConfigFile, readConfigFile, ConfigWatcher, type RawConfigFile } from './config/loader.js';
import type { GatewayConfig } from './config/types.js';
import { validateConfig, type ValidationResult } from './config/validator.js';
import { adminExposedWithoutAuth, configWarnings } from './config/warnings.js';
import { exitOnUncaught } from './control/fatal.js';
import { Gateway, inProcessAdminSource, type ReloadResult } from './control/gateway.js';
import { Orchestrator } from './control/orchestrator.js';
import { runWorker } from './control/worker.js';
import { dryRun } from './data/runtime.js';
import { createLogger } from './observe/logger.js';
import { resolveVariants, variantNames } from './variants.js';

const HELP = `ts-gateway: high-performance API gateway

Usage: ts-gateway [options]        (in a checkout: npm start -- [options], or node dist/core/cli.js [options])

Options:
  --config FILE           JSON config file (watched and hot-reloaded). Without it, an embedded demo config.
  --check                 validate the config and exit (0 valid, possibly with warnings; 1 invalid): every
                          problem of every layer (schema, references, files, plugins) in one run
  --port N                data-plane port (server.port)
  --host H                data-plane address (server.host)
  --workers N             worker processes; 0 = serve in this process (server.workers; default: CPU count)
  --admin-port N          admin listener port (admin.port); the admin API is GET /health /ready /metrics
                          /stats /config /dashboard and POST /config/reload
  --log-level L           fatal|error|warn|info|debug|trace|silent (logging.level)
  --pretty                human-readable logs (logging.pretty)
  --no-access-log         no access-log line per request (logging.accessLog=false)
  --router NAME           router variant: ${variantNames('router').join(', ')}
  --pool NAME             context pool variant: ${variantNames('pool').join(', ')}
  --metrics NAME          latency recorder variant: ${variantNames('metrics').join(', ')}
  --upstream-client NAME  upstream client variant: ${variantNames('upstream').join(', ')}
  --server NAME           HTTP/1.1 server engine: ${variantNames('server').join(', ')}
  --help                  this text

Signals: SIGHUP reloads the config file (one received while starting: once the gateway serves);
         SIGUSR2 reopens logging.accessLog.file (after logrotate moved it);
         SIGTERM/SIGINT drain in-flight requests and exit 0.
`;

type Flags = ReturnType<typeof parse>['values'];

function parse() {
  return parseArgs({
    allowPositionals: false,
    options: {
      config: { type: 'string' },
      check: { type: 'boolean' },
      port: { type: 'string' },
      host: { type: 'string' },
      workers: { type: 'string' },
      'admin-port': { type: 'string' },
      'log-level': { type: 'string' },
      pretty: { type: 'boolean' },
      'no-access-log': { type: 'boolean' },
      router: { type: 'string' },
      pool: { type: 'string' },
      metrics: { type: 'string' },
      'upstream-client': { type: 'string' },
      server: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
}

/** Flags override the file: applied to the raw JSON before validation, so they are validated like the file. */
function withOverrides(flags: Flags): (raw: unknown) => unknown {
  return (raw) => {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
    const r = structuredClone(raw) as Record<string, Record<string, unknown>>;
    const section = (name: string): Record<string, unknown> => {
      if (r[name] === undefined || r[name] === null || typeof r[name] !== 'object') r[name] = {};
      return r[name]!;
    };
    const int = (v: string): number | string => (/^-?\d+$/.test(v) ? Number(v) : v);
    if (flags.port !== undefined) section('server').port = int(flags.port);
    if (flags.host !== undefined) section('server').host = flags.host;
    if (flags.workers !== undefined) section('server').workers = int(flags.workers);
    if (flags['admin-port'] !== undefined) section('admin').port = int(flags['admin-port']);
    if (flags['log-level'] !== undefined) section('logging').level = flags['log-level'];
    if (flags.pretty) section('logging').pretty = true;
    if (flags['no-access-log']) section('logging').accessLog = false;
    if (flags.router !== undefined) section('variants').router = flags.router;
    if (flags.pool !== undefined) section('variants').pool = flags.pool;
    if (flags.metrics !== undefined) section('variants').metrics = flags.metrics;
    if (flags['upstream-client'] !== undefined) section('variants').upstream = flags['upstream-client'];
    if (flags.server !== undefined) section('variants').server = flags.server;
    return r;
  };
}

async function main(): Promise<void> {
  if (cluster.isWorker) {
    runWorker();
    return;
  }
  let flags: Flags;
  try {
    flags = parse().values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  if (flags.help) {
    process.stdout.write(HELP);
    return;
  }
  const prepare = withOverrides(flags);
  if (flags.check) await checkAndExit(flags.config, prepare);
  const initial: ValidationResult = flags.config !== undefined ? loadConfigFile(flags.config, prepare) : validateConfig(prepare(defaultConfig));
  if (!initial.ok) {
    process.stderr.write(`invalid config${flags.config ? ` ${flags.config}` : ''}:\n  ${initial.errors.join('\n  ')}\n`);
    process.exit(1);
  }
  const warnings = configWarnings(initial.value);
  const source = flags.config !== undefined ? resolve(flags.config) : 'embedded default config';
  const config = initial.value;
  const logger = createLogger(config.logging, { pid: process.pid, role: config.server.workers === 0 ? 'gateway' : 'orchestrator' });
  if (warnings.length > 0) logger.warn({ config: source, warnings }, 'config warnings (run --check to list them)');
  // Repeated on a line of its own: buried in a list, an open admin API (config, reloads, dashboard) is easy to miss.
  const exposed = adminExposedWithoutAuth(config);
  if (exposed !== null) logger.warn({ host: config.admin.host, port: config.admin.port }, `ADMIN API EXPOSED WITHOUT AUTHENTICATION: ${exposed}`);
  let ready = false;
  // SIGHUP's default action ends the process, and startup (workers booting, plugins initialising) takes seconds:
  // a reload signal sent then (a config tool right after a deploy) killed the gateway it meant to reload. Taken
  // from here on; one that arrives before the gateway serves is applied once it does.
  let hupWhileStarting = false;
  let onHup = (): void => {
    if (!hupWhileStarting) logger.info('SIGHUP while starting: the config file is reloaded once the gateway serves');
    hupWhileStarting = true;
  };
  process.on('SIGHUP', () => onHup());
  // SIGUSR2 (SIGUSR1 is node's debugger signal) reopens the access log file after logrotate moved it; taken from
  // here on, since its default action would end the gateway. Before the gateway serves there is nothing to reopen.
  let reopenLogs = (): void => {};
  process.on('SIGUSR2', () => {
    logger.info('SIGUSR2: reopening the access log file');
    reopenLogs();
  });
  exitOnUncaught(() => logger);
  let stop: (() => Promise<void>) | null = null;
  const watcher = flags.config !== undefined ? new ConfigWatcher(flags.config, prepare) : null;

  let reloadFromFile: () => Promise<ReloadResult>;
  let rejectReload: (errors: string[], what?: string) => ReloadResult;
  let clearReloadError: () => void;
  let applyConfig: (c: GatewayConfig) => Promise<ReloadResult>;
  let admin: AdminServer | null = null;
  let listening = 0;

  if (config.server.workers === 0) {
    let gateway: Gateway;
    try {
      gateway = await Gateway.create(config, { logger, evaluateAlerts: true });
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exit(1);
    }
    let port: number;
    try {
      port = await gateway.listen();
    } catch (err) {
      // A port already taken is outside input: one line naming the setting, as for the admin listener.
      const e = err as NodeJS.ErrnoException;
      process.stderr.write(
        `gateway failed to start: listen on ${hostPort(config.server.host, config.server.port)} (server.host / server.port): ${e.code ?? e.message}\n`,
      );
      await gateway.close();
      process.exit(1);
    }
    applyConfig = (c) => gateway.apply(c);
    rejectReload = (errors, what) => gateway.rejectReload(errors, what);
    clearReloadError = () => gateway.clearReloadError();
    reloadFromFile = async () => reloadFile(watcher, applyConfig, rejectReload);
    if (config.admin.enabled)
      admin = new AdminServer(
        inProcessAdminSource(
          gateway,
          () => reloadFromFile(),
          () => ready,
        ),
        { auth: config.admin.auth },
      );
    stop = () => gateway.close();
    reopenLogs = () => gateway.reopenLogs();
    listening = port;
  } else {
    const orchestrator = new Orchestrator(config, logger);
    let port: number;
    try {
      port = await orchestrator.start();
    } catch (err) {
      process.stderr.write(`gateway failed to start: ${(err as Error).message}\n`);
      await orchestrator.shutdown(1000);
      process.exit(1);
    }
    applyConfig = (c) => orchestrator.apply(c);
    rejectReload = (errors, what) => orchestrator.rejectReload(errors, what);
    clearReloadError = () => orchestrator.clearReloadError();
    reloadFromFile = async () => reloadFile(watcher, applyConfig, rejectReload);
    if (config.admin.enabled)
      admin = new AdminServer(
        orchestrator.adminSource(
          () => ready,
          () => reloadFromFile(),
        ),
        { auth: config.admin.auth },
      );
    stop = () => orchestrator.shutdown();
    reopenLogs = () => orchestrator.reopenLogs();
    listening = port;
  }

  // One line that answers "which file, which address": logged once every listener is bound, so the ports are real.
  let adminAddress: string | null = null;
  if (admin !== null) {
    let adminPort: number;
    try {
      adminPort = await admin.listen(config.admin.port, config.admin.host);
    } catch (err) {
      // A port already taken is outside input: one line naming the setting, and the workers (serving already)
      // drained, rather than an unhandled rejection's stack trace with the workers cut off.
      const e = err as NodeJS.ErrnoException;
      process.stderr.write(`admin listener failed on ${hostPort(config.admin.host, config.admin.port)} (admin.host / admin.port): ${e.code ?? e.message}\n`);
      await stop?.();
      process.exit(1);
    }
    adminAddress = hostPort(config.admin.host, adminPort);
    logger.info({ adminPort, address: adminAddress }, 'admin listening');
  }
  logger.info(
    {
      port: listening,
      address: hostPort(config.server.host, listening),
      tls: config.server.tls !== undefined,
      admin: adminAddress ?? 'disabled',
      config: source,
      workers: config.server.workers,
    },
    'gateway listening',
  );
  if (watcher !== null) {
    // The watcher validates; a valid file is applied, an invalid one only recorded and logged, in one line (the
    // old config keeps serving).
    watcher.on('change', (c) => void applyConfig(c));
    watcher.on('invalid', (errors) => void rejectReload(errors, 'config file rejected'));
    watcher.on('restored', () => {
      logger.info('config file holds the config in force again; the last reload error is cleared');
      clearReloadError();
    });
    watcher.start();
  }
  ready = true;

  onHup = () => void reloadFromFile();
  if (hupWhileStarting) onHup();
  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    ready = false;
    logger.info({ signal }, 'draining');
    watcher?.close();
    await stop?.();
    await admin?.close();
    logger.info('stopped');
    logger.flush?.();
    setTimeout(() => process.exit(0), 20);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/**
 * --check: every layer (schema, references, files, plugin names and options, then a dry run of the plugins'
 * init) in one pass, so one run lists every mistake; exit 0 valid (warnings printed), 1 invalid.
 */
async function checkAndExit(file: string | undefined, prepare: (raw: unknown) => unknown): Promise<never> {
  const name = file ?? '(embedded default)';
  const read: Result<RawConfigFile> =
    file !== undefined ? readConfigFile(file, prepare) : { ok: true, value: { raw: prepare(defaultConfig), baseDir: process.cwd() } };
  const opts = file !== undefined && read.ok ? { baseDir: read.value.baseDir } : {};
  const problems = read.ok
    ? await checkConfig(read.value.raw, opts, (c) => dryRun(c, resolveVariants(c.variants), createLogger({ level: 'silent', pretty: false })))
    : read.errors;
  if (problems.length > 0 || !read.ok) {
    process.stderr.write(`invalid config ${name}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n  ${problems.join('\n  ')}\n`);
    process.exit(1);
  }
  // Warnings are about a valid config: with errors, they wait for the next run.
  const validated = validateConfig(read.value.raw, opts);
  const warnings = validated.ok ? configWarnings(validated.value) : [];
  process.stderr.write(warnings.map((w) => `warning: ${w}\n`).join(''));
  const note = warnings.length === 0 ? '' : ` (${warnings.length} warning${warnings.length === 1 ? '' : 's'})`;
  process.stdout.write(`config ${name} is valid${note}\n`);
  process.exit(0);
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Re-read the file now; the watcher is told not to emit so the result is applied exactly once, here. */
async function reloadFile(
  watcher: ConfigWatcher | null,
  apply: (c: GatewayConfig) => Promise<ReloadResult>,
  reject: (errors: string[]) => ReloadResult,
): Promise<ReloadResult> {
  if (watcher === null) return reject(['/: the gateway runs on the embedded config; there is no file to reload']);
  const result = watcher.read();
  if (!result.ok) return reject(result.errors);
  return apply(result.value);
}

void main();
