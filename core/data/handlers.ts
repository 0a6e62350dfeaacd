import type { RouteHandler } from '../plugins/types.js';

/**
 * Handlers the core provides without a plugin (select with `"handler": "echo"`). `echo` answers with what the
 * gateway saw of the request: useful for demos, smoke tests and debugging header rules.
 */
export const coreHandlers: Record<string, RouteHandler> = {
  echo(ctx) {
    const body = JSON.stringify({
      method: ctx.method,
      path: ctx.pathname,
      query: Object.fromEntries(new URLSearchParams(ctx.search)),
      params: { ...ctx.params },
      headers: ctx.req?.headers ?? {},
    });
    ctx.statusCode = 200;
    ctx.responseHeaders = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) };
    ctx.body = body;
  },
};
