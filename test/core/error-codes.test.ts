import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE } from '../../core/base/errors.js';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { request } from '../support/http.js';
import { eventually } from '../support/wait.js';

describe('docs/errors.md', () => {
  const rows = new Map<string, number>();
  for (const m of readFileSync('docs/errors.md', 'utf8').matchAll(/^\| `(GW_ERR_[A-Z_]+)` \| (\d{3}) \|/gm)) rows.set(m[1]!, Number(m[2]));

  it('lists every code of the catalogue with its status, and no other', () => {
    const catalogue = new Map(Object.entries(ERROR_CATALOGUE).map(([code, e]) => [code, e.status as number]));
    expect(Object.fromEntries(rows)).toEqual(Object.fromEntries(catalogue));
  });
});

interface Line {
  msg: string;
  url?: string;
  status?: number;
  code?: string;
}

/** A port nothing listens on: bound once to get a free one, then closed. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('a failure names its code in the access log and /stats', () => {
  const lines: Line[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as Line);
        done();
      },
    }),
  );
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway(
      {
        logging: { level: 'info', accessLog: true },
        upstreams: { gone: { targets: [{ url: `http://127.0.0.1:${await closedPort()}` }], retries: { count: 0 } } },
        routes: [
          { path: '/ok', methods: ['GET'], response: { body: 'ok' } },
          { path: '/down', methods: ['GET'], upstream: 'gone' },
        ],
      },
      { logger },
    );
  });
  afterAll(() => gw?.close());

  const accessLine = (url: string, status: number): Promise<Line> =>
    eventually(() => lines.find((l) => l.msg === 'access' && l.url === url && l.status === status), {
      timeoutMs: 5000,
      message: `no access-log line for ${status} ${url}`,
    });

  it('404, 405 and an unreachable upstream carry their codes; a success carries none', async () => {
    expect((await request(`${gw.url}/nowhere`)).status).toBe(404);
    expect((await request(`${gw.url}/ok`, { method: 'POST' })).status).toBe(405);
    expect((await request(`${gw.url}/down`)).status).toBe(502);
    expect((await request(`${gw.url}/ok`)).status).toBe(200);

    expect(await accessLine('/nowhere', 404)).toMatchObject({ code: 'GW_ERR_NO_ROUTE' });
    expect(await accessLine('/ok', 405)).toMatchObject({ code: 'GW_ERR_METHOD_NOT_ALLOWED' });
    expect(await accessLine('/down', 502)).toMatchObject({ code: 'GW_ERR_UPSTREAM_CONNECT' });
    expect((await accessLine('/ok', 200)).code).toBeUndefined();

    const stats = JSON.parse((await request(`${gw.adminUrl}/stats`)).body) as { metrics: { errorCodes: Record<string, number> } };
    expect(stats.metrics.errorCodes).toEqual({ GW_ERR_NO_ROUTE: 1, GW_ERR_METHOD_NOT_ALLOWED: 1, GW_ERR_UPSTREAM_CONNECT: 1 });
  });
});
