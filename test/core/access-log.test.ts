import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/gateway.js';
import { request } from '../support/http.js';
import { eventually } from '../support/wait.js';

/** The access log is the operator's record of every answer; with request-id on it carries the id to join on. */
interface Line {
  msg: string;
  url?: string;
  status?: number;
  requestId?: string;
}
const lines: Line[] = [];
/** the lines as written: JSON.parse keeps the last of two equal keys, the text shows both */
const raw: string[] = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(chunk.toString());
      lines.push(JSON.parse(chunk.toString()) as Line);
      done();
    },
  }),
);

// An upstream whose only target refuses connections: its active check logs "target unhealthy" at once.
const closed = http.createServer();

let gw: RunningGateway;
beforeAll(async () => {
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  gw = await startGateway(
    {
      logging: { level: 'info', accessLog: true },
      upstreams: {
        gone: { targets: [`http://127.0.0.1:${deadPort}`], healthCheck: { active: { intervalMs: 50, timeoutMs: 500, unhealthyThreshold: 1 } } },
      },
      routes: [
        { path: '/gone', methods: ['GET'], upstream: 'gone' },
        { path: '/with-id', methods: ['GET'], response: { body: 'a' }, plugins: [{ name: 'request-id' }] },
        { path: '/without-id', methods: ['GET'], response: { body: 'b' } },
      ],
    },
    { logger },
  );
});
afterAll(() => gw?.close());

const accessLine = (url: string): Promise<Line> =>
  eventually(() => lines.find((l) => l.msg === 'access' && l.url === url), { timeoutMs: 5000, message: `no access-log line for ${url}` });

describe('access log', () => {
  it('carries the request id the client was given', async () => {
    const r = await request(`${gw.url}/with-id`);
    const id = r.headers['x-request-id'];
    expect(typeof id).toBe('string');
    const line = await accessLine('/with-id');
    expect(line.status).toBe(200);
    expect(line.requestId).toBe(id);
  });

  it('keeps a client-supplied id', async () => {
    await request(`${gw.url}/with-id?x=1`, { headers: { 'x-request-id': 'abc-123' } });
    expect((await accessLine('/with-id?x=1')).requestId).toBe('abc-123');
  });

  it('is the one line a request logs, with request-id on', async () => {
    await request(`${gw.url}/with-id?one=1`, { headers: { 'x-request-id': 'one-line-id' } });
    await accessLine('/with-id?one=1');
    // a later request's line: whatever the first one logs on its response's close has been written by then
    await request(`${gw.url}/without-id?after=1`);
    await accessLine('/without-id?after=1');
    expect(raw.filter((l) => l.includes('one-line-id'))).toHaveLength(1);
  });

  it('names the upstream once in an upstream line', async () => {
    const line = await eventually(() => raw.find((l) => l.includes('"target unhealthy"')), { timeoutMs: 10_000, message: 'no "target unhealthy" line' });
    expect(line.match(/"upstream":/g)).toHaveLength(1);
    expect(JSON.parse(line)).toMatchObject({ upstream: 'gone', level: 40 });
  });

  it('has no requestId field on a route without the plugin', async () => {
    await request(`${gw.url}/without-id`);
    expect((await accessLine('/without-id')).requestId).toBeUndefined();
  });
});
