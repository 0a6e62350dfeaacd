import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerConfig } from '../../core/config/types.js';
import { validateConfig } from '../../core/config/validator.js';
import type { ServerEngine, ServerRequest } from '../../core/contracts/server.js';
import { serverEngineVariants } from '../../variants/server/index.js';
import { until } from '../support/wait.js';

/**
 * What an upgrade handler gets from every engine: a socket that behaves like any net.Socket from the moment it is
 * handed over, however the engine read it before (the own engine reads plain TCP into a shared buffer, see
 * variants/server/own/user-buffer.ts). The gateway's own handler (core/proxy/upgrade.ts) attaches its listeners
 * only once the upstream answered, and a plugin may never read at all.
 */
function serverConfig(): ServerConfig {
  const v = validateConfig({ server: { host: '127.0.0.1', port: 0 } });
  if (!v.ok) throw new Error(v.errors.join('; '));
  return v.value.server;
}

const HEAD = 'GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';

const running: ServerEngine[] = [];
afterEach(async () => {
  for (const e of running.splice(0)) {
    e.closeAll();
    await new Promise<void>((r) => e.listener.close(() => r()));
  }
});

async function serve(name: string, upgrade: (req: ServerRequest, socket: Duplex, head: Buffer) => void): Promise<number> {
  const engine = serverEngineVariants[name]!(serverConfig(), {
    request: (_req, res) => res.end('not an upgrade'),
    upgrade,
    connection: () => true,
  });
  running.push(engine);
  await new Promise<void>((r) => engine.listener.listen(0, '127.0.0.1', r));
  return (engine.listener.address() as AddressInfo).port;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

describe.each(Object.keys(serverEngineVariants))('upgrade hand-over (engine %s)', (name) => {
  it('a handler that reads late gets every byte after the head, in order, then the end', async () => {
    let got = '';
    let ended = false;
    const port = await serve(name, (_req, socket, head) => {
      got += head.toString('latin1');
      // attach only later, as the proxy does once its upstream answered
      setTimeout(() => {
        socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
        socket.on('end', () => {
          ended = true;
          socket.end();
        });
      }, 100);
    });
    const s = await connect(port);
    s.write(`${HEAD}first;`);
    await new Promise((r) => setTimeout(r, 30));
    s.write('second;');
    const big = 'x'.repeat(200_000);
    s.write(big);
    s.end('last;');
    await until(() => ended, { timeoutMs: 5000, message: () => `ended ${ended}, ${got.length} bytes` });
    expect(got).toBe(`first;second;${big}last;`);
    s.destroy();
  });

  it("a handler that never reads still sees the client's FIN as 'end'", async () => {
    let ended = false;
    const port = await serve(name, (_req, socket) => {
      socket.once('end', () => {
        ended = true;
        socket.destroy();
      });
    });
    const s = await connect(port);
    s.end(HEAD);
    await until(() => ended, { timeoutMs: 5000, message: "'end' never came" });
    s.destroy();
  });

  it('backpressure: a handler that pauses stops the reading, and resuming delivers the rest', async () => {
    let got = 0;
    let resumed = false;
    let bufferedWhilePaused = -1;
    const total = 4 * 1024 * 1024;
    const port = await serve(name, (_req, socket, head) => {
      got += head.length;
      socket.pause();
      setTimeout(() => {
        bufferedWhilePaused = socket.readableLength;
        resumed = true;
        socket.on('data', (c: Buffer) => (got += c.length));
        socket.on('end', () => socket.end());
        socket.resume();
      }, 300);
    });
    const s = await connect(port);
    s.write(HEAD);
    const chunk = Buffer.alloc(64 * 1024, 97);
    for (let sent = 0; sent < total; sent += chunk.length) s.write(chunk);
    await until(() => got === total, { timeoutMs: 10_000, message: () => `got ${got} of ${total}` });
    expect(resumed).toBe(true);
    // the rest waited in the kernel's socket buffers, not in the gateway's memory
    expect(bufferedWhilePaused).toBeGreaterThanOrEqual(0);
    expect(bufferedWhilePaused).toBeLessThan(1024 * 1024);
    s.destroy();
  });
});
