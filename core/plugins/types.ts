import type { Logger } from 'pino';
import type { RequestContext } from '../data/context.js';

/**
 * The plugin API: first-party plugins (core/plugins/builtin/) and users' own plugins use exactly this.
 *
 * A plugin module's default export (or the object registered in config) is a GatewayPlugin. The gateway calls
 * `init(options, api)` once per configured instance (once for a global entry, once per route entry) and gets
 * back the instance's hooks. Hooks run in this fixed order per request:
 *
 *   preRoute → (route match) → preHandler → handler → postHandler → send → postResponse
 *
 * with onError when any stage throws, and destroy when the instance is retired (config reload or shutdown).
 * Global plugins run before route-level ones in config order; a route-level entry replaces the global entry of
 * the same name. preRoute runs only for global plugins (the route is not known yet).
 * A hook may answer the request itself with `ctx.send(status, headers, body)`: the remaining pre-send stages
 * are skipped and the staged response is sent (postResponse still runs).
 * A hook that throws (or rejects) sends the request to onError and yields a 500 for that request only.
 * A WebSocket upgrade (ctx.upgrade; no ctx.res) runs the same machine up to the handler: preRoute, preHandler
 * and onError as above; its handler is the upstream tunnel, and postHandler and postResponse do not run for it.
 * A refusal staged with ctx.send is written raw on the socket and the connection closed.
 */
export type HookResult = void | Promise<void>;
export type RequestHook = (ctx: RequestContext) => HookResult;
export type ErrorHook = (ctx: RequestContext, error: unknown) => HookResult;

export interface PluginInstance {
  preRoute?: RequestHook;
  preHandler?: RequestHook;
  postHandler?: RequestHook;
  postResponse?: RequestHook;
  onError?: ErrorHook;
  destroy?: () => HookResult;
}

/** Something a plugin can register to answer requests on routes that name it: `{ "handler": "name" }`. */
export type RouteHandler = (ctx: RequestContext) => HookResult;

export interface PluginApi {
  readonly logger: Logger;
  /** Register a named handler that routes select with `"handler": name`. */
  registerHandler(name: string, handler: RouteHandler): void;
  /** Increment a plugin-owned counter exposed on /metrics and /stats as `gateway_plugin_<name>`. */
  counter(name: string, help: string): { inc(by?: number): void };
  /** Worker index (0 in single-process mode) and worker count, for plugins that coordinate across workers. */
  readonly workerId: number;
  readonly workerCount: number;
}

export interface GatewayPlugin<Options = Record<string, unknown>> {
  name: string;
  /** semver of the plugin */
  version: string;
  /** JSON Schema for the options; options are validated (and defaults applied) before init */
  optionsSchema?: Record<string, unknown>;
  init(options: Options, api: PluginApi): PluginInstance | Promise<PluginInstance>;
}

/**
 * What a plugin may read from `ctx.route` (typed `unknown` on the context): the matched route, or null in
 * preRoute and when nothing matched.
 */
export interface RouteInfo {
  readonly name: string;
  /** methods the route answers, HEAD included with GET; `['*']` when it answers any */
  readonly accepts: readonly string[];
}

export const HOOK_NAMES = ['preRoute', 'preHandler', 'postHandler', 'postResponse', 'onError', 'destroy'] as const;
export type HookName = (typeof HOOK_NAMES)[number];

export interface HookStats {
  calls: number;
  errors: number;
  totalMs: number;
}
