/**
 * The Echo service's `Msg` (fixtures/echo.proto) encoded and decoded by hand, for gRPC-Web clients that have no
 * generated code: the socket-level tests and the browser bundle both use it (plain Uint8Array, no Node APIs).
 * Only what the messages use: varints (count, delay_ms, status) and length-delimited fields (text, data).
 */
export interface WebMsg {
  text?: string;
  data?: Uint8Array;
  count?: number;
  delayMs?: number;
  status?: number;
}

const FIELD = { text: 1, data: 2, count: 3, delayMs: 4, status: 5 } as const;

function varint(out: number[], v: number): void {
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
}

function bytesField(out: number[], field: number, bytes: Uint8Array): void {
  out.push((field << 3) | 2);
  varint(out, bytes.length);
  for (const b of bytes) out.push(b);
}

export function encodeMsg(m: WebMsg): Uint8Array {
  const out: number[] = [];
  if (m.text !== undefined && m.text !== '') bytesField(out, FIELD.text, new TextEncoder().encode(m.text));
  if (m.data !== undefined && m.data.length > 0) bytesField(out, FIELD.data, m.data);
  for (const name of ['count', 'delayMs', 'status'] as const) {
    const v = m[name];
    if (v !== undefined && v !== 0) {
      out.push(FIELD[name] << 3);
      varint(out, v);
    }
  }
  return Uint8Array.from(out);
}

export function decodeMsg(bytes: Uint8Array): WebMsg {
  const m: WebMsg = {};
  let i = 0;
  const readVarint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[i++]!;
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return v;
      shift += 7;
    }
  };
  while (i < bytes.length) {
    const key = readVarint();
    const field = key >>> 3;
    if ((key & 7) === 2) {
      const len = readVarint();
      const value = bytes.subarray(i, i + len);
      i += len;
      if (field === FIELD.text) m.text = new TextDecoder().decode(value);
      else if (field === FIELD.data) m.data = value.slice();
    } else {
      const v = readVarint();
      if (field === FIELD.count) m.count = v;
      else if (field === FIELD.delayMs) m.delayMs = v;
      else if (field === FIELD.status) m.status = v;
    }
  }
  return m;
}
