import { GrpcWebClientBase, MethodDescriptor, MethodType, type RpcError } from 'grpc-web';
import { decodeMsg, encodeMsg, type WebMsg } from './grpc-web-msg.js';

/**
 * The browser side of the gRPC-Web test: bundled at test time (test/proxy/grpc-web-browser.test.ts) and loaded
 * by Chromium. The `grpc-web` library calls the Echo service through the gateway, with method descriptors whose
 * (de)serializers are the hand-written Msg codec, so no generated code is needed. Each call resolves to plain
 * data the test can read back through page.evaluate.
 */

/** grpc-web builds messages with `new`: a class around the plain object. */
class Message {
  readonly m: WebMsg;
  constructor(...args: unknown[]) {
    this.m = (args[0] as WebMsg | undefined) ?? {};
  }
}

const serialize = (req: Message): Uint8Array => encodeMsg(req.m);
const deserialize = (bytes: Uint8Array): Message => new Message(decodeMsg(bytes));

function descriptor(method: string, type: string): MethodDescriptor<Message, Message> {
  return new MethodDescriptor(`/gwtest.Echo/${method}`, type, Message, Message, serialize, deserialize);
}
const UNARY = descriptor('Unary', MethodType.UNARY);
const SERVER_STREAM = descriptor('ServerStream', MethodType.SERVER_STREAMING);

export interface CallResult {
  texts: string[];
  /** bytes of the data field of each message */
  data: number[][];
  code: number;
  details: string;
  metadata: Record<string, string>;
}

function unary(base: string, format: 'text' | 'binary', m: WebMsg): Promise<CallResult> {
  const client = new GrpcWebClientBase({ format });
  return new Promise((resolve) => {
    let metadata: Record<string, string> = {};
    const call = client.rpcCall(`${base}/gwtest.Echo/Unary`, new Message(m), {}, UNARY, (err: RpcError | null, res: Message) => {
      if (err) resolve({ texts: [], data: [], code: err.code, details: err.message, metadata: { ...err.metadata } });
      else resolve({ texts: [res.m.text ?? ''], data: [Array.from(res.m.data ?? [])], code: 0, details: '', metadata });
    });
    call.on('status', (s) => (metadata = { ...s.metadata }));
  });
}

function serverStream(base: string, m: WebMsg): Promise<CallResult> {
  const client = new GrpcWebClientBase({ format: 'text' });
  return new Promise((resolve) => {
    const result: CallResult = { texts: [], data: [], code: -1, details: '', metadata: {} };
    const stream = client.serverStreaming(`${base}/gwtest.Echo/ServerStream`, new Message(m), {}, SERVER_STREAM);
    stream.on('data', (res: Message) => {
      result.texts.push(res.m.text ?? '');
      result.data.push(Array.from(res.m.data ?? []));
    });
    stream.on('error', (err: RpcError) => {
      result.code = err.code;
      result.details = err.message;
      resolve(result);
    });
    stream.on('status', (s) => {
      result.code = s.code;
      result.details = s.details;
      result.metadata = { ...s.metadata };
    });
    stream.on('end', () => resolve(result));
  });
}

(globalThis as unknown as { echo: unknown }).echo = { unary, serverStream };
