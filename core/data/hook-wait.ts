/** The plugin whose hook is awaited, as the pipeline names and counts it when it times out (a PluginSlot). */
export interface WaitedSlot {
  readonly name: string;
  readonly stats: Readonly<Record<string, { errors: number }>>;
}

/**
 * The pipeline's bookkeeping for plugin code a request is waiting on (server.hookTimeoutMs): written by the
 * pipeline (core/data/pipeline.ts) and the hook executor (core/plugins/executor.ts), never by plugins. One per
 * context, reset with it.
 */
export class HookWait {
  /**
   * Bumped each time the pipeline gives up waiting on a hook: a promise that settles later belongs to an older
   * epoch and is ignored (and the rest of its phase does not run).
   */
  epoch = 0;
  /**
   * Set once the pipeline gave up on a hook: the hook may still hold the context, so it is never returned to the
   * pool (a late write would land in another request).
   */
  abandoned = false;
  /** performance.now() by which the awaited hook must settle; 0 while nothing is watched */
  deadline = 0;
  /** whether a client that went away ends the wait (not for postResponse: the answer is out) */
  forClient = false;
  /** the plugin whose hook the pipeline awaits (null for a route handler) */
  slot: WaitedSlot | null = null;
  /** the hook awaited: preRoute, preHandler, handler, postHandler, onError or postResponse */
  hook = '';

  reset(): void {
    // a context that was abandoned is never released, so no late promise of an earlier epoch can see this reset
    this.epoch = 0;
    this.abandoned = false;
    this.deadline = 0;
    this.forClient = false;
    this.slot = null;
    this.hook = '';
  }
}
