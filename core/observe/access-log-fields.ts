/**
 * The access log's vocabulary (core/observe/access-log.ts computes each field): shared with the config schema and
 * validator, which must not load the writer.
 */
export const ACCESS_LOG_FIELDS = [
  'time',
  'time_local',
  'client',
  'peer',
  'method',
  'url',
  'path',
  'request',
  'route',
  'upstream',
  'status',
  'code',
  'bytesIn',
  'bytesOut',
  'ms',
  'upstreamConnectMs',
  'upstreamFirstByteMs',
  'upstreamMs',
  'requestId',
  'userAgent',
  'referer',
  'tls',
  'protocol',
] as const;

export type AccessLogField = (typeof ACCESS_LOG_FIELDS)[number];

/** Left out of the JSON format unless `fields` names them: they repeat what other fields say, in another form. */
const NOT_BY_DEFAULT: readonly AccessLogField[] = ['time_local', 'path', 'request', 'referer'];

/** The JSON format's fields unless `fields` says otherwise. */
export const DEFAULT_ACCESS_LOG_FIELDS: AccessLogField[] = ACCESS_LOG_FIELDS.filter((f) => !NOT_BY_DEFAULT.includes(f));

/** The `combined` preset: nginx's (and Apache's) combined log format. */
export const COMBINED_TEMPLATE = '$client - - [$time_local] "$request" $status $bytesOut "$referer" "$userAgent"';

/** `$name` or `${name}` in a template. */
export const TEMPLATE_VARIABLE = /\$(?:\{([A-Za-z_]+)\}|([A-Za-z_]+))/g;

const KNOWN = new Set<string>(ACCESS_LOG_FIELDS);

/** The variables a template names, split into known fields and unknown names. */
export function templateFields(template: string): { known: string[]; unknown: string[] } {
  const known: string[] = [];
  const unknown: string[] = [];
  for (const m of template.matchAll(TEMPLATE_VARIABLE)) {
    const name = m[1] ?? m[2]!;
    (KNOWN.has(name) ? known : unknown).push(name);
  }
  return { known, unknown };
}
