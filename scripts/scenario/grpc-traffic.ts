/**
 * The fixed messages of the gRPC and upstream-h2 scenarios, shared by the stub service (h2-stub.ts), the load
 * (h2load.ts: h2load's request body) and the answer check before timing.
 */

/** A length-prefixed gRPC frame (uncompressed) around a protobuf message. */
export function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** field 1 (string) = text: the `Echo` request/reply message, encoded by hand. */
function echoMessage(text: string): Buffer {
  const t = Buffer.from(text);
  return Buffer.concat([Buffer.from([10, t.length]), t]);
}

/** The request every gRPC call sends. */
export const GRPC_REQUEST = grpcFrame(echoMessage('hello'));
/** Each message the service answers. */
export const GRPC_REPLY = grpcFrame(echoMessage('echo:hello'));
/** Messages per server-streaming call. */
export const STREAM_MESSAGES = 10;
/** The gRPC methods the stub serves. */
export const GRPC_PATHS = { unary: '/gwtest.Echo/Unary', 'server-stream': '/gwtest.Echo/ServerStream' } as const;
export type GrpcCall = keyof typeof GRPC_PATHS;

/** The upstream-h2 answer (HTTP/1.1 and h2c stubs alike). */
export const UPSTREAM_BODY = Buffer.from(JSON.stringify({ ok: true, service: 'stub', pad: 'x'.repeat(200) }));
