/**
 * Verify before timing for the h2load scenarios (h2load.ts): h2load counts an HTTP 200 as a success, but a gRPC
 * call that failed still answers 200 with its grpc-status in the trailers, and a proxy that answers the wrong
 * bytes fast would win. So each contestant answers one request, over the protocol it is loaded with, before it is
 * timed: the status, the body bytes when the scenario knows them, and `grpc-status: 0` for gRPC calls.
 */
import { request as h1Request } from 'node:http';
import { connect, type IncomingHttpHeaders } from 'node:http2';
import { request as tlsRequest } from 'node:https';
import type { AnswerCheck } from './answer-check.js';

export interface H2Probe {
  protocol: 'h1' | 'h1-tls' | 'h2-tls' | 'h2c';
  port: number;
  path: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: Buffer;
}

export interface H2Expected {
  status: number;
  /** the exact body; undefined = not compared */
  body?: Buffer;
  /** gRPC: the call must end with this grpc-status (trailers, or headers for a trailers-only answer) */
  grpcStatus?: string;
}

interface Answer {
  status: number;
  body: Buffer;
  grpcStatus: string | undefined;
}

const TIMEOUT_MS = 10_000;

function viaHttp2(p: H2Probe): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = connect(`${p.protocol === 'h2c' ? 'http' : 'https'}://127.0.0.1:${p.port}`, { rejectUnauthorized: false });
    session.on('error', reject);
    const stream = session.request({ ':method': p.method, ':path': p.path, ...p.headers });
    stream.setTimeout(TIMEOUT_MS, () => stream.close());
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (head = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('error', reject);
    stream.on('close', () => {
      session.close();
      const grpc = trailers['grpc-status'] ?? head['grpc-status'];
      resolve({ status: Number(head[':status'] ?? 0), body: Buffer.concat(chunks), grpcStatus: grpc === undefined ? undefined : String(grpc) });
    });
    stream.end(p.body);
  });
}

function viaHttp1(p: H2Probe): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const send = p.protocol === 'h1-tls' ? tlsRequest : h1Request;
    const req = send(
      { host: '127.0.0.1', port: p.port, path: p.path, method: p.method, headers: p.headers, rejectUnauthorized: false, timeout: TIMEOUT_MS },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), grpcStatus: undefined }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(p.body);
  });
}

/** One request through the contestant; `identical` false names the first difference. */
export async function checkH2Answer(variant: string, probe: H2Probe, expected: H2Expected): Promise<AnswerCheck> {
  let mismatch: string | undefined;
  try {
    const a = probe.protocol === 'h2c' || probe.protocol === 'h2-tls' ? await viaHttp2(probe) : await viaHttp1(probe);
    if (a.status !== expected.status) mismatch = `${probe.method} ${probe.path}: status ${a.status}, expected ${expected.status}`;
    else if (expected.grpcStatus !== undefined && a.grpcStatus !== expected.grpcStatus)
      mismatch = `${probe.method} ${probe.path}: grpc-status ${a.grpcStatus ?? '(none)'}, expected ${expected.grpcStatus}`;
    else if (expected.body !== undefined && !a.body.equals(expected.body))
      mismatch = `${probe.method} ${probe.path}: ${a.body.length} body bytes differing from the expected ${expected.body.length}`;
  } catch (err) {
    mismatch = `${probe.method} ${probe.path}: ${(err as Error).message}`;
  }
  return { variant, requests: 1, identical: mismatch === undefined, ...(mismatch !== undefined ? { mismatch } : {}) };
}
