import type { Logger } from 'pino';
import { carriesStatus, PluginHookError, statusOf } from '../base/errors.js';
import { fail, ok, type Result } from '../base/result.js';
import type { PluginEntry } from '../config/types.js';
import type { RequestState } from '../data/request-state.js';
import type { AnyPlugin } from './loader.js';
import { validatePluginOptions } from './loader.js';
import { HOOK_NAMES, type HookName, type HookStats, type PluginApi, type PluginInstance, type RequestHook } from './types.js';

/** One initialised plugin instance (a global entry, or a route's own entry) with its per-hook statistics. */
export interface PluginSlot {
  readonly name: string;
  readonly version: string;
  /** '' for a global entry, else the route's name */
  readonly scope: string;
  readonly instance: PluginInstance;
  readonly stats: Record<HookName, HookStats>;
  /** the plugin's own logger (api.logger): what its destroy failures are logged with */
  readonly logger: Logger;
}

type Phase = 'preRoute' | 'preHandler' | 'postHandler' | 'postResponse';

/**
 * The hooks of one phase for one route, flattened at config-build time into parallel arrays so the request
 * path is a plain indexed loop with no lookups.
 */
export class PhaseChain {
  readonly fns: RequestHook[] = [];
  readonly stats: HookStats[] = [];
  /** who owns each hook, read only when one throws (to name it in the error) */
  readonly slots: PluginSlot[] = [];
  constructor(
    readonly phase: Phase,
    slots: readonly PluginSlot[],
  ) {
    for (const slot of slots) {
      const fn = slot.instance[phase];
      if (fn !== undefined) {
        this.fns.push(fn.bind(slot.instance));
        this.stats.push(slot.stats[phase]);
        this.slots.push(slot);
      }
    }
  }
  get length(): number {
    return this.fns.length;
  }
}

/**
 * Runs a phase's hooks in order. Stays synchronous while the hooks are (no promise is created for sync
 * plugins); switches to async at the first hook that returns a thenable. Stops early once a hook has answered
 * the request (ctx.halted). A throwing hook is counted and its error propagates to the caller's onError path,
 * wrapped in a PluginHookError naming the plugin and hook unless it carries its own HTTP status.
 * Consecutive synchronous hooks share clock reads (one hook's end is the next one's start): half the
 * performance.now() calls, and the loop's own few instructions land in the hook's time.
 */
export function runPhase(chain: PhaseChain, ctx: RequestState, from = 0): void | Promise<void> {
  // hooks get the request's handle (core/data/context.ts), never the pooled state; the pipeline made it before this
  const fns = chain.fns;
  const n = fns.length;
  if (from >= n) return;
  const always = chain.phase === 'postResponse';
  let t0 = performance.now();
  for (let i = from; i < n; i++) {
    if (ctx.halted && !always) return;
    const stats = chain.stats[i]!;
    stats.calls++;
    let result: void | Promise<void>;
    let thenable: boolean;
    try {
      result = fns[i]!(ctx.handle!);
      // inside the try: a returned object whose `then` getter throws is this hook's failure too
      thenable = result !== undefined && typeof (result as Promise<void>).then === 'function';
    } catch (err) {
      stats.errors++;
      stats.totalMs += performance.now() - t0;
      throw hookError(chain, i, ctx, err);
    }
    if (thenable) return finishAsync(chain, ctx, i, result as Promise<void>, t0);
    const t1 = performance.now();
    stats.totalMs += t1 - t0;
    t0 = t1;
  }
}

async function finishAsync(chain: PhaseChain, ctx: RequestState, i: number, pending: Promise<void>, t0: number): Promise<void> {
  const stats = chain.stats[i]!;
  // what the pipeline names if this hook outlives server.hookTimeoutMs (it then bumps ctx.hookWait.epoch)
  const epoch = ctx.hookWait.epoch;
  ctx.hookWait.slot = chain.slots[i]!;
  ctx.hookWait.hook = chain.phase;
  try {
    await pending;
  } catch (err) {
    // given up on: the pipeline counted the timeout and answered; the rest of the phase must not run
    if (ctx.hookWait.epoch !== epoch) return;
    stats.errors++;
    stats.totalMs += performance.now() - t0;
    throw hookError(chain, i, ctx, err);
  }
  if (ctx.hookWait.epoch !== epoch) return;
  stats.totalMs += performance.now() - t0;
  const rest = runPhase(chain, ctx, i + 1);
  if (rest !== undefined) await rest;
}

/**
 * An error a hook threw, named after the hook. Errors that carry a status (HttpError, or a plugin's own error with
 * a `statusCode`: see carriesStatus) are answers a plugin chose and pass through unchanged, as do errors already
 * wrapped by a nested phase.
 */
function hookError(chain: PhaseChain, i: number, ctx: RequestState, err: unknown): unknown {
  if (err instanceof PluginHookError) return err;
  if (choseAnswer(err)) return err;
  const slot = chain.slots[i]!;
  const route = (ctx.route as { name?: unknown } | null)?.name;
  return new PluginHookError(slot.name, chain.phase, typeof route === 'string' ? route : null, slot.scope, err);
}

/**
 * Whether an error is an answer someone chose: it carries a statusCode (carriesStatus) and that code is a 4xx/5xx
 * number. `{ statusCode: 200 }` or `statusCode: 'teapot'` thrown by a careless plugin becomes a 500 all the same
 * (statusOf), but as a failure: logged, with the plugin's name, not passed off as a choice.
 */
export function choseAnswer(err: unknown): boolean {
  if (!carriesStatus(err)) return false;
  const code = (err as { statusCode?: unknown }).statusCode;
  return code === statusOf(err);
}

/** What onError hooks are given: the hook's own error, not the wrapper that names it for the log. */
function originalError(error: unknown): unknown {
  return error instanceof PluginHookError ? error.cause : error;
}

/**
 * onError hooks: every one runs (an onError that throws or rejects is counted and skipped, never masks the
 * original). Synchronous while the hooks are, like runPhase.
 */
export function runErrorHooks(slots: readonly PluginSlot[], ctx: RequestState, error: unknown, from = 0): void | Promise<void> {
  if (from === 0) error = originalError(error);
  for (let i = from; i < slots.length; i++) {
    const slot = slots[i]!;
    const fn = slot.instance.onError;
    if (fn === undefined) continue;
    const stats = slot.stats.onError;
    stats.calls++;
    const t0 = performance.now();
    let result: void | Promise<void>;
    let thenable: boolean;
    try {
      result = fn.call(slot.instance, ctx.handle!, error);
      thenable = result !== undefined && typeof (result as Promise<void>).then === 'function';
    } catch {
      stats.errors++;
      stats.totalMs += performance.now() - t0;
      continue;
    }
    if (thenable) return finishErrorHookAsync(slots, ctx, error, i, result as Promise<void>, t0);
    stats.totalMs += performance.now() - t0;
  }
}

async function finishErrorHookAsync(
  slots: readonly PluginSlot[],
  ctx: RequestState,
  error: unknown,
  i: number,
  pending: Promise<void>,
  t0: number,
): Promise<void> {
  const stats = slots[i]!.stats.onError;
  const epoch = ctx.hookWait.epoch;
  ctx.hookWait.slot = slots[i]!;
  ctx.hookWait.hook = 'onError';
  let failed = false;
  try {
    await pending;
  } catch {
    failed = true;
  }
  // given up on (server.hookTimeoutMs): the error answer is already out, the other onError hooks are skipped
  if (ctx.hookWait.epoch !== epoch) return;
  if (failed) stats.errors++;
  stats.totalMs += performance.now() - t0;
  const rest = runErrorHooks(slots, ctx, error, i + 1);
  if (rest !== undefined) await rest;
}

function emptyStats(): Record<HookName, HookStats> {
  const s = {} as Record<HookName, HookStats>;
  for (const h of HOOK_NAMES) s[h] = { calls: 0, errors: 0, totalMs: 0 };
  return s;
}

/** Calls `init` for one config entry and validates what comes back. */
export async function initPluginSlot(plugin: AnyPlugin, entry: PluginEntry, path: string, scope: string, api: PluginApi): Promise<Result<PluginSlot>> {
  const opts = validatePluginOptions(plugin, entry.options, `${path}/options`);
  if (!opts.ok) return opts;
  let instance: PluginInstance;
  try {
    instance = await plugin.init(opts.value, api);
  } catch (err) {
    return fail([`${path}: plugin "${entry.name}" init failed: ${(err as Error).message}`]);
  }
  if (instance === null || typeof instance !== 'object') {
    return fail([`${path}: plugin "${entry.name}" init must return an object of hooks`]);
  }
  const bad = HOOK_NAMES.filter((h) => instance[h] !== undefined && typeof instance[h] !== 'function');
  if (bad.length > 0) return fail(bad.map((h) => `${path}: plugin "${entry.name}" hook "${h}" must be a function`));
  return ok({ name: plugin.name, version: plugin.version, scope, instance, stats: emptyStats(), logger: api.logger });
}

/**
 * How long the destroy hooks of one retired runtime may take, all together. A destroy that never settles used to
 * hold the rest of the disposal forever: the other plugins' destroy hooks and the upstream pools of a reloaded
 * config were never closed, and a shutdown never exited (dispose comes after the drain deadline).
 */
export const DESTROY_TIMEOUT_MS = 5000;

/**
 * destroy hooks of retired slots, in config order. A hook that throws, rejects or is still pending when the shared
 * deadline passes is counted and logged with its plugin; the next one runs regardless (the new config is already
 * serving, or the process is stopping).
 */
export async function destroySlots(slots: readonly PluginSlot[], timeoutMs = DESTROY_TIMEOUT_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (const slot of slots) {
    const fn = slot.instance.destroy;
    if (fn === undefined) continue;
    slot.stats.destroy.calls++;
    try {
      const result = fn.call(slot.instance);
      if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
        if (!(await settlesWithin(result as Promise<void>, deadline - performance.now()))) {
          slot.stats.destroy.errors++;
          slot.logger.error({ plugin: slot.name, scope: slot.scope, timeoutMs }, 'plugin destroy hook did not settle in time; disposal goes on without it');
        }
      }
    } catch (err) {
      slot.stats.destroy.errors++;
      slot.logger.error({ err, plugin: slot.name, scope: slot.scope }, 'plugin destroy hook failed');
    }
  }
}

/** true once `p` fulfils, false when `ms` pass first; rejects when `p` does. */
function settlesWithin(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, Math.max(0, ms), false)));
  return Promise.race([Promise.resolve(p).then(() => true), late]).finally(() => clearTimeout(timer));
}
