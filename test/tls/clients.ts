import type { IncomingHttpHeaders } from 'node:http';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders as H2Headers, type OutgoingHttpHeaders } from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTPS/1.1 request verifying the server against `ca` (no agent: a fresh TLS connection each time). */
export function h1(
  url: string,
  ca: Buffer,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; servername?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // https.RequestOptions carries tls.connect's options at run time, but its type omits ALPNProtocols
    const options: https.RequestOptions & { ALPNProtocols: string[] } = {
      method: opts.method ?? 'GET',
      headers: opts.headers,
      ca,
      agent: false,
      servername: opts.servername,
      ALPNProtocols: ['http/1.1'],
    };
    const req = https.request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.end(opts.body);
  });
}

export function h2session(origin: string, ca: Buffer | null, opts: http2.SecureClientSessionOptions = {}): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(origin, { ...(ca === null ? {} : { ca }), ...opts });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** One request on an HTTP/2 session; the body is read whole. */
export function h2(
  session: ClientHttp2Session,
  path: string,
  opts: { method?: string; headers?: OutgoingHttpHeaders; body?: string | Buffer } = {},
): Promise<Reply & { raw: H2Headers }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': opts.method ?? 'GET', ':path': path, ...(opts.headers ?? {}) });
    let raw: H2Headers = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      raw = h;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const headers: IncomingHttpHeaders = {};
      for (const [k, v] of Object.entries(raw)) if (!k.startsWith(':')) headers[k] = v as string;
      resolve({ status: Number(raw[':status']), headers, raw, body: Buffer.concat(chunks) });
    });
    stream.on('error', reject);
    stream.setTimeout(10_000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    stream.end(opts.body);
  });
}

export function closeSession(s: ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed || s.closed) return resolve();
    s.close(() => resolve());
  });
}

/** A TLS handshake only: what the server negotiated and which certificate it presented. */
export function handshake(
  port: number,
  opts: { ca: Buffer; servername?: string; alpn?: string[] },
): Promise<{ alpn: string | false; fingerprint256: string; subjectCN: string }> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: '127.0.0.1', port, ca: opts.ca, servername: opts.servername ?? 'localhost', ALPNProtocols: opts.alpn });
    sock.once('secureConnect', () => {
      const cert = sock.getPeerCertificate();
      const out = { alpn: sock.alpnProtocol ?? false, fingerprint256: cert.fingerprint256, subjectCN: String(cert.subject.CN) };
      sock.end();
      sock.destroy();
      resolve(out);
    });
    sock.once('error', reject);
  });
}
