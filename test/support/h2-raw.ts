import net, { type AddressInfo } from 'node:net';

/**
 * A hand-written HTTP/2 server peer on raw TCP, for upstreams that misbehave in ways node:http2 would never let a
 * server misbehave: malformed frames, oversized header blocks, forbidden trailer fields, floods, a flow-control
 * window never opened. It reads the client preface and frames, and hands each new request stream to `onStream`
 * with helpers that write frames as given. Header blocks are HPACK literals without indexing (no Huffman): easy to
 * write by hand, valid for any decoder.
 */

export const FrameType = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const Flag = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 } as const;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

function hpackInt(value: number, prefixBits: number, firstByte: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const out = [firstByte | max];
  value -= max;
  while (value >= 128) {
    out.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  out.push(value);
  return Buffer.from(out);
}

/** A header block of literal fields (literal without indexing, new name). */
export function headerBlock(fields: Array<[string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    parts.push(Buffer.from([0]), hpackInt(name.length, 7, 0), Buffer.from(name, 'latin1'), hpackInt(value.length, 7, 0), Buffer.from(value, 'latin1'));
  }
  return Buffer.concat(parts);
}

export function settings(entries: Array<[number, number]> = []): Buffer {
  const p = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, v], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(v, i * 6 + 2);
  });
  return frame(FrameType.SETTINGS, 0, 0, p);
}

export const SETTINGS_ACK = frame(FrameType.SETTINGS, Flag.ACK, 0);
export const SETTINGS_MAX_CONCURRENT_STREAMS = 3;
export const SETTINGS_INITIAL_WINDOW_SIZE = 4;

export interface RawStream {
  id: number;
  socket: net.Socket;
  /** response HEADERS with these fields (`:status` first), END_HEADERS set */
  headers(fields: Array<[string, string]>, endStream?: boolean): void;
  data(payload: Buffer, endStream?: boolean): void;
  /** a trailing HEADERS frame with these fields, ending the stream */
  trailers(fields: Array<[string, string]>): void;
}

export interface RawH2Server {
  url: string;
  port: number;
  /** streams opened by the client so far */
  streams: number;
  close(): Promise<void>;
}

export interface RawH2Options {
  /** the SETTINGS frame sent first (default: empty) */
  settings?: Buffer;
  /** ack the client's SETTINGS (default true) */
  ackSettings?: boolean;
  /** answer PINGs (default true) */
  ackPings?: boolean;
  /** called on every new stream (its HEADERS frame arrived) */
  onStream(stream: RawStream): void;
}

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

export async function startRawH2(opts: RawH2Options): Promise<RawH2Server> {
  const sockets = new Set<net.Socket>();
  const state = { streams: 0 };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.write(opts.settings ?? settings());
    let buf = Buffer.alloc(0);
    let prefaceSeen = false;
    const seen = new Set<number>();
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!prefaceSeen) {
        if (buf.length < PREFACE.length) return;
        buf = buf.subarray(PREFACE.length);
        prefaceSeen = true;
      }
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) return;
        const type = buf[3]!;
        const flags = buf[4]!;
        const id = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === FrameType.SETTINGS && (flags & Flag.ACK) === 0 && opts.ackSettings !== false) socket.write(SETTINGS_ACK);
        else if (type === FrameType.PING && (flags & Flag.ACK) === 0 && opts.ackPings !== false) socket.write(frame(FrameType.PING, Flag.ACK, 0, payload));
        else if (type === FrameType.HEADERS && !seen.has(id)) {
          seen.add(id);
          state.streams++;
          opts.onStream({
            id,
            socket,
            headers: (fields, endStream = false) =>
              socket.write(frame(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), id, headerBlock(fields))),
            data: (p, endStream = false) => socket.write(frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, id, p)),
            trailers: (fields) => socket.write(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, headerBlock(fields))),
          });
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get streams() {
      return state.streams;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
