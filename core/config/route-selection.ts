import { isIPv6 } from 'node:net';
import { compileRouteRegex, unsafeRegexReason } from './regex-safety.js';
import type { MatchCondition, RouteConfig } from './types.js';

/**
 * What the schema cannot say about a route's `hosts`, `match`, `redirect` and regex `rewrite` (docs/routing.md),
 * each problem naming its JSON path.
 */

/** DNS-style labels (underscores allowed, as service names use them), optionally one trailing dot. */
const HOST_NAME = /^[A-Za-z0-9_]([A-Za-z0-9_-]*)(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*\.?$/;

/** Why `host` is not a host name or bracketed IPv6 literal (wildcard: a leading `*.` allowed), or null. */
export function hostPatternProblem(host: string, wildcard: boolean): string | null {
  if (host.startsWith('[')) {
    if (host.endsWith(']') && isIPv6(host.slice(1, -1))) return null;
    return `${JSON.stringify(host)} is not a bracketed IPv6 address`;
  }
  const name = wildcard && host.startsWith('*.') ? host.slice(2) : host;
  if (name.includes('*')) return `${JSON.stringify(host)}: a wildcard may only be the whole first label ("*.example.com")`;
  if (name.includes(':')) return `${JSON.stringify(host)}: no port (routes match the host whatever the port)`;
  if (!HOST_NAME.test(name) || name.length > 253) return `${JSON.stringify(host)} is not a host name`;
  return null;
}

export function routeSelectionErrors(route: RouteConfig, i: number): string[] {
  const errors: string[] = [];
  route.hosts?.forEach((h, j) => {
    const problem = hostPatternProblem(h, true);
    if (problem !== null) errors.push(`/routes/${i}/hosts/${j}: ${problem}`);
  });
  conditionErrors(route.match?.headers, `/routes/${i}/match/headers`, true, errors);
  conditionErrors(route.match?.query, `/routes/${i}/match/query`, false, errors);

  const r = route.redirect;
  if (r !== undefined) {
    if (r.path !== undefined && r.prefix !== undefined)
      errors.push(`/routes/${i}/redirect: "path" and "prefix" are exclusive (replace the whole path, or its prefix)`);
    if (r.host !== undefined) {
      const problem = hostPatternProblem(r.host, false);
      if (problem !== null) errors.push(`/routes/${i}/redirect/host: ${problem}`);
    }
  }

  const rw = route.rewrite;
  if (rw !== undefined && typeof rw !== 'string') {
    const reason = unsafeRegexReason(rw.regex);
    if (reason !== null) errors.push(`/routes/${i}/rewrite/regex: refused: ${reason}`);
    else {
      const problem = replacementProblem(rw.regex, rw.replacement);
      if (problem !== null) errors.push(`/routes/${i}/rewrite/replacement: ${problem}`);
    }
  }
  return errors;
}

function conditionErrors(list: MatchCondition[] | undefined, at: string, header: boolean, errors: string[]): void {
  list?.forEach((c, j) => {
    const forms = (['value', 'regex', 'present'] as const).filter((k) => c[k] !== undefined);
    if (forms.length !== 1) {
      errors.push(`${at}/${j}: must have exactly one of "value", "regex", "present" (found ${forms.length === 0 ? 'none' : forms.join(', ')})`);
      return;
    }
    if (header && !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(c.name)) errors.push(`${at}/${j}/name: ${JSON.stringify(c.name)} is not an HTTP header name`);
    if (c.regex !== undefined) {
      const reason = unsafeRegexReason(c.regex);
      if (reason !== null) errors.push(`${at}/${j}/regex: refused: ${reason}`);
    }
  });
}

/** A `$n` or `$<name>` in the replacement that the regex does not capture. */
function replacementProblem(regex: string, replacement: string): string | null {
  const re = compileRouteRegex(regex);
  const groups = (new RegExp(`${re.source}|`, 's').exec('') as RegExpExecArray).length - 1;
  const names = new Set(Object.keys(new RegExp(`${re.source}|`, 's').exec('')?.groups ?? {}));
  for (const m of replacement.matchAll(/\$(\$|<([^>]*)>|(\d{1,2}))/g)) {
    if (m[1] === '$') continue;
    if (m[2] !== undefined && !names.has(m[2])) return `"$<${m[2]}>" names no group of the regex`;
    if (m[3] !== undefined && (Number(m[3]) === 0 || Number(m[3]) > groups)) return `"$${m[3]}": the regex has ${groups} capture group(s)`;
  }
  return null;
}
