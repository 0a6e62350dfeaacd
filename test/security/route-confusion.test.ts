import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../core/control/gateway.js';
import { canonicalTarget } from '../../core/data/canonical-path.js';
import { variantNames } from '../../core/variants.js';
import { gatewayFor } from '../plugins/helpers.js';
import { exchange } from '../support/raw.js';
import { startUpstream, type RecordingUpstream } from '../support/upstream.js';

/**
 * Found probing as an outside tester: routing matched the path as received, the proxy forwarded it with dot
 * segments resolved (and an upstream may decode more), so a catch-all route carried `/public/../private/x` to the
 * upstream as `/private/x` without the private route's auth; the same for ip-filter and rate-limit routes. A path
 * whose lenient reading (canonical-path.ts) matches another route is now a 400.
 */
const KEY = createHash('sha256').update('k-1').digest('hex');

describe.each(variantNames('server'))('a path that reads as another route, %s engine', (engine) => {
  let up: RecordingUpstream;
  let gw: RunningGateway;
  let port: number;

  beforeAll(async () => {
    up = await startUpstream('up');
    gw = await gatewayFor({
      variants: { server: engine },
      upstreams: { up: { targets: [up.url] } },
      routes: [
        { path: '/private/*', methods: ['GET'], upstream: 'up', plugins: [{ name: 'auth', options: { apiKey: { keys: [KEY] } } }] },
        { path: '/internal/*', methods: ['GET'], upstream: 'up', plugins: [{ name: 'ip-filter', options: { allow: ['10.0.0.0/8'] } }] },
        {
          path: '/limited/*',
          methods: ['GET'],
          upstream: 'up',
          plugins: [{ name: 'rate-limit', options: { limit: 1, windowMs: 60_000, bucket: `route-confusion-${engine}` } }],
        },
        { path: '/*', methods: ['GET'], upstream: 'up' },
      ],
    });
    port = Number(new URL(gw.url).port);
  });
  afterAll(async () => {
    await gw?.close();
    await up?.close();
  });

  const status = async (target: string): Promise<number> => {
    const x = await exchange(port, [`GET ${target} HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n\r\n`]);
    return x.responses.find((r) => r.status >= 200)?.status ?? 0;
  };

  it.each([
    '/x/../private/y',
    '/x/%2e%2e/private/y',
    '/x/.%2E/private/y',
    '/./private/y',
    '//private/y',
    '/%70rivate/y',
    '/x/..%2fprivate/y',
    '/x/%5c..%5cprivate/y',
    '/x\\..\\private/y',
    '/private;/y',
    '/x/..;/private/y',
    '/x/../internal/y',
    '//internal/y',
    '/x/../limited/y',
  ])('%s is refused before the upstream sees it', async (target) => {
    up.reset();
    expect(await status(target)).toBe(400);
    expect(up.received).toHaveLength(0);
  });

  it('paths that stay on their route are served as before', async () => {
    expect(await status('/private/./y')).toBe(401);
    expect(await status('/public/a/./b/../c')).toBe(200);
    expect(up.received.at(-1)!.url).toBe('/public/a/c');
    expect(await status('/public/a%20b;v=1')).toBe(200);
    expect(await status('/private/../private/y')).toBe(401);
  });

  it('the rate limit of a route cannot be dodged with // or dot segments', async () => {
    expect(await status('/limited/a')).toBe(200);
    expect(await status('/limited/a')).toBe(429);
    expect(await status('//limited/a')).toBe(400);
    expect(await status('/limited/./a')).toBe(429);
  });
});

describe('canonicalTarget', () => {
  it('reads the path as a lenient upstream would, the query untouched', () => {
    expect(canonicalTarget('/a/b?x=/../y')).toBe('/a/b?x=/../y');
    expect(canonicalTarget('/a/../b?q')).toBe('/b?q');
    expect(canonicalTarget('/%41%2e%2E/x')).toBe('/A../x');
    expect(canonicalTarget('/a%2fb%5Cc')).toBe('/a%2fb%5Cc');
    expect(canonicalTarget('/a/..%2fb')).toBeNull();
    expect(canonicalTarget('/a/%5C.;x%5cb')).toBeNull();
    expect(canonicalTarget('/a;p=1/b;q')).toBe('/a/b');
    expect(canonicalTarget('/a/%20b')).toBe('/a/%20b');
    expect(canonicalTarget('/../x')).toBeNull();
    expect(canonicalTarget('/a//b/')).toBe('/a/b/');
  });
});
