import { resolveDots } from '../proxy/path.js';

/**
 * The path as a lenient upstream may read it, for one check: a request must be routed the way its upstream will
 * understand it. Routing matches the path as received, while the proxy forwards it with dot segments resolved and
 * an upstream may decode more (percent-encoded unreserved characters, RFC 3986 §6.2.2.2; `\` as a separator;
 * `;parameters` dropped, as servlet containers do). An encoded separator (%2f, %5c) stays part of its segment —
 * params such as `a%2Fb` are legitimate — unless it sits next to a dot segment, which only a traversal needs:
 * then there is no canonical reading (null, a 400). `/public/../private/x`, `//private/x`,
 * `/%70rivate/x` or `/private;/x` would otherwise match a catch-all route without the private route's auth,
 * ip-filter or rate-limit, and reach the upstream as `/private/x`.
 */

// the path holds something a reading may change: a percent-escape, a backslash, `//`, a dot segment, a `;`
const MAY_CHANGE = /%|\\|\/\/|\/\.|;/;

const UNRESERVED = /[A-Za-z0-9\-._~]/;
/** `.` or `..`, with or without `;parameters` */
const DOT_SEGMENT = /^\.\.?(?:;.*)?$/;

function decodeLenient(segment: string): string {
  return segment.replace(/%([0-9A-Fa-f]{2})/g, (escape: string, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(c) ? c : escape;
  });
}

/**
 * The canonical reading of a request target's path (the query is kept as is), `url` itself when no reading can
 * change it, or null when dot segments climb above the root or an encoded separator borders a dot segment.
 */
export function canonicalTarget(url: string): string | null {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (!MAY_CHANGE.test(path)) return url;
  const segs = decodeLenient(path).replace(/\\/g, '/').split('/');
  for (const s of segs) if (/%(?:2f|5c)/i.test(s) && s.split(/%(?:2f|5c)/i).some((part) => DOT_SEGMENT.test(part))) return null;
  // `;parameters` dropped from every segment, then the dot segments resolved as the proxy resolves them
  const canonical = resolveDots(
    segs
      .map((s) => {
        const semi = s.indexOf(';');
        return semi === -1 ? s : s.slice(0, semi);
      })
      .join('/'),
    false,
  );
  if (canonical === null) return null;
  return q === -1 ? canonical : canonical + url.slice(q);
}
