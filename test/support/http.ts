import { request as httpRequest, Agent, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

export interface SimpleResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

export interface RequestOptions {
  method?: string;
  /** the request target as sent, not normalised by URL (e.g. `/a/../b`, `/%E0%A4%A`); replaces the url's path */
  path?: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
  /** a shared keep-alive agent by default; `false` for a fresh connection */
  agent?: Agent | false;
  timeoutMs?: number;
}

/** The suite's one HTTP/1.1 request helper: a real socket, the body read whole (tests use small bodies here). */
export function request(url: string, options: RequestOptions = {}): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const opts = {
      method: options.method ?? 'GET',
      headers: options.headers,
      agent: options.agent ?? agent,
      ...(options.path === undefined ? {} : { path: options.path }),
    };
    const req = httpRequest(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    // A client without a deadline can wait forever on a connection its server lost (e.g. a killed worker).
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error('client timeout')));
    req.end(options.body);
  });
}

/** Sends `total` requests over `concurrency` keep-alive loops; returns status counts and transport errors. */
export async function load(
  url: string,
  total: number,
  concurrency: number,
  pathFor: (i: number) => string = () => '',
): Promise<{ statuses: Map<number, number>; errors: string[] }> {
  const statuses = new Map<number, number>();
  const errors: string[] = [];
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      try {
        const r = await request(url + pathFor(i), { timeoutMs: 3000 });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { statuses, errors };
}
