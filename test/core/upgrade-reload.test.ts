import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { until } from '../support/wait.js';

/**
 * A WebSocket upgrade runs the same pipeline as any request, so it is in flight like one: a reload while its
 * preHandler hook waits must not dispose the runtime (plugin instances, upstream pools) that hook runs in. The
 * old runtime is disposed once the upgrade has been handed to the upstream, not before.
 */
const dir = mkdtempSync(join(tmpdir(), 'gw-upgrade-reload-'));

// `gate` holds every upgrade's preHandler until the test opens it; destroy() records when this instance died.
writeFileSync(
  join(dir, 'gate.mjs'),
  `
const g = globalThis.__upgradeGate ??= { entered: 0, events: [] };
export default {
  name: 'gate', version: '1.0.0',
  init() {
    return {
      preHandler(ctx) {
        if (!ctx.upgrade) return;
        g.entered++;
        return g.wait.then(() => g.events.push('preHandler done'));
      },
      destroy() { g.events.push('destroyed'); },
    };
  },
};`,
);

interface Gate {
  entered: number;
  events: string[];
  wait: Promise<void>;
}
const gate = ((globalThis as Record<string, unknown>).__upgradeGate ??= { entered: 0, events: [] }) as Gate;

let upstream: Server;
const tunnels = new Set<Duplex>();
let upstreamPort = 0;
let gw: RunningGateway;

function config(version: string): unknown {
  return {
    pluginDirs: [dir],
    upstreams: { ws: { targets: [{ url: `http://127.0.0.1:${upstreamPort}` }] } },
    routes: [{ path: '/ws', methods: ['GET'], upstream: 'ws', plugins: [{ name: 'gate' }], responseHeaders: { add: { 'x-config': version } } }],
  };
}

beforeAll(async () => {
  // Accepts every upgrade with a bare 101 and then echoes: enough to see the tunnel work end to end.
  upstream = createServer((_req, res) => res.end('plain'));
  upstream.on('upgrade', (_req: IncomingMessage, socket: Duplex) => {
    tunnels.add(socket);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamPort = (upstream.address() as { port: number }).port;
  gw = await startGateway(config('1'));
});
afterAll(async () => {
  await gw?.close();
  // upgraded sockets are no longer the http server's: close() would wait for them
  for (const t of tunnels) t.destroy();
  await new Promise<void>((r) => upstream?.close(() => r()));
});

describe('an upgrade is in flight while its hooks run', () => {
  it('a reload during its slow preHandler disposes the old runtime only after the upgrade was handed off', async () => {
    let open!: () => void;
    gate.wait = new Promise<void>((r) => (open = r));
    gate.events.length = 0;
    const entered = gate.entered;

    const client: Socket = connect(gw.port, '127.0.0.1');
    client.on('error', () => undefined);
    let received = '';
    client.on('data', (d: Buffer) => (received += d.toString('latin1')));
    client.write(
      'GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    await until(() => gate.entered > entered, { timeoutMs: 5000, message: 'the upgrade reached its preHandler hook' });
    expect(gw.gateway.metrics.inFlight).toBe(1);

    const reloaded = await gw.reload(config('2'));
    expect(reloaded.ok).toBe(true);
    // Give a wrongly-scheduled dispose every chance to run before the hook is released.
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 20));
    expect(gate.events).toEqual([]);

    open();
    await until(() => received.includes('\r\n\r\n'), { timeoutMs: 5000, message: () => `an answer to the upgrade (got ${JSON.stringify(received)})` });
    // The hook ran in a live runtime: its upstream pool still tunnelled the upgrade.
    expect(received.startsWith('HTTP/1.1 101 ')).toBe(true);
    expect(received).toContain('x-config: 1\r\n');
    await until(() => gate.events.includes('destroyed'), {
      timeoutMs: 5000,
      message: () => `the old runtime disposed (events ${JSON.stringify(gate.events)})`,
    });
    expect(gate.events).toEqual(['preHandler done', 'destroyed']);
    expect(gw.gateway.metrics.inFlight).toBe(0);

    // The tunnel outlives the runtime that set it up: bytes still flow both ways.
    client.write('ping');
    await until(() => received.endsWith('ping'), { timeoutMs: 5000, message: 'the tunnel echoed after the old runtime was disposed' });
    client.destroy();
  });
});
