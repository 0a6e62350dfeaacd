import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { validateConfig } from '../../core/config/validator.js';
import { configWarnings } from '../../core/config/warnings.js';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { cookieValue } from '../../core/proxy/backends.js';
import { request } from '../support/http.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';

let stable: RecordingUpstream;
let canary: RecordingUpstream;
let gw: RunningGateway | null = null;

beforeAll(async () => {
  stable = await startUpstream('stable');
  canary = await startUpstream('canary');
});
afterAll(async () => {
  await stable.close();
  await canary.close();
});
afterEach(async () => {
  await gw?.close();
  gw = null;
  stable.reset();
  canary.reset();
});

function config(route: Record<string, unknown>): Record<string, unknown> {
  return {
    server: { host: '127.0.0.1' },
    admin: { enabled: true, host: '127.0.0.1', port: 0 },
    logging: { level: 'silent', accessLog: false },
    upstreams: { stable: { targets: [stable.url] }, canary: { targets: [canary.url] } },
    routes: [{ name: 'api', path: '/api/*', ...route }],
  };
}

/** `n` requests, `concurrency` at a time; returns the bodies (each upstream answers with its name) in order sent. */
async function send(n: number, headersFor: (i: number) => Record<string, string> = () => ({}), concurrency = 8): Promise<string[]> {
  const out = new Array<string>(n);
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      const r = await request(`${gw!.url}/api/x`, { headers: headersFor(i) });
      expect(r.status).toBe(200);
      out[i] = r.body;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return out;
}

const tally = (bodies: string[]): Record<string, number> => bodies.reduce<Record<string, number>>((t, b) => ((t[b] = (t[b] ?? 0) + 1), t), {});

describe('backends: weighted split', () => {
  it('a 90/10 split is exactly 900/100 over 1,000 requests, interleaved, and counted per backend on /metrics and /stats', async () => {
    gw = await startGateway(
      config({
        backends: [
          { upstream: 'stable', weight: 9 },
          { upstream: 'canary', weight: 1 },
        ],
      }),
    );
    const first = await send(10, () => ({}), 1);
    // smooth: one canary request in every ten consecutive ones, not ten in a row
    expect(tally(first)).toEqual({ stable: 9, canary: 1 });
    const rest = await send(990);
    expect(tally([...first, ...rest])).toEqual({ stable: 900, canary: 100 });
    expect(stable.requests.length).toBe(900);
    expect(canary.requests.length).toBe(100);

    const metrics = (await request(`${gw.adminUrl}/metrics`)).body;
    expect(metrics).toContain('gateway_route_backend_requests_total{route="api",upstream="stable",selected_by="weight"} 900');
    expect(metrics).toContain('gateway_route_backend_requests_total{route="api",upstream="canary",selected_by="weight"} 100');
    expect(metrics).toContain('gateway_route_backend_weight{route="api",upstream="canary"} 1');
    const stats = JSON.parse((await request(`${gw.adminUrl}/stats`)).body) as { workers: Array<{ traffic: Record<string, { backends: unknown[] }> }> };
    expect(stats.workers[0]!.traffic.api!.backends).toEqual([
      { upstream: 'stable', weight: 9, requests: 900, canaryRequests: 0, errors: 0 },
      { upstream: 'canary', weight: 1, requests: 100, canaryRequests: 0, errors: 0 },
    ]);
  });

  it('weight 0 drains a backend; a hot reload moves the split; all weights 0 answers 503', async () => {
    gw = await startGateway(
      config({
        backends: [
          { upstream: 'stable', weight: 1 },
          { upstream: 'canary', weight: 0 },
        ],
      }),
    );
    expect(tally(await send(50))).toEqual({ stable: 50 });
    expect(canary.requests.length).toBe(0);

    const r = await gw.reload(
      config({
        backends: [
          { upstream: 'stable', weight: 1 },
          { upstream: 'canary', weight: 1 },
        ],
      }),
    );
    expect(r.ok).toBe(true);
    expect(tally(await send(50))).toEqual({ stable: 25, canary: 25 });

    const drained = config({
      backends: [
        { upstream: 'stable', weight: 0 },
        { upstream: 'canary', weight: 0 },
      ],
    });
    expect((await gw.reload(drained)).ok).toBe(true);
    const res = await request(`${gw.url}/api/x`);
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
  });

  it('a backend sends its own requestHeaders over the route’s', async () => {
    gw = await startGateway(
      config({
        requestHeaders: { add: { 'x-route': 'api', 'x-version': 'route' } },
        backends: [
          { upstream: 'stable', weight: 1 },
          { upstream: 'canary', weight: 1, requestHeaders: { add: { 'x-version': 'v2' }, remove: ['x-drop'] } },
        ],
      }),
    );
    await send(2, () => ({ 'x-drop': 'me' }), 1);
    expect(stable.requests[0]!.headers).toMatchObject({ 'x-route': 'api', 'x-version': 'route', 'x-drop': 'me' });
    expect(canary.requests[0]!.headers).toMatchObject({ 'x-route': 'api', 'x-version': 'v2' });
    expect(canary.requests[0]!.headers['x-drop']).toBeUndefined();
  });
});

describe('backends: canary', () => {
  const backends = [
    { upstream: 'stable', weight: 1 },
    { upstream: 'canary', weight: 0 },
  ];

  it('by header value: only requests carrying the value reach the canary', async () => {
    gw = await startGateway(config({ backends, canary: { backend: 'canary', header: 'X-Canary', value: 'always' } }));
    const bodies = await send(40, (i): Record<string, string> => (i % 4 === 0 ? { 'x-canary': 'always' } : i % 4 === 1 ? { 'x-canary': 'never' } : {}));
    bodies.forEach((b, i) => expect(b).toBe(i % 4 === 0 ? 'canary' : 'stable'));
    const metrics = (await request(`${gw.adminUrl}/metrics`)).body;
    expect(metrics).toContain('gateway_route_backend_requests_total{route="api",upstream="canary",selected_by="canary"} 10');
    expect(metrics).toContain('gateway_route_backend_requests_total{route="api",upstream="stable",selected_by="weight"} 30');
  });

  it('by cookie value, among other cookies', async () => {
    gw = await startGateway(config({ backends, canary: { backend: 'canary', cookie: 'beta', value: 'yes' } }));
    const bodies = await send(3, (i) => ({ cookie: ['theme=dark; beta=yes; lang=en', 'beta=no', 'notbeta=yes'][i]! }), 1);
    expect(bodies).toEqual(['canary', 'stable', 'stable']);
  });

  it('by percentage: sticky per client through a hash of the header, near the share asked, the rest by weight', async () => {
    gw = await startGateway(config({ backends, canary: { backend: 'canary', header: 'x-user', percent: 20 } }));
    const users = Array.from({ length: 300 }, (_, i) => `user-${i}`);
    const first = await send(users.length, (i) => ({ 'x-user': users[i]! }));
    const again = await send(users.length, (i) => ({ 'x-user': users[i]! }));
    // every client stays on its side
    expect(again).toEqual(first);
    const share = first.filter((b) => b === 'canary').length / users.length;
    expect(share).toBeGreaterThan(0.12);
    expect(share).toBeLessThan(0.28);
    // no header to hash: the weights decide (the canary has weight 0)
    expect(tally(await send(20))).toEqual({ stable: 20 });
  });

  it('by percentage of a cookie: raising the share only moves clients to the canary', async () => {
    gw = await startGateway(config({ backends, canary: { backend: 'canary', cookie: 'sid', percent: 10 } }));
    const sids = Array.from({ length: 200 }, (_, i) => `s${i * 7919}`);
    const at10 = await send(sids.length, (i) => ({ cookie: `sid=${sids[i]!}` }));
    expect((await gw.reload(config({ backends, canary: { backend: 'canary', cookie: 'sid', percent: 50 } }))).ok).toBe(true);
    const at50 = await send(sids.length, (i) => ({ cookie: `sid=${sids[i]!}` }));
    at10.forEach((b, i) => {
      if (b === 'canary') expect(at50[i]).toBe('canary');
    });
    expect(at50.filter((b) => b === 'canary').length).toBeGreaterThan(at10.filter((b) => b === 'canary').length);
  });
});

describe('backends: WebSocket', () => {
  it('an upgrade goes to the backend the canary rule or the weights choose, with its headers', async () => {
    const names: string[] = [];
    const servers = [stable, canary].map((u) => {
      const wss = new WebSocketServer({ server: u.server });
      wss.on('connection', (sock, req) => {
        names.push(`${u.name} ${String(req.headers['x-version'])}`);
        sock.send(u.name);
      });
      return wss;
    });
    try {
      gw = await startGateway(
        config({
          backends: [
            { upstream: 'stable', weight: 1 },
            { upstream: 'canary', weight: 0, requestHeaders: { add: { 'x-version': 'v2' } } },
          ],
          canary: { backend: 'canary', header: 'x-canary', value: '1' },
        }),
      );
      const greet = (headers: Record<string, string>): Promise<string> =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(`${gw!.url.replace('http', 'ws')}/api/ws`, { headers });
          ws.once('message', (d) => {
            resolve(d.toString());
            ws.close();
          });
          ws.once('error', reject);
        });
      expect(await greet({ 'x-canary': '1' })).toBe('canary');
      expect(await greet({})).toBe('stable');
      expect(names).toEqual(['canary v2', 'stable undefined']);
    } finally {
      for (const wss of servers) wss.close();
    }
  });
});

describe('backends: config', () => {
  const base = { upstreams: { a: { targets: ['http://127.0.0.1:1'] }, b: { targets: ['http://127.0.0.1:2'] } } };
  const errorsOf = (route: Record<string, unknown>): string[] => {
    const v = validateConfig({ ...base, routes: [{ path: '/x', ...route }] });
    return v.ok ? [] : v.errors;
  };

  it('refuses what cannot work, naming the JSON path and the rule', () => {
    expect(errorsOf({ upstream: 'a', backends: [{ upstream: 'b' }] })).toContain(
      '/routes/0: must have exactly one of "response", "upstream", "backends", "handler" (found upstream, backends)',
    );
    expect(errorsOf({ backends: [{ upstream: 'nope' }] })).toContain('/routes/0/backends/0/upstream: unknown upstream "nope"');
    expect(errorsOf({ backends: [{ upstream: 'a' }, { upstream: 'a' }] })).toContain(
      '/routes/0/backends/1/upstream: upstream "a" is listed twice (one entry per backend)',
    );
    expect(errorsOf({ backends: [{ upstream: 'a' }], canary: { backend: 'b', header: 'x', value: '1' } })).toContain(
      '/routes/0/canary/backend: "b" is not the upstream of one of the route\'s backends (a)',
    );
    expect(errorsOf({ backends: [{ upstream: 'a' }], canary: { backend: 'a', header: 'x', cookie: 'y', value: '1' } })).toContain(
      '/routes/0/canary: must have exactly one of "header", "cookie"',
    );
    expect(errorsOf({ backends: [{ upstream: 'a' }], canary: { backend: 'a', header: 'x' } })).toContain(
      '/routes/0/canary: must have exactly one of "value", "percent"',
    );
    expect(errorsOf({ upstream: 'a', canary: { backend: 'a', header: 'x', value: '1' } })).toContain(
      '/routes/0/canary: needs "backends" on the route (the canary is one of them)',
    );
    expect(errorsOf({ backends: [{ upstream: 'a', weight: -1 }] }).join('\n')).toContain('/routes/0/backends/0/weight');
    expect(errorsOf({ backends: [{ upstream: 'a', requestHeaders: { add: { 'bad name': 'x' } } }] })).toContain(
      '/routes/0/backends/0/requestHeaders/add: header name "bad name" is not an HTTP token',
    );
  });

  it('--check warns about weights adding up to 0 and about a mirror to the route’s own upstream', () => {
    const v = validateConfig({
      ...base,
      routes: [
        { path: '/x', backends: [{ upstream: 'a', weight: 0 }], mirror: { upstream: 'a' } },
        { path: '/y', upstream: 'b', mirror: { upstream: 'b' } },
      ],
    });
    if (!v.ok) throw new Error(v.errors.join('\n'));
    const w = configWarnings(v.value);
    expect(w).toContain('/routes/0/backends: the weights add up to 0: every request is answered 503 (drained)');
    expect(w).toContain('/routes/0/mirror/upstream: "a" is also where the route sends its requests: each mirrored request reaches it twice');
    expect(w).toContain('/routes/1/mirror/upstream: "b" is also where the route sends its requests: each mirrored request reaches it twice');
    // upstreams only a backend or a mirror uses are used
    expect(w.filter((x) => x.includes('no route uses this upstream'))).toEqual([]);
  });

  it('reads a cookie among others, quoted or not, and not by a prefix of its name', () => {
    expect(cookieValue('a=1; b=2', 'b')).toBe('2');
    expect(cookieValue('a=1;b="two"', 'b')).toBe('two');
    expect(cookieValue('ab=1', 'b')).toBeNull();
    expect(cookieValue(undefined, 'b')).toBeNull();
  });
});
