import { createHash, type Hash } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';

/** What one side of a compared exchange answered: the fields the comparison looks at. */
export interface AnswerSide {
  status: number;
  /** the compareHeaders present on the answer (absent ones are left out) */
  headers: Record<string, string>;
  /** sha256 of the body, hex */
  bodySha256: string;
  /** request sent → response headers */
  ms: number;
}

/** A mirrored answer that differs from the primary's, as GET /mirror/differences shows it: nothing secret in it. */
export interface DifferencePair {
  at: string;
  method: string;
  /** the request path; query values redacted */
  path: string;
  fields: string[];
  primary: AnswerSide;
  /** null when the mirror gave no answer: `error` says why */
  mirror: AnswerSide | null;
  error: string | null;
}

type DifferenceField = 'status' | 'headers' | 'body' | 'error';

/** Header names whose values are credentials or session material: shown as `[redacted]` in kept pairs. */
const SECRET_HEADER = /(authori[sz]ation|cookie|token|secret|session|password|api[-_]?key|signature|credential)/i;

/**
 * mirror.compare for one route and worker: agreements and differences counted by field, and the first
 * `keep` differing pairs kept (redacted) for GET /mirror/differences.
 */
export class MirrorComparison {
  agree = 0;
  differ = 0;
  /** comparisons not made: the primary failed, or its body was not read to the end */
  skipped = 0;
  readonly fields: Record<DifferenceField, number> = { status: 0, headers: 0, body: 0, error: 0 };
  primaryMsTotal = 0;
  mirrorMsTotal = 0;
  readonly differences: DifferencePair[] = [];

  constructor(private readonly keep: number) {}

  /** Both answers of a compared request are in (mirror null: it gave none, `error` says why). */
  add(method: string, url: string, primary: AnswerSide, mirror: AnswerSide | null, error: string | null): void {
    const fields: DifferenceField[] = [];
    if (mirror === null) fields.push('error');
    else {
      this.primaryMsTotal += primary.ms;
      this.mirrorMsTotal += mirror.ms;
      if (mirror.status !== primary.status) fields.push('status');
      if (!sameHeaders(primary.headers, mirror.headers)) fields.push('headers');
      if (mirror.bodySha256 !== primary.bodySha256) fields.push('body');
    }
    if (fields.length === 0) {
      this.agree++;
      return;
    }
    this.differ++;
    for (const f of fields) this.fields[f]++;
    if (this.differences.length < this.keep) {
      this.differences.push({
        at: new Date().toISOString(),
        method,
        path: redactQuery(url),
        fields,
        primary: redactSide(primary),
        mirror: mirror === null ? null : redactSide(mirror),
        error,
      });
    }
  }

  stats(): Record<string, unknown> {
    // latency is compared only where the mirror answered
    const n = this.agree + this.differ - this.fields.error;
    return {
      agree: this.agree,
      differ: this.differ,
      skipped: this.skipped,
      fields: { ...this.fields },
      primaryMsAvg: n === 0 ? null : this.primaryMsTotal / n,
      mirrorMsAvg: n === 0 ? null : this.mirrorMsTotal / n,
      differences: this.differences,
    };
  }
}

/** Passes the primary's body through unchanged, hashing it; reports the digest once the body has ended. */
export class DigestTap extends Transform {
  private readonly hash: Hash = createHash('sha256');
  constructor(private readonly done: (digest: string) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.done(this.hash.digest('hex'));
    callback();
  }
}

export function sha256(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

export function namedHeaders(headers: OutgoingHttpHeaders, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const v = headers[name.toLowerCase()];
    if (v !== undefined) out[name.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  return out;
}

function sameHeaders(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}

function redactSide(side: AnswerSide): AnswerSide {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(side.headers)) headers[k] = SECRET_HEADER.test(k) ? '[redacted]' : v;
  return { ...side, headers };
}

/** `/a?token=x&b=2` → `/a?token=[redacted]&b=[redacted]`: query values are where URLs carry secrets. */
export function redactQuery(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((p) => {
      const eq = p.indexOf('=');
      return eq === -1 ? p : `${p.slice(0, eq)}=[redacted]`;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}
