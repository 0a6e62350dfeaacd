import type { MatchCondition, RouteConfig } from './types.js';

/**
 * The name a route's metrics, dashboard row and alert rules carry: its `name`, else its methods and path, with its
 * hosts before the path and its match conditions after it when it has them (two routes on one path for two hosts
 * must not share one series): `GET /users`, `GET api.example.com/users`, `* /beta if x-beta=1 & ?debug`.
 */
export function routeName(route: RouteConfig): string {
  if (route.name !== undefined) return route.name;
  const hosts = route.hosts !== undefined && route.hosts.length > 0 ? route.hosts.join(',') : '';
  const conditions = [...(route.match?.headers ?? []).map((c) => describe(c, '')), ...(route.match?.query ?? []).map((c) => describe(c, '?'))];
  return `${route.methods.join(',')} ${hosts}${route.path}${conditions.length > 0 ? ` if ${conditions.join(' & ')}` : ''}`;
}

function describe(c: MatchCondition, prefix: string): string {
  if (c.value !== undefined) return `${prefix}${c.name}=${c.value}`;
  if (c.regex !== undefined) return `${prefix}${c.name}~/${c.regex}/`;
  return `${c.present === false ? '!' : ''}${prefix}${c.name}`;
}
