import type { ServerConfig } from '../config/types.js';
import type { ListenerKind } from '../contracts/server.js';

/** The listener a server config asks for: TLS (with or without HTTP/2), cleartext HTTP/2 (h2c) or plain HTTP/1.1. */
export function listenerKind(s: ServerConfig): ListenerKind {
  if (s.tls !== undefined) return s.http2 === false ? 'https' : 'h2';
  return s.http2 === 'h2c' ? 'h2c' : 'http';
}
