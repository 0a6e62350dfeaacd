/**
 * Issue 16, admin.auth: bearer and basic credentials on every admin route but the probes, 401 with a
 * WWW-Authenticate challenge, secrets redacted in GET /config, JSON-path errors for a bad auth block, and the
 * warning for an admin listener open beyond loopback.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminAuth, UNAUTHENTICATED_PATHS } from '../../core/admin/auth.js';
import { validateConfig } from '../../core/config/validator.js';
import { adminExposedWithoutAuth, configWarnings } from '../../core/config/warnings.js';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { startCli } from '../support/cli.js';
import { request } from '../support/http.js';

const TOKEN = 'a-token-of-sufficient-length-0123456789';
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const routes = [{ path: '/hello', methods: ['GET'], response: { body: 'hi' } }];

/** The status and content type of GET /dashboard/events (the stream is abandoned once its head arrived). */
function streamHead(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers, agent: false }, (res) => {
      resolve({ status: res.statusCode!, type: res.headers['content-type'] });
      req.destroy();
    });
    req.on('error', reject);
    req.end();
  });
}

describe('admin.auth in the config', () => {
  const errors = (auth: unknown): string[] => {
    const v = validateConfig({ admin: { auth } });
    return v.ok ? [] : v.errors;
  };

  it('accepts a bearer token and basic users', () => {
    expect(errors({ type: 'bearer', token: TOKEN })).toEqual([]);
    expect(errors({ type: 'basic', users: [{ username: 'ops', password: 'pw' }] })).toEqual([]);
  });

  it('names the JSON path and the rule for every mistake', () => {
    expect(errors({ type: 'bearer' })).toEqual(['/admin/auth: must have required property "token" (type "bearer")']);
    expect(errors({ type: 'bearer', token: 'short' })).toEqual(['/admin/auth/token: must NOT have fewer than 16 characters']);
    expect(errors({ type: 'basic' })).toEqual(['/admin/auth: must have required property "users" (type "basic")']);
    expect(errors({ type: 'basic', users: [{ username: 'a:b', password: 'x' }] })).toEqual(['/admin/auth/users/0/username: must match pattern "^[^:]*$"']);
    expect(errors({ type: 'basic', users: [{ username: 'ops' }] })).toEqual(['/admin/auth/users/0: must have required property "password"']);
    expect(
      errors({
        type: 'basic',
        users: [
          { username: 'ops', password: 'x' },
          { username: 'ops', password: 'y' },
        ],
      }),
    ).toEqual(['/admin/auth/users/1/username: "ops" is listed twice']);
    expect(errors({ type: 'basic', token: TOKEN, users: [{ username: 'ops', password: 'x' }] })).toEqual([
      '/admin/auth/token: only for type "bearer" (type is "basic")',
    ]);
    expect(errors({ type: 'digest' })).toEqual(['/admin/auth/type: must be one of "bearer", "basic"']);
    expect(errors({ type: 'bearer', token: TOKEN, extra: 1 })).toEqual(['/admin/auth: must NOT have additional property "extra"']);
  });

  it('warns about a non-loopback admin listener only when it has no auth', () => {
    const open = validateConfig({ admin: { host: '0.0.0.0' }, routes });
    const closed = validateConfig({ admin: { host: '0.0.0.0', auth: { type: 'bearer', token: TOKEN } }, routes });
    const local = validateConfig({ admin: { host: '127.0.0.1' }, routes });
    if (!open.ok || !closed.ok || !local.ok) throw new Error('valid configs expected');
    expect(adminExposedWithoutAuth(open.value)).toContain('/admin/host: 0.0.0.0 is not a loopback address');
    expect(configWarnings(open.value)).toContain(adminExposedWithoutAuth(open.value));
    expect(adminExposedWithoutAuth(closed.value)).toBeNull();
    expect(configWarnings(closed.value)).toEqual([]);
    expect(adminExposedWithoutAuth(local.value)).toBeNull();
  });
});

describe('AdminAuth.verify', () => {
  it('compares digests: a guess of any length is a plain no, never a length error', () => {
    const auth = new AdminAuth({ type: 'bearer', token: TOKEN });
    expect(auth.verify(`Bearer ${TOKEN}`)).toBe(true);
    expect(auth.verify(`bearer ${TOKEN}`)).toBe(true); // the scheme is case-insensitive
    // timingSafeEqual throws on buffers of different lengths: these only pass because digests are compared
    for (const guess of ['', 'a', TOKEN.slice(0, -1), `${TOKEN}x`, 'x'.repeat(10_000)]) expect(auth.verify(`Bearer ${guess}`)).toBe(false);
    expect(auth.verify(undefined)).toBe(false);
    expect(auth.verify(TOKEN)).toBe(false);
    expect(auth.verify(basic('x', TOKEN))).toBe(false);
  });

  it('basic: every user, the exact pair only', () => {
    const auth = new AdminAuth({
      type: 'basic',
      users: [
        { username: 'ops', password: 'first secret' },
        { username: 'viewer', password: 'pa:ss' },
      ],
    });
    expect(auth.verify(basic('ops', 'first secret'))).toBe(true);
    expect(auth.verify(basic('viewer', 'pa:ss'))).toBe(true); // a colon in the password is the password's
    expect(auth.verify(basic('ops', 'pa:ss'))).toBe(false);
    expect(auth.verify(basic('viewer', 'first secret'))).toBe(false);
    expect(auth.verify(basic('nobody', 'first secret'))).toBe(false);
    expect(auth.verify(`Basic ${Buffer.from('ops').toString('base64')}`)).toBe(false);
    expect(auth.verify('Basic !!!not-base64')).toBe(false);
    expect(auth.verify(`Bearer ${TOKEN}`)).toBe(false);
  });
});

describe('admin listener with a bearer token', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway({ admin: { auth: { type: 'bearer', token: TOKEN } }, routes });
  });
  afterAll(() => gw.close());

  it('answers 401 with a Bearer challenge without the right token, on every route but the probes', async () => {
    for (const path of ['/stats', '/metrics', '/config', '/dashboard', '/dashboard/chart.js', '/nowhere']) {
      for (const headers of [{}, { authorization: 'Bearer wrong-token-wrong-token' }, { authorization: basic('ops', TOKEN) }]) {
        const r = await request(`${gw.adminUrl}${path}`, { headers });
        expect(r.status, `${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(r.headers['www-authenticate']).toBe('Bearer realm="ts-gateway admin"');
      }
    }
    const reload = await request(`${gw.adminUrl}/config/reload`, { method: 'POST', body: '{}' });
    expect(reload.status).toBe(401);
  });

  it('serves every route with the right token', async () => {
    const headers = { authorization: `Bearer ${TOKEN}` };
    for (const path of ['/stats', '/metrics', '/config', '/dashboard', '/dashboard/chart.js']) {
      expect((await request(`${gw.adminUrl}${path}`, { headers })).status, path).toBe(200);
    }
  });

  it('leaves /health and /ready open (kubelet probes carry no credentials)', async () => {
    expect([...UNAUTHENTICATED_PATHS].sort()).toEqual(['/health', '/ready']);
    expect((await request(`${gw.adminUrl}/health`)).status).toBe(200);
    expect((await request(`${gw.adminUrl}/ready`)).status).toBe(200);
  });

  it('protects the event stream too', async () => {
    expect(await streamHead(`${gw.adminUrl}/dashboard/events`)).toEqual({ status: 401, type: 'application/json; charset=utf-8' });
    expect(await streamHead(`${gw.adminUrl}/dashboard/events`, { authorization: `Bearer ${TOKEN}` })).toEqual({
      status: 200,
      type: 'text/event-stream; charset=utf-8',
    });
  });

  it('redacts the token in GET /config', async () => {
    const r = await request(`${gw.adminUrl}/config`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.body).not.toContain(TOKEN);
    expect((JSON.parse(r.body) as { admin: unknown }).admin).toMatchObject({ auth: { type: 'bearer', token: '[redacted]' } });
  });
});

describe('admin listener with basic users', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway({
      admin: {
        auth: {
          type: 'basic',
          users: [
            { username: 'ops', password: 'ops-password' },
            { username: 'viewer', password: 'viewer-password' },
          ],
        },
      },
      routes,
    });
  });
  afterAll(() => gw.close());

  it('lets each user in with their own password only', async () => {
    const status = async (auth?: string): Promise<number> =>
      (await request(`${gw.adminUrl}/stats`, { headers: auth === undefined ? {} : { authorization: auth } })).status;
    expect(await status(basic('ops', 'ops-password'))).toBe(200);
    expect(await status(basic('viewer', 'viewer-password'))).toBe(200);
    expect(await status(basic('ops', 'viewer-password'))).toBe(401);
    expect(await status(basic('nobody', 'ops-password'))).toBe(401);
    expect(await status()).toBe(401);
    const r = await request(`${gw.adminUrl}/stats`);
    expect(r.headers['www-authenticate']).toBe('Basic realm="ts-gateway admin", charset="UTF-8"');
    expect(await streamHead(`${gw.adminUrl}/dashboard/events`)).toMatchObject({ status: 401 });
  });

  it('redacts the passwords in GET /config, keeping the user names', async () => {
    const r = await request(`${gw.adminUrl}/config`, { headers: { authorization: basic('ops', 'ops-password') } });
    expect(r.body).not.toContain('ops-password');
    expect(r.body).not.toContain('viewer-password');
    expect((JSON.parse(r.body) as { admin: unknown }).admin).toMatchObject({
      auth: {
        type: 'basic',
        users: [
          { username: 'ops', password: '[redacted]' },
          { username: 'viewer', password: '[redacted]' },
        ],
      },
    });
  });
});

describe('startup warning', () => {
  it('logs a warning of its own when the admin listener binds a non-loopback address without auth', async () => {
    // 0.0.0.0 only as a bind address; every request of the test still goes to 127.0.0.1.
    const gw = await startCli({ server: { workers: 0 }, admin: { host: '0.0.0.0' }, routes, logging: { level: 'info', accessLog: false } });
    try {
      const line = gw
        .output()
        .split('\n')
        .find((l) => l.includes('ADMIN API EXPOSED WITHOUT AUTHENTICATION'));
      expect(line, gw.output()).toBeDefined();
      expect(JSON.parse(line!)).toMatchObject({ level: 40, host: '0.0.0.0' });
    } finally {
      await gw.stop();
    }
    const safe = await startCli({
      server: { workers: 0 },
      admin: { host: '0.0.0.0', auth: { type: 'bearer', token: TOKEN } },
      routes,
      logging: { level: 'info', accessLog: false },
    });
    try {
      expect(safe.output()).not.toContain('ADMIN API EXPOSED');
      expect(safe.output()).not.toContain('not a loopback address');
    } finally {
      await safe.stop();
    }
  }, 60_000);
});
