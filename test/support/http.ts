import { request as httpRequest, Agent, type IncomingHttpHeaders } from 'node:http';

export interface SimpleResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** One HTTP/1.1 request over a real socket; the body is read whole (tests use small bodies here). */
export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; agent?: Agent | false; timeoutMs?: number } = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? agent }, (res) => {
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

/** A raw request target (bypasses URL normalisation, e.g. `/a/../b` or malformed percent-encoding). */
export function rawPath(base: string, path: string, method = 'GET'): Promise<SimpleResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sends `total` requests over `concurrency` keep-alive loops; returns status counts and transport errors. */
export async function load(url: string, total: number, concurrency: number, pathFor: (i: number) => string = () => ''): Promise<{ statuses: Map<number, number>; errors: string[] }> {
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
