import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
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
      routes: [
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

  it('has no requestId field on a route without the plugin', async () => {
    await request(`${gw.url}/without-id`);
    expect((await accessLine('/without-id')).requestId).toBeUndefined();
  });
});
