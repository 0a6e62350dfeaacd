import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { decodeMsg, encodeMsg, type WebMsg } from '../support/grpc-web-msg.js';
import { grpc, startEchoServer, type GrpcServer } from '../support/grpc.js';
import { closedPortUrl } from '../support/upstream.js';

/**
 * gRPC-Web through the gateway on real sockets: a hand-rolled gRPC-Web client (fetch, HTTP/1.1) calls the
 * gateway, which translates to gRPC toward a @grpc/grpc-js server on an h2c upstream. The tests read the wire
 * as a browser's grpc-web library would: message frames, then the trailer frame (flag 0x80) in the body, or a
 * trailers-only answer with the status in the head.
 */

const ECHO = '/gwtest.Echo';
const CT = { binary: 'application/grpc-web+proto', text: 'application/grpc-web-text' } as const;
type Mode = keyof typeof CT;

function frame(msg: WebMsg): Buffer {
  const payload = encodeMsg(msg);
  const out = Buffer.alloc(5 + payload.length);
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, 5);
  return out;
}

interface WebAnswer {
  status: number;
  headers: Headers;
  messages: WebMsg[];
  /** the trailer frame's fields, null when the body had none */
  trailers: Record<string, string> | null;
  /** what followed the trailer frame (must be nothing) */
  rest: number;
}

/** Splits a (decoded) gRPC-Web body into its message frames and its trailer frame. */
function parseBody(body: Buffer): Pick<WebAnswer, 'messages' | 'trailers' | 'rest'> {
  const messages: WebMsg[] = [];
  let trailers: Record<string, string> | null = null;
  let i = 0;
  while (i + 5 <= body.length && trailers === null) {
    const flag = body[i]!;
    const len = body.readUInt32BE(i + 1);
    const payload = body.subarray(i + 5, i + 5 + len);
    i += 5 + len;
    if ((flag & 0x80) === 0) {
      messages.push(decodeMsg(payload));
      continue;
    }
    trailers = {};
    for (const line of payload.toString('latin1').split('\r\n')) {
      if (line === '') continue;
      const colon = line.indexOf(':');
      trailers[line.slice(0, colon)] = line.slice(colon + 1).trim();
    }
  }
  return { messages, trailers, rest: body.length - i };
}

/** Decodes a grpc-web-text body the way the grpc-web library does: padded base64 chunks, one after another. */
function decodeText(text: string): Buffer {
  const parts: Buffer[] = [];
  for (let from = 0; from < text.length;) {
    const pad = text.indexOf('=', from);
    const end = pad < 0 ? text.length : from + (((pad - from) >> 2) + 1) * 4;
    parts.push(Buffer.from(text.slice(from, end), 'base64'));
    from = end;
  }
  return Buffer.concat(parts);
}

describe('gRPC-Web through the gateway (HTTP/1.1 client, h2c upstream)', () => {
  let svc: GrpcServer;
  let gw: RunningGateway;
  let base: string;

  beforeAll(async () => {
    svc = await startEchoServer();
    const dead = await closedPortUrl();
    gw = await startGateway({
      server: { host: '127.0.0.1' },
      admin: { enabled: false },
      logging: { level: 'silent', accessLog: false },
      upstreams: {
        echo: { targets: [svc.url], protocol: 'h2c' },
        dead: { targets: [dead], protocol: 'h2c', retries: { count: 0 } },
      },
      routes: [
        { path: '/dead/*', upstream: 'dead', stripPrefix: '/dead' },
        { path: '/rate/*', upstream: 'echo', stripPrefix: '/rate', plugins: [{ name: 'rate-limit', options: { limit: 1, windowMs: 60_000 } }] },
        {
          path: '/cors/*',
          upstream: 'echo',
          stripPrefix: '/cors',
          plugins: [{ name: 'cors', options: { origins: ['https://app.example'], exposedHeaders: ['grpc-status', 'grpc-message'] } }],
        },
        { path: `${ECHO}/*`, upstream: 'echo' },
      ],
    });
    base = `http://127.0.0.1:${gw.port}`;
  });
  afterAll(async () => {
    await gw?.close();
    await svc?.close();
  });

  async function webCall(mode: Mode, path: string, msg: WebMsg, extra: Record<string, string> = {}): Promise<WebAnswer> {
    const bytes = frame(msg);
    const res = await fetch(base + path, {
      method: 'POST',
      headers: { 'content-type': CT[mode], accept: CT[mode], 'x-grpc-web': '1', ...extra },
      body: mode === 'text' ? bytes.toString('base64') : new Uint8Array(bytes),
    });
    const raw = Buffer.from(await res.arrayBuffer());
    const body = mode === 'text' ? decodeText(raw.toString('latin1')) : raw;
    return { status: res.status, headers: res.headers, ...parseBody(body) };
  }

  for (const mode of ['binary', 'text'] as const) {
    it(`unary (${mode}): the answer's message bytes, then its trailers as the trailer frame`, async () => {
      const data = Uint8Array.from([0, 1, 2, 250, 255]);
      const r = await webCall(mode, `${ECHO}/Unary`, { text: 'hi', data });
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe(mode === 'text' ? 'application/grpc-web-text+proto' : 'application/grpc-web+proto');
      expect(r.messages.map((m) => [m.text, Array.from(m.data ?? [])])).toEqual([['echo:hi', Array.from(data)]]);
      expect(r.trailers).toMatchObject({ 'grpc-status': '0', 'x-trailer': 'unary' });
      expect(r.rest).toBe(0);
      // gRPC's own framing stays between the gateway and the service
      expect(r.headers.get('grpc-status')).toBeNull();
      expect(r.headers.get('trailer')).toBeNull();
    });

    it(`server streaming (${mode}): every message in order, then the status`, async () => {
      const r = await webCall(mode, `${ECHO}/ServerStream`, { text: 's', count: 20 });
      expect(r.messages.map((m) => m.text)).toEqual(Array.from({ length: 20 }, (_, i) => `s#${i}`));
      expect(r.trailers?.['grpc-status']).toBe('0');
      expect(r.rest).toBe(0);
    });

    it(`an error status from the service (${mode}) is the trailer frame's, with its message and metadata`, async () => {
      const r = await webCall(mode, `${ECHO}/Unary`, { status: grpc.status.NOT_FOUND });
      expect(r.status).toBe(200);
      expect(r.messages).toEqual([]);
      // grpc-js answers an error trailers-only: the status arrives in the head
      const status = r.trailers?.['grpc-status'] ?? r.headers.get('grpc-status');
      const message = r.trailers?.['grpc-message'] ?? r.headers.get('grpc-message');
      const detail = r.trailers?.['x-detail'] ?? r.headers.get('x-detail');
      expect(status).toBe(String(grpc.status.NOT_FOUND));
      expect(decodeURIComponent(message!)).toBe('status 5 as asked');
      expect(detail).toBe('from the service');
    });

    it(`the gateway's own answer (${mode}): no upstream is a trailers-only UNAVAILABLE`, async () => {
      const r = await webCall(mode, `/dead${ECHO}/Unary`, { text: 'x' });
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe(mode === 'text' ? 'application/grpc-web-text' : 'application/grpc-web');
      expect(r.headers.get('grpc-status')).toBe(String(grpc.status.UNAVAILABLE));
      expect(r.headers.get('grpc-message')).toMatch(/^GW_ERR_UPSTREAM_/);
      expect(r.messages).toEqual([]);
      expect(r.trailers).toBeNull();
      expect(r.rest).toBe(0);
    });
  }

  it('server streaming after some messages ends in the error status in the trailer frame', async () => {
    const r = await webCall('text', `${ECHO}/ServerStream`, { text: 's', count: 3, status: grpc.status.ABORTED });
    expect(r.messages.map((m) => m.text)).toEqual(['s#0', 's#1', 's#2']);
    expect(r.trailers?.['grpc-status']).toBe(String(grpc.status.ABORTED));
  });

  it('server streaming: each message reaches the client as it is sent, not at the end of the call', async () => {
    const res = await fetch(`${base}${ECHO}/ServerStream`, {
      method: 'POST',
      headers: { 'content-type': CT.binary, 'x-grpc-web': '1' },
      body: new Uint8Array(frame({ text: 'slow', count: 3, delayMs: 400 })),
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    // the first read holds the first message only: the call is still open (no trailer frame yet)
    const got = parseBody(Buffer.from(first.value!));
    expect(got.messages.map((m) => m.text)).toEqual(['slow#0']);
    expect(got.trailers).toBeNull();
    await reader.cancel();
  });

  it("grpc-timeout is the call's deadline: a stream that outlives it ends with DEADLINE_EXCEEDED in the trailer frame", async () => {
    const r = await webCall('text', `${ECHO}/ServerStream`, { text: 'd', count: 10, delayMs: 300 }, { 'grpc-timeout': '500m' });
    expect(r.messages.length).toBeLessThan(10);
    expect(r.trailers?.['grpc-status'] ?? r.headers.get('grpc-status')).toBe(String(grpc.status.DEADLINE_EXCEEDED));
  });

  it('a plugin refusal (rate-limit) is a trailers-only RESOURCE_EXHAUSTED', async () => {
    expect((await webCall('binary', `/rate${ECHO}/Unary`, { text: '1' })).messages.map((m) => m.text)).toEqual(['echo:1']);
    const r = await webCall('binary', `/rate${ECHO}/Unary`, { text: '2' });
    expect(r.status).toBe(200);
    expect(r.headers.get('grpc-status')).toBe(String(grpc.status.RESOURCE_EXHAUSTED));
    expect(r.messages).toEqual([]);
  });

  it('the gateway finds no route: a trailers-only UNIMPLEMENTED', async () => {
    const r = await webCall('binary', '/nowhere.Svc/Call', { text: 'x' });
    expect(r.headers.get('grpc-status')).toBe(String(grpc.status.UNIMPLEMENTED));
    expect(r.headers.get('grpc-message')).toBe('GW_ERR_NO_ROUTE');
  });

  it('a grpc-web-text request body that is not base64 never reaches the service as garbage', async () => {
    const calls = svc.record.calls;
    // the gateway closes the connection: fetch fails, and does so before any timeout
    const failed = await fetch(`${base}${ECHO}/Unary`, {
      method: 'POST',
      headers: { 'content-type': CT.text },
      body: `${frame({ text: 'x' }).toString('base64')}!!!!`,
    })
      .then((res) => res.arrayBuffer())
      .then(
        () => false,
        () => true,
      );
    expect(failed).toBe(true);
    expect(svc.record.calls).toBe(calls);
    // and the gateway serves the next call as usual
    expect((await webCall('text', `${ECHO}/Unary`, { text: 'after' })).messages.map((m) => m.text)).toEqual(['echo:after']);
  });

  it('CORS: the preflight for the grpc-web headers passes, and the answer exposes the status headers', async () => {
    const pre = await fetch(`${base}/cors${ECHO}/Unary`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,grpc-timeout,x-grpc-web,x-user-agent',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const allowed = (pre.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    for (const h of ['content-type', 'grpc-timeout', 'x-grpc-web', 'x-user-agent']) expect(allowed).toContain(h);
    const r = await webCall('text', `/cors${ECHO}/Unary`, { text: 'c' }, { origin: 'https://app.example' });
    expect(r.messages.map((m) => m.text)).toEqual(['echo:c']);
    expect(r.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(r.headers.get('access-control-expose-headers')).toBe('grpc-status, grpc-message');
  });
});

describe('gRPC-Web over HTTP/2 from the client (h2c listener)', () => {
  let svc: GrpcServer;
  let gw: RunningGateway;

  beforeAll(async () => {
    svc = await startEchoServer();
    gw = await startGateway({
      server: { host: '127.0.0.1', http2: 'h2c' },
      admin: { enabled: false },
      logging: { level: 'silent', accessLog: false },
      upstreams: { echo: { targets: [svc.url], protocol: 'h2c' } },
      routes: [{ path: `${ECHO}/*`, upstream: 'echo' }],
    });
  });
  afterAll(async () => {
    await gw?.close();
    await svc?.close();
  });

  it('a grpc-web-text server-streaming call: the messages and the trailer frame in the body, no HTTP/2 trailers', async () => {
    const session = http2.connect(`http://127.0.0.1:${gw.port}`);
    try {
      const stream = session.request({ ':method': 'POST', ':path': `${ECHO}/ServerStream`, 'content-type': CT.text, 'x-grpc-web': '1' });
      stream.end(frame({ text: 'h2', count: 4 }).toString('base64'));
      const answer = await new Promise<{ head: http2.IncomingHttpHeaders; body: string; trailers: boolean }>((resolve, reject) => {
        let head: http2.IncomingHttpHeaders = {};
        let body = '';
        let trailers = false;
        stream.on('response', (h) => (head = h));
        stream.on('trailers', () => (trailers = true));
        stream.setEncoding('latin1');
        stream.on('data', (c: string) => (body += c));
        stream.on('end', () => resolve({ head, body, trailers }));
        stream.on('error', reject);
      });
      expect(answer.head[':status']).toBe(200);
      expect(answer.head['content-type']).toBe('application/grpc-web-text+proto');
      const r = parseBody(decodeText(answer.body));
      expect(r.messages.map((m) => m.text)).toEqual(['h2#0', 'h2#1', 'h2#2', 'h2#3']);
      expect(r.trailers?.['grpc-status']).toBe('0');
      expect(answer.trailers).toBe(false);
    } finally {
      session.close();
    }
  });
});
