import net, { type Socket } from 'node:net';

/**
 * Reads of an accepted plain-TCP socket straight into one shared buffer, as `net.connect({ onread })` does for
 * client sockets (the h1 upstream client uses that option). node does not offer `onread` to a server's sockets,
 * so this sets the same three per-socket fields net.Socket's constructor sets for it. What it saves per read:
 * a 64 KiB allocation shrunk to the bytes read, a Buffer object, the Readable push and the 'data' emit with its
 * `process.nextTick(maybeReadMore)`; and a paused socket stops reading at once (readStop) instead of filling
 * the stream's buffer. `bench:engines` measures the difference (README "Server engines").
 *
 * The fields are found by their symbols' descriptions on a fresh net.Socket; where a runtime lacks any of them,
 * or the socket's handle cannot take a user buffer (a TLS socket), `attach` returns false and the caller reads
 * 'data' events as before.
 */
export type UserReadCallback = (nread: number, buf: Buffer) => boolean;

interface UserBufferFields {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

function findFields(): UserBufferFields | null {
  const probe = new net.Socket();
  const symbols = Object.getOwnPropertySymbols(probe);
  const by = (d: string): symbol | undefined => symbols.find((s) => s.description === d);
  const buffer = by('kBuffer');
  const callback = by('kBufferCb');
  const generator = by('kBufferGen');
  probe.destroy();
  if (buffer === undefined || callback === undefined || generator === undefined) return null;
  // net.Socket's pause/resume must honour the user buffer (they readStop/readStart) or backpressure is lost
  if (!String(net.Socket.prototype.pause).includes('readStop')) return null;
  return { buffer, callback, generator };
}

const FIELDS = findFields();

type Fields = Record<symbol, unknown>;

interface UserBufferHandle {
  useUserBuffer?: (buf: Uint8Array) => void;
}

/** Puts a plain-TCP socket in user-buffer mode: each read calls `callback(nread, buffer)`; bytes are valid only inside it. */
export function attachUserBuffer(socket: Socket, buffer: Buffer, callback: UserReadCallback): boolean {
  if (FIELDS === null || socket.constructor !== net.Socket) return false;
  const handle = (socket as unknown as { _handle: UserBufferHandle | null })._handle;
  if (handle === null || typeof handle.useUserBuffer !== 'function') return false;
  const s = socket as unknown as Fields;
  if (s[FIELDS.buffer] !== null && s[FIELDS.buffer] !== undefined) return false;
  s[FIELDS.buffer] = buffer;
  s[FIELDS.callback] = callback;
  s[FIELDS.generator] = null;
  handle.useUserBuffer(buffer);
  // flowing, so that EOF still ends the stream ('end'); no 'data' is ever pushed in this mode
  socket.resume();
  return true;
}

/**
 * Hands a user-buffer socket to code that expects a normal stream (an upgrade's new owner): every later read
 * is copied and pushed, so 'data', pipe() and backpressure behave as on any socket.
 */
export function pushReadsToStream(socket: Socket): void {
  if (FIELDS === null) return;
  const push: UserReadCallback = (n, buf) => socket.push(Buffer.from(buf.subarray(0, n)));
  (socket as unknown as Fields)[FIELDS.callback] = push;
}
