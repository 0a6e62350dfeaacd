import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from '../../../data/context.js';
import type { GatewayPlugin, PluginInstance, RouteInfo } from '../../types.js';
import { addVary, stagedHeaders } from '../shared/headers.js';

export interface CorsOptions {
  /** exact origins, "*" for any, or "/regex/" strings matched against the whole Origin */
  origins: string[];
  credentials: boolean;
  maxAgeS: number;
  exposedHeaders: string[];
  /** allowed request headers; empty = whatever the preflight asks for */
  allowedHeaders: string[];
  methods: string[];
}

const strings = { type: 'array', items: { type: 'string', minLength: 1 } } as const;

type OriginMatcher = (origin: string) => boolean;

function compileOrigins(origins: string[]): { any: boolean; match: OriginMatcher } {
  const exact = new Set<string>();
  const patterns: RegExp[] = [];
  let any = false;
  for (const o of origins) {
    if (o === '*') any = true;
    else if (o.length > 2 && o.startsWith('/') && o.endsWith('/')) patterns.push(new RegExp(`^(?:${o.slice(1, -1)})$`));
    else exact.add(o.replace(/\/$/, '').toLowerCase());
  }
  return {
    any,
    match: (origin) => {
      if (any) return true;
      if (exact.has(origin.toLowerCase())) return true;
      for (const p of patterns) if (p.test(origin)) return true;
      return false;
    },
  };
}

/**
 * CORS. Preflights (OPTIONS with Access-Control-Request-Method) are answered by the gateway and never reach the
 * upstream, in preHandler, by the cors entry in force on the route the preflight targets (a route's own entry
 * replaces the global one there too). A route that does not accept OPTIONS still gets its preflights: the
 * runtime adds an OPTIONS entry for them (core/data/runtime.ts addPreflightRoutes). Only the methods the route
 * accepts (and the options allow) are advertised; a preflight for another method, like one from an origin not
 * allowed, gets a 403 without CORS headers. Actual requests get the allow headers on whatever answer they
 * receive, errors included, and always `Vary: Origin`.
 */
export const corsPlugin: GatewayPlugin<CorsOptions> = {
  name: 'cors',
  version: '1.0.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      origins: { ...strings, default: ['*'] },
      credentials: { type: 'boolean', default: false },
      maxAgeS: { type: 'integer', minimum: 0, default: 600 },
      exposedHeaders: { ...strings, default: [] },
      allowedHeaders: { ...strings, default: [] },
      methods: { ...strings, default: ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE'] },
    },
  },
  init(options): PluginInstance {
    for (const o of options.origins) {
      if (o.length > 2 && o.startsWith('/') && o.endsWith('/')) {
        try {
          new RegExp(o.slice(1, -1));
        } catch (err) {
          throw new Error(`cors origins: bad pattern ${o}: ${(err as Error).message}`, { cause: err });
        }
      }
    }
    const origins = compileOrigins(options.origins);
    // The Fetch spec forbids "*" with credentials, and echoing every Origin instead would let any site read answers
    // sent with the user's cookies: refused, the origins must be listed.
    if (origins.any && options.credentials) {
      throw new Error('cors: credentials with origins "*" would let every website read credentialed answers; list the allowed origins');
    }
    const wildcard = origins.any;
    const methodList = options.methods.map((m) => m.toUpperCase());
    const methods = methodList.join(', ');
    // Per route (routes live as long as this instance: both belong to one runtime): what to advertise for it.
    const perRoute = new WeakMap<object, { allowed: ReadonlySet<string>; header: string }>();
    const anyRoute = { allowed: new Set(methodList), header: methods };
    const policyFor = (route: RouteInfo | null): { allowed: ReadonlySet<string>; header: string } => {
      if (route === null || route.accepts.includes('*')) return anyRoute;
      let p = perRoute.get(route);
      if (p === undefined) {
        const list = methodList.filter((m) => route.accepts.includes(m));
        p = { allowed: new Set(list), header: list.join(', ') };
        perRoute.set(route, p);
      }
      return p;
    };
    const allowedHeaders = options.allowedHeaders.join(', ');
    const exposed = options.exposedHeaders.join(', ');
    const maxAge = String(options.maxAgeS);

    const preflight = (ctx: RequestContext): void => {
      const req = ctx.req!;
      const origin = req.headers.origin;
      const headers: OutgoingHttpHeaders = { vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers', 'content-length': '0' };
      const policy = policyFor(ctx.route as RouteInfo | null);
      const asked = req.headers['access-control-request-method'];
      if (origin === undefined || !origins.match(origin) || typeof asked !== 'string' || !policy.allowed.has(asked)) {
        ctx.send(403, headers, null);
        return;
      }
      headers['access-control-allow-origin'] = wildcard ? '*' : origin;
      if (options.credentials) headers['access-control-allow-credentials'] = 'true';
      headers['access-control-allow-methods'] = policy.header;
      const askedHeaders = req.headers['access-control-request-headers'];
      const allow = allowedHeaders !== '' ? allowedHeaders : askedHeaders;
      if (allow !== undefined && allow !== '') headers['access-control-allow-headers'] = allow;
      headers['access-control-max-age'] = maxAge;
      ctx.send(204, headers, null);
    };

    const isPreflight = (ctx: RequestContext): boolean => ctx.method === 'OPTIONS' && ctx.req!.headers['access-control-request-method'] !== undefined;

    const decorate = (ctx: RequestContext): void => {
      const res = ctx.res;
      if (res === null) return;
      addVary(ctx, 'Origin');
      const origin = ctx.req!.headers.origin;
      if (origin === undefined || !origins.match(origin)) return;
      ctx.addResponseHeader('access-control-allow-origin', wildcard ? '*' : origin);
      if (options.credentials) ctx.addResponseHeader('access-control-allow-credentials', 'true');
      if (exposed !== '') ctx.addResponseHeader('access-control-expose-headers', exposed);
    };

    return {
      preHandler(ctx) {
        if (isPreflight(ctx)) preflight(ctx);
        else decorate(ctx);
      },
      postHandler(ctx) {
        if (ctx.res === null || isPreflight(ctx)) return;
        // An upstream's own Vary (staged) would replace the one set on the response: merge into it.
        const h = stagedHeaders(ctx);
        if (h.vary !== undefined) addVary(ctx, 'Origin');
        // The gateway's policy is the one in force: an upstream's own CORS answer would replace ours in writeHead.
        delete h['access-control-allow-origin'];
        delete h['access-control-allow-credentials'];
        delete h['access-control-expose-headers'];
      },
    };
  },
};

export default corsPlugin;
