/**
 * Before a proxy-mode variant is measured, a handful of the cycle's requests (one per distinct method and route
 * shape) go through it and must come back 200 with the upstream stub's exact body: a peer or gateway that
 * answers fast but wrong (404 from a misrouted prefix, a 502) would otherwise win the comparison.
 */
import { request } from 'node:http';
import type { Answer, LoadRequest } from './traffic.js';

export interface AnswerCheck {
  variant: string;
  /** requests checked */
  requests: number;
  /** every one answered 200 with the stub's body */
  identical: boolean;
  /** the first mismatch, when not identical */
  mismatch?: string;
}

function send(port: number, r: LoadRequest, timeoutMs: number): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: r.method, path: r.path, headers: { ...(r.headers ?? {}) }, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(r.body);
  });
}

/** One request per distinct (method, first path segment): enough to hit every route of a small proxy scenario. */
export function sampleRequests(requests: LoadRequest[], answers: Record<string, Answer>, max = 8): LoadRequest[] {
  const seen = new Map<string, LoadRequest>();
  for (const r of requests) {
    if (answers[`${r.method} ${r.path}`]?.kind !== 'proxy') continue;
    const key = `${r.method} ${r.path.split('/')[1] ?? ''}`;
    if (!seen.has(key)) seen.set(key, r);
    if (seen.size >= max) break;
  }
  return [...seen.values()];
}

export async function checkProxyAnswers(variant: string, port: number, sample: LoadRequest[], expected: Buffer, timeoutMs = 5000): Promise<AnswerCheck> {
  for (const r of sample) {
    let got: { status: number; body: Buffer };
    try {
      got = await send(port, r, timeoutMs);
    } catch (err) {
      return { variant, requests: sample.length, identical: false, mismatch: `${r.method} ${r.path}: ${(err as Error).message}` };
    }
    if (got.status !== 200 || !got.body.equals(expected)) {
      const body = got.body.toString('utf8', 0, Math.min(got.body.length, 120));
      return { variant, requests: sample.length, identical: false, mismatch: `${r.method} ${r.path}: ${got.status} ${JSON.stringify(body)}` };
    }
  }
  return { variant, requests: sample.length, identical: true };
}
