// Over ~350 lines on purpose: building a runtime (plugins, upstreams, routes, the CORS preflight entries) and the
// compiled route it produces are one unit that a reload swaps whole; splitting them would spread one build over files.
import type { OutgoingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { errorBody, errorHeaders, TlsLoadError } from '../base/errors.js';
import { fail, ok, type Result } from '../base/result.js';
import type { GatewayConfig, PluginEntry, RouteConfig } from '../config/types.js';
import type { Router } from '../contracts/router.js';
import type { VariantFactories } from '../contracts/variants.js';
import { GatewayMetrics, RouteMetrics } from '../observe/metrics.js';
import { PhaseChain, destroySlots, initPluginSlot, type PluginSlot } from '../plugins/executor.js';
import { loadPluginCatalog, type AnyPlugin } from '../plugins/loader.js';
import type { PluginApi, RouteHandler } from '../plugins/types.js';
import { UpstreamManager } from '../proxy/index.js';
import { TrustedProxies } from '../proxy/trust.js';
import { coreHandlers } from './handlers.js';

export const enum RouteKind {
  Static = 0,
  Upstream = 1,
  Handler = 2,
}

/**
 * Bodies up to this size go out as a latin1 string: node:http then joins head and body into one string chunk
 * (a Buffer body stays a separate chunk of the socket writev). Measured by hand on a bare server answering 256
 * bytes: 10.3 → 9.8 µs CPU per request; the gateway-level A/B is reports/ab-one-write (within noise).
 */
export const ONE_WRITE_MAX = 16 * 1024;

/** A route as the request path sees it: everything precomputed at config-build time. */
export interface CompiledRoute {
  readonly index: number;
  readonly name: string;
  readonly config: RouteConfig;
  readonly kind: RouteKind;
  /** static responses: status, headers (content-type and content-length included) and the encoded body */
  readonly status: number;
  readonly headers: OutgoingHttpHeaders;
  readonly body: Buffer;
  /** the same bytes as a latin1 string when small (see ONE_WRITE_MAX) */
  readonly bodyText: string | null;
  readonly handler: RouteHandler | null;
  /** methods the route answers (HEAD along with GET; `['*']` for any): what CORS may advertise for it */
  readonly accepts: readonly string[];
  /**
   * true for the OPTIONS entry the runtime adds on a path whose routes carry cors but do not accept OPTIONS:
   * the route's own hooks answer a preflight; anything else gets the 405 the path would have had without it
   */
  readonly preflightOnly: boolean;
  readonly slots: readonly PluginSlot[];
  readonly preHandler: PhaseChain;
  readonly postHandler: PhaseChain;
  readonly postResponse: PhaseChain;
  /** false when the route has no hooks at all: the server then takes its allocation-free fast path */
  readonly hasHooks: boolean;
  readonly metrics: RouteMetrics;
}

export interface RuntimeDeps {
  /** the router and upstream client this generation builds with, resolved from its config by the control plane */
  variants: Pick<VariantFactories, 'router' | 'upstream'>;
  metrics: GatewayMetrics;
  logger: Logger;
  workerId: number;
  workerCount: number;
  /** plugin counters survive reloads: keyed by plugin name + counter name */
  counters: Map<string, { help: string; value: number }>;
}

/**
 * One immutable generation of the gateway's request handling, built from one validated config: router,
 * plugin instances, upstream pools. A reload builds a new runtime, swaps it in, and disposes the old one once
 * its last in-flight request has finished.
 */
export class GatewayRuntime {
  inFlight = 0;
  private retired = false;
  private disposed = false;

  private constructor(
    readonly version: number,
    readonly config: GatewayConfig,
    readonly router: Router<CompiledRoute>,
    readonly routes: readonly CompiledRoute[],
    /** every method some route registers, probed (slow path only) to tell 405 from 404 */
    readonly methods: readonly string[],
    readonly globalSlots: readonly PluginSlot[],
    readonly allSlots: readonly PluginSlot[],
    readonly preRoute: PhaseChain,
    readonly upstreams: UpstreamManager | null,
    /** server.trustedProxies of this generation: what ctx.clientIp resolves with (the server sets it per request) */
    readonly trustedProxies: TrustedProxies,
  ) {}

  /** Builds every part or nothing: on errors, plugins already initialised are destroyed again. */
  static async build(config: GatewayConfig, version: number, deps: RuntimeDeps): Promise<Result<GatewayRuntime>> {
    const loaded = await loadPluginCatalog(config.pluginDirs);
    if (!loaded.ok) return loaded;
    const catalog = loaded.value;

    const handlers = new Map<string, RouteHandler>(Object.entries(coreHandlers));
    const api: PluginApi = {
      logger: deps.logger,
      workerId: deps.workerId,
      workerCount: deps.workerCount,
      registerHandler(name, handler) {
        if (handlers.has(name)) throw new Error(`handler "${name}" is already registered`);
        handlers.set(name, handler);
      },
      counter(name, help) {
        let c = deps.counters.get(name);
        if (c === undefined) {
          c = { help, value: 0 };
          deps.counters.set(name, c);
        }
        const counter = c;
        return { inc: (by = 1) => void (counter.value += by) };
      },
    };

    const allSlots: PluginSlot[] = [];
    const problems: string[] = [];
    const init = async (entry: PluginEntry, path: string, scope: string): Promise<PluginSlot | null> => {
      const plugin: AnyPlugin | undefined = catalog.get(entry.name);
      if (plugin === undefined) {
        problems.push(`${path}/name: unknown plugin "${entry.name}" (available: ${[...catalog.keys()].join(', ') || 'none'})`);
        return null;
      }
      const r = await initPluginSlot(plugin, entry, path, scope, { ...api, logger: deps.logger.child({ plugin: entry.name }) });
      if (!r.ok) {
        problems.push(...r.errors);
        return null;
      }
      allSlots.push(r.value);
      return r.value;
    };

    const globalSlots: PluginSlot[] = [];
    for (let i = 0; i < config.plugins.length; i++) {
      const entry = config.plugins[i]!;
      if (!entry.enabled) continue;
      const slot = await init(entry, `/plugins/${i}`, '');
      if (slot !== null) globalSlots.push(slot);
    }

    const routeSlots: PluginSlot[][] = [];
    for (let r = 0; r < config.routes.length; r++) {
      const route = config.routes[r]!;
      const own: PluginSlot[] = [];
      for (let i = 0; i < route.plugins.length; i++) {
        const entry = route.plugins[i]!;
        if (!entry.enabled) continue;
        const slot = await init(entry, `/routes/${r}/plugins/${i}`, routeName(route));
        if (slot !== null) own.push(slot);
      }
      // A route's entry replaces the global entry of the same name; globals keep config order, then the route's own.
      const overridden = new Set(route.plugins.map((p) => p.name));
      routeSlots.push([...globalSlots.filter((s) => !overridden.has(s.name)), ...own]);
    }

    for (let r = 0; r < config.routes.length; r++) {
      const h = config.routes[r]!.handler;
      if (h !== undefined && !handlers.has(h)) problems.push(`/routes/${r}/handler: no plugin registered a handler named "${h}"`);
    }

    if (problems.length > 0) {
      await destroySlots(allSlots);
      return fail(problems);
    }

    const trust = new TrustedProxies(config.server.trustedProxies);
    const router = deps.variants.router<CompiledRoute>();
    const methods = new Set<string>();
    const routes: CompiledRoute[] = config.routes.map((rc, i) => compileRoute(rc, i, routeSlots[i]!, handlers, deps.metrics));
    for (const route of routes) {
      for (const m of route.config.methods) {
        router.add(m, route.config.path, route);
        methods.add(m);
      }
    }
    if (addPreflightRoutes(router, routes)) methods.add('OPTIONS');

    let upstreams: UpstreamManager | null = null;
    if (Object.keys(config.upstreams).length > 0) {
      try {
        upstreams = new UpstreamManager(config.upstreams, {
          clientFactory: deps.variants.upstream,
          logger: deps.logger.child({ component: 'upstream' }),
          trustedProxies: config.server.trustedProxies,
          routes: routes.map((r) => ({ name: r.name, config: r.config })),
        });
      } catch (err) {
        // an upstream certificate that vanished or broke between validation and now
        if (!(err instanceof TlsLoadError)) throw err;
        await destroySlots(allSlots);
        return fail(err.errors);
      }
      upstreams.start();
      await upstreams.discover();
    }

    return ok(
      new GatewayRuntime(version, config, router, routes, [...methods], globalSlots, allSlots, new PhaseChain('preRoute', globalSlots), upstreams, trust),
    );
  }

  /** Methods for which `path` has a route: the Allow header of a 405. Slow path only. */
  allowedMethods(path: string): string[] {
    const allowed: string[] = [];
    for (const m of this.methods) {
      if (m === '*') continue;
      try {
        const match = this.router.find(m, path);
        if (match !== null && !match.value.preflightOnly) allowed.push(m);
      } catch {
        return [];
      }
    }
    if (allowed.includes('GET') && !allowed.includes('HEAD')) allowed.push('HEAD');
    return allowed;
  }

  /** Stop taking new requests; dispose once the in-flight ones have finished. */
  retire(): Promise<void> {
    this.retired = true;
    return this.maybeDispose();
  }

  requestDone(): void {
    if (--this.inFlight === 0 && this.retired) void this.maybeDispose();
  }

  private async maybeDispose(): Promise<void> {
    if (this.disposed || this.inFlight > 0) return;
    this.disposed = true;
    await destroySlots(this.allSlots);
    await this.upstreams?.close();
  }

  /** Shutdown: dispose now, whatever is in flight. */
  async dispose(): Promise<void> {
    this.retired = true;
    this.inFlight = 0;
    await this.maybeDispose();
  }
}

/**
 * Builds a throwaway runtime (plugins initialised, then destroyed) to find what validation alone cannot:
 * unknown plugins, plugin options, a plugin whose init throws, handlers nobody registered.
 */
/**
 * Longest a reload's build (plugin modules loaded, every plugin's init) may take: the primary's dry run in cluster
 * mode, the new runtime itself in a single process. Reloads run one after another, so one that never finished (an
 * init awaiting a connection that never comes, a plugin file that is a FIFO) held every later reload, from the
 * watcher, SIGHUP or POST /config/reload, for good.
 */
export const DRY_RUN_TIMEOUT_MS = 30_000;

export function dryRunTimedOut(timeoutMs: number): string {
  return `/: the dry run of the new config did not finish within ${timeoutMs} ms (a plugin's module load or init hangs)`;
}

/**
 * GatewayRuntime.build bounded by `timeoutMs`: past it the reload is refused (the running config keeps serving) and
 * a build that still finishes later is disposed, so its plugins' resources do not linger.
 */
export async function buildWithin(config: GatewayConfig, version: number, deps: RuntimeDeps, timeoutMs: number): Promise<Result<GatewayRuntime>> {
  const build = GatewayRuntime.build(config, version, deps);
  let deadline: NodeJS.Timeout | undefined;
  const timedOut = new Promise<null>((resolve) => (deadline = setTimeout(() => resolve(null), timeoutMs)));
  const first = await Promise.race([build, timedOut]).finally(() => clearTimeout(deadline));
  if (first !== null) return first;
  build.then(
    (late) => (late.ok ? late.value.dispose() : undefined),
    () => undefined,
  );
  return fail([dryRunTimedOut(timeoutMs)]);
}

export async function dryRun(config: GatewayConfig, variants: VariantFactories, logger: Logger): Promise<string[]> {
  const metrics = new GatewayMetrics(variants.metrics);
  try {
    const built = await GatewayRuntime.build(config, 0, { variants, metrics, logger, workerId: -1, workerCount: config.server.workers, counters: new Map() });
    if (!built.ok) return built.errors;
    await built.value.dispose();
    return [];
  } finally {
    metrics.close();
  }
}

export function routeName(route: RouteConfig): string {
  return route.name ?? `${route.methods.join(',')} ${route.path}`;
}

/**
 * A browser's CORS preflight is an OPTIONS request; on a route that does not accept OPTIONS it would match
 * nothing, get a 405 without CORS headers, and the browser would refuse the real request. So each path whose
 * routes carry a cors entry and none of which accepts OPTIONS (or any method) gets an OPTIONS entry running the
 * first such route's hooks: its cors preHandler answers the preflight, advertising the methods the path's
 * routes accept; an OPTIONS that is not a preflight gets the path's 405. Returns whether any was added.
 */
function addPreflightRoutes(router: Router<CompiledRoute>, routes: readonly CompiledRoute[]): boolean {
  const byPath = new Map<string, CompiledRoute[]>();
  for (const route of routes) {
    const list = byPath.get(route.config.path);
    if (list === undefined) byPath.set(route.config.path, [route]);
    else list.push(route);
  }
  let added = false;
  for (const [path, list] of byPath) {
    if (list.some((r) => r.config.methods.includes('OPTIONS') || r.config.methods.includes('*'))) continue;
    const template = list.find((r) => r.slots.some((s) => s.name === 'cors'));
    if (template === undefined) continue;
    const accepts = [...new Set(list.flatMap((r) => r.accepts))];
    const allow = errorHeaders(405, { allow: accepts.join(', ') });
    const body = errorBody(405);
    const preflight: CompiledRoute = {
      ...template,
      kind: RouteKind.Static,
      status: 405,
      headers: allow,
      body,
      bodyText: body.toString('latin1'),
      handler: null,
      accepts,
      preflightOnly: true,
    };
    try {
      router.add('OPTIONS', path, preflight);
      added = true;
    } catch {
      // A router variant that cannot hold this entry (e.g. it conflicts with another pattern): preflights on
      // this path keep the 405 they had before; the real routes were added without trouble.
    }
  }
  return added;
}

/** The methods a route answers: its own, plus HEAD with GET (the router falls back from HEAD to GET). */
function acceptedMethods(rc: RouteConfig): string[] {
  if (rc.methods.includes('*')) return ['*'];
  const out = [...rc.methods];
  if (out.includes('GET') && !out.includes('HEAD')) out.push('HEAD');
  return out;
}

function compileRoute(rc: RouteConfig, index: number, slots: PluginSlot[], handlers: Map<string, RouteHandler>, metrics: GatewayMetrics): CompiledRoute {
  const name = routeName(rc);
  const preHandler = new PhaseChain('preHandler', slots);
  const postHandler = new PhaseChain('postHandler', slots);
  const postResponse = new PhaseChain('postResponse', slots);
  const hasHooks = preHandler.length + postHandler.length + postResponse.length > 0 || slots.some((s) => s.instance.onError !== undefined);
  let kind = RouteKind.Static;
  let status = 200;
  let headers: OutgoingHttpHeaders = {};
  let body: Buffer = Buffer.alloc(0);
  if (rc.upstream !== undefined || rc.backends !== undefined) kind = RouteKind.Upstream;
  else if (rc.handler !== undefined) kind = RouteKind.Handler;
  else if (rc.response !== undefined) {
    const encoded = encodeStaticBody(rc.response.body, rc.response.headers);
    status = rc.response.status;
    body = encoded.body;
    headers = encoded.headers;
  }
  return {
    index,
    name,
    config: rc,
    kind,
    status,
    headers,
    body,
    bodyText: body.length <= ONE_WRITE_MAX ? body.toString('latin1') : null,
    handler: rc.handler !== undefined ? handlers.get(rc.handler)! : null,
    accepts: acceptedMethods(rc),
    preflightOnly: false,
    slots,
    preHandler,
    postHandler,
    postResponse,
    hasHooks,
    metrics: metrics.route(name),
  };
}

/** A string is sent as-is (text/plain unless set); anything else as JSON. Headers get content-length. */
export function encodeStaticBody(value: unknown, given: Record<string, string>): { body: Buffer; headers: OutgoingHttpHeaders } {
  const headers: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(given)) headers[k.toLowerCase()] = v;
  let body: Buffer;
  if (typeof value === 'string') {
    body = Buffer.from(value);
    if (headers['content-type'] === undefined && body.length > 0) headers['content-type'] = 'text/plain; charset=utf-8';
  } else {
    body = Buffer.from(JSON.stringify(value ?? null));
    if (headers['content-type'] === undefined) headers['content-type'] = 'application/json; charset=utf-8';
  }
  headers['content-length'] = String(body.length);
  return { body, headers };
}
