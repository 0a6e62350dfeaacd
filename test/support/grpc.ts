import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * Real gRPC peers for the tests: the Echo service of fixtures/echo.proto served by @grpc/grpc-js, and clients
 * for it. The server's behaviour is driven by the request message (count, delay_ms, status), so each test states
 * what it asks for in the call itself.
 */
export interface Msg {
  text?: string;
  data?: Buffer;
  count?: number;
  delayMs?: number;
  status?: number;
}

const PROTO = fileURLToPath(new URL('./fixtures/echo.proto', import.meta.url));
const definition = protoLoader.loadSync(PROTO, { keepCase: false, longs: Number, defaults: true });
const pkg = grpc.loadPackageDefinition(definition) as unknown as { gwtest: { Echo: grpc.ServiceClientConstructor } };
export const EchoClient = pkg.gwtest.Echo;
export type EchoClientT = InstanceType<typeof EchoClient>;

/** What the service saw, for tests to assert on. */
export interface EchoRecord {
  calls: number;
  metadata: grpc.Metadata[];
  /** calls whose client cancelled (the server saw 'cancelled') */
  cancelled: number;
  /** messages a backpressure-respecting stream ("flow") has written so far */
  flowWritten: number;
}

function answerError(status: number): Partial<grpc.StatusObject> {
  const md = new grpc.Metadata();
  md.set('x-detail', 'from the service');
  md.set('x-detail-bin', Buffer.from([0, 1, 2, 255]));
  return { code: status, details: `status ${status} as asked`, metadata: md };
}

function later(ms: number, fn: () => void): void {
  if (ms > 0) setTimeout(fn, ms);
  else fn();
}

export interface GrpcServer {
  port: number;
  url: string;
  record: EchoRecord;
  server: grpc.Server;
  close(): Promise<void>;
  /** cut every connection at once (as a crash would) */
  kill(): void;
}

export async function startEchoServer(
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
  options: grpc.ServerOptions = {},
): Promise<GrpcServer> {
  const record: EchoRecord = { calls: 0, metadata: [], cancelled: 0, flowWritten: 0 };
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20, ...options });
  const seen = (call: { metadata: grpc.Metadata; on(e: 'cancelled', f: () => void): unknown }): void => {
    record.calls++;
    record.metadata.push(call.metadata);
    call.on('cancelled', () => record.cancelled++);
  };
  server.addService(EchoClient.service, {
    unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      seen(call);
      const m = call.request;
      later(m.delayMs ?? 0, () => {
        if ((m.status ?? 0) !== 0) cb(answerError(m.status!));
        else {
          const trailer = new grpc.Metadata();
          trailer.set('x-trailer', 'unary');
          cb(null, { text: `echo:${m.text ?? ''}`, data: m.data ?? Buffer.alloc(0) }, trailer);
        }
      });
    },
    serverStream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      seen(call);
      const m = call.request;
      if (m.text === 'flow') {
        // writes only while the stream takes more (write() true), then waits for 'drain': backpressure observed
        const pump = (): void => {
          while (!call.cancelled && record.flowWritten < (m.count ?? 0)) {
            record.flowWritten++;
            if (!call.write({ text: 'flow', data: m.data ?? Buffer.alloc(0) })) {
              call.once('drain', pump);
              return;
            }
          }
          if (!call.cancelled) call.end();
        };
        pump();
        return;
      }
      let i = 0;
      const next = (): void => {
        if (call.cancelled) return;
        if (i >= (m.count ?? 0)) {
          if ((m.status ?? 0) !== 0) call.emit('error', answerError(m.status!));
          else call.end();
          return;
        }
        call.write({ text: `${m.text ?? ''}#${i++}`, data: m.data ?? Buffer.alloc(0) });
        later(m.delayMs ?? 0, next);
      };
      next();
    },
    clientStream: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      seen(call);
      const texts: string[] = [];
      let bytes = 0;
      call.on('data', (m: Msg) => {
        texts.push(m.text ?? '');
        bytes += m.data?.length ?? 0;
      });
      call.on('end', () => cb(null, { text: texts.join(','), count: bytes }));
      call.on('error', () => {});
    },
    bidi: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      seen(call);
      call.on('data', (m: Msg) => {
        if ((m.status ?? 0) !== 0) {
          call.emit('error', answerError(m.status!));
          return;
        }
        later(m.delayMs ?? 0, () => {
          if (!call.cancelled && call.writable) call.write({ text: `echo:${m.text ?? ''}`, data: m.data ?? Buffer.alloc(0) });
        });
      });
      call.on('end', () => call.end());
      call.on('error', () => {});
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    record,
    server,
    close: () => new Promise<void>((r) => server.tryShutdown(() => r())),
    kill: () => server.forceShutdown(),
  };
}

/** A client for the service at host:port (the gateway, or the service itself). */
export function echoClient(
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options: grpc.ChannelOptions = {},
): EchoClientT {
  return new EchoClient(address, credentials, { 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20, ...options });
}

/** A unary call as a promise: resolves with the answer and the trailers, rejects with the ServiceError. */
export function unary(
  client: EchoClientT,
  msg: Msg,
  options: { metadata?: grpc.Metadata; deadlineMs?: number } = {},
): Promise<{ msg: Msg; trailers: grpc.Metadata }> {
  return new Promise((resolve, reject) => {
    let answer: Msg | null = null;
    let error: grpc.ServiceError | null = null;
    const callOptions: grpc.CallOptions = options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs };
    const call = (client as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>).unary!.call(
      client,
      msg,
      options.metadata ?? new grpc.Metadata(),
      callOptions,
      (err: grpc.ServiceError | null, res: Msg) => {
        error = err;
        answer = res;
      },
    );
    // the callback runs before 'status', which carries the trailers
    call.on('status', (s: grpc.StatusObject) => {
      if (error !== null) reject(error);
      else resolve({ msg: answer!, trailers: s.metadata });
    });
  });
}

/** A unary call with an empty message to any method path (no stub needed): the error, or null on OK. */
export async function callPath(
  address: string,
  credentials: grpc.ChannelCredentials,
  path: string,
  options: grpc.ChannelOptions = {},
): Promise<grpc.ServiceError | null> {
  const c = new grpc.Client(address, credentials, options);
  try {
    return await new Promise<grpc.ServiceError | null>((resolve) =>
      c.makeUnaryRequest(
        path,
        (x: Buffer) => x,
        (x: Buffer) => x,
        Buffer.alloc(0),
        (e) => resolve(e),
      ),
    );
  } finally {
    c.close();
  }
}

export { grpc };
