/**
 * Verify before timing (as TechEmpower does): before a contestant is measured, a fixed set of the cycle's requests
 * (one per distinct method, route shape and kind of answer) goes through it, and each answer must match: the
 * status and the body bytes the scenario defines (a static route's answer, the gateway's 404 for a miss, the
 * upstream stub's body for a proxied route), and the headers the scenario names (`verify.headers`) equal to the
 * value the first contestant that answered correctly sent. A contestant that answers fast but wrong (a 404 from a
 * misrouted prefix, a 500, a truncated body, a missing content-type) would otherwise win the comparison; the
 * runner reports it and does not time it.
 */
import { request } from 'node:http';
import type { Answer, LoadRequest } from './traffic.js';

export interface AnswerCheck {
  variant: string;
  /** requests checked */
  requests: number;
  /** every one answered with the expected status, body bytes and named headers */
  identical: boolean;
  /** the first mismatch, when not identical */
  mismatch?: string;
  /** the headers compared (absent: status and body only) */
  headers?: string[];
}

/** One request of the fixed set and what it must be answered with. */
export interface ExpectedAnswer {
  request: LoadRequest;
  status: number;
  body: Buffer;
}

/** What the check sends and compares; `seenHeaders` fills in with the first correct contestant's header values. */
export interface AnswerSpec {
  sample: ExpectedAnswer[];
  /** lower-case header names whose values must agree between contestants */
  headers: string[];
  /** per sample index: header name → value (undefined = absent) of the first contestant that answered correctly */
  seenHeaders: Map<number, Record<string, string | undefined>>;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function send(port: number, r: LoadRequest, timeoutMs: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: r.method, path: r.path, headers: { ...(r.headers ?? {}) }, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(r.body);
  });
}

/**
 * The fixed set: the first request of the (seeded, so fixed) cycle for each distinct method, first path segment
 * and kind of answer, up to `max`; a miss (404) is one of them when the mix has misses.
 */
export function sampleAnswers(requests: LoadRequest[], answers: Record<string, Answer>, stubBody: Buffer, max = 8): ExpectedAnswer[] {
  const seen = new Map<string, ExpectedAnswer>();
  for (const r of requests) {
    const a = answers[`${r.method} ${r.path}`];
    if (a === undefined) continue;
    const key = `${r.method} ${r.path.split('/')[1] ?? ''} ${a.kind === 'proxy' ? 'proxy' : a.status}`;
    if (seen.has(key)) continue;
    seen.set(key, a.kind === 'proxy' ? { request: r, status: 200, body: stubBody } : { request: r, status: a.status, body: Buffer.from(a.body) });
    if (seen.size >= max) break;
  }
  return [...seen.values()];
}

export function answerSpec(sample: ExpectedAnswer[], headers: string[] = []): AnswerSpec {
  return { sample, headers: headers.map((h) => h.toLowerCase()), seenHeaders: new Map() };
}

function headerValue(h: Reply['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function show(body: Buffer): string {
  return JSON.stringify(body.toString('utf8', 0, Math.min(body.length, 120)));
}

/** Sends the fixed set to `port` and compares every answer; the first difference is the check's `mismatch`. */
export async function checkAnswers(variant: string, port: number, spec: AnswerSpec, timeoutMs = 5000): Promise<AnswerCheck> {
  const base = { variant, requests: spec.sample.length, ...(spec.headers.length > 0 ? { headers: spec.headers } : {}) };
  const fail = (e: ExpectedAnswer, what: string): AnswerCheck => ({ ...base, identical: false, mismatch: `${e.request.method} ${e.request.path}: ${what}` });
  const agreed: Array<[number, Record<string, string | undefined>]> = [];
  for (const [i, e] of spec.sample.entries()) {
    let got: Reply;
    try {
      got = await send(port, e.request, timeoutMs);
    } catch (err) {
      return fail(e, (err as Error).message);
    }
    if (got.status !== e.status) return fail(e, `status ${got.status}, expected ${e.status} (body ${show(got.body)})`);
    if (!got.body.equals(e.body)) return fail(e, `body of ${got.body.length} bytes ${show(got.body)}, expected ${e.body.length} bytes ${show(e.body)}`);
    const values = Object.fromEntries(spec.headers.map((h) => [h, headerValue(got.headers, h)]));
    const before = spec.seenHeaders.get(i);
    if (before !== undefined) {
      for (const h of spec.headers) {
        if (values[h] !== before[h]) return fail(e, `header ${h}: ${JSON.stringify(values[h] ?? null)}, the others sent ${JSON.stringify(before[h] ?? null)}`);
      }
    } else agreed.push([i, values]);
  }
  // only a contestant that answered everything correctly sets the header values the others must match
  for (const [i, values] of agreed) spec.seenHeaders.set(i, values);
  return { ...base, identical: true };
}
