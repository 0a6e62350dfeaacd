import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Hook {
  at: number;
  headers: http.IncomingHttpHeaders;
  body: {
    version: string;
    status: string;
    receiver: string;
    groupLabels: Record<string, string>;
    commonLabels: Record<string, string>;
    commonAnnotations: Record<string, string>;
    externalURL: string;
    alerts: Array<{
      status: string;
      labels: Record<string, string>;
      annotations: Record<string, string>;
      startsAt: string;
      endsAt: string;
      generatorURL: string;
      fingerprint: string;
    }>;
  };
}

/** How the receiver answers: 200, 500, or never (the request is held until close). */
export type ReceiverMode = 'ok' | 'fail' | 'hang';

export interface Receiver {
  url: string;
  /** every POST that arrived whole, answered or not */
  hooks: Hook[];
  mode: ReceiverMode;
  close(): Promise<void>;
}

/** A real Alertmanager-style webhook receiver on 127.0.0.1, recording what it is sent. */
export async function startReceiver(mode: ReceiverMode = 'ok'): Promise<Receiver> {
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      r.hooks.push({ at: Date.now(), headers: req.headers, body: JSON.parse(Buffer.concat(parts).toString()) as Hook['body'] });
      if (r.mode === 'hang') return;
      res.statusCode = r.mode === 'ok' ? 200 : 500;
      res.end();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const r: Receiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    hooks: [],
    mode,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return r;
}
