import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext, type SecureContextOptions, type Server as TlsServer } from 'node:tls';
import type { ServerConfig, TlsConfig } from '../config/types.js';
import { TlsLoadError } from './errors.js';

/**
 * TLS material of one config generation: PEM files read once, the default secure context and the per-name
 * (SNI) contexts. A hot reload builds a complete new TlsMaterial first and swaps it in only when every file
 * loaded, so a broken certificate on disk never replaces a working one.
 */
export interface TlsMaterial {
  /** options of the default context (what `server.setSecureContext` takes) */
  readonly options: SecureContextOptions;
  /** exact lower-case server names */
  readonly exact: Map<string, SecureContext>;
  /** "*.example.com" entries keyed by the suffix after the first label ("example.com") */
  readonly wildcard: Map<string, SecureContext>;
}

/** RFC 6901 escaping of one JSON-pointer segment (server names may not need it, file paths in messages do not). */
function seg(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function readPem(path: string, pointer: string, errors: string[]): Buffer | null {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    errors.push(`${pointer}: cannot read ${path} (${code})`);
    return null;
  }
}

function contextOptions(tls: TlsConfig, cert: Buffer, key: Buffer, ca: Buffer | null): SecureContextOptions {
  const o: SecureContextOptions = { cert, key, minVersion: tls.minVersion };
  if (ca !== null) o.ca = ca;
  if (tls.ciphers !== undefined) o.ciphers = tls.ciphers;
  return o;
}

/** createSecureContext parses the PEMs and checks the key matches the certificate: a bad pair is a config error. */
function buildContext(o: SecureContextOptions, pointer: string, errors: string[]): SecureContext | null {
  try {
    return createSecureContext(o);
  } catch (err) {
    errors.push(`${pointer}: invalid certificate/key (${(err as Error).message})`);
    return null;
  }
}

/** Reads and parses every file of `server.tls`; throws TlsLoadError listing each problem with its JSON path. */
export function loadTlsMaterial(tls: TlsConfig): TlsMaterial {
  const errors: string[] = [];
  const cert = readPem(tls.cert, '/server/tls/cert', errors);
  const key = readPem(tls.key, '/server/tls/key', errors);
  const ca = tls.ca === undefined ? null : readPem(tls.ca, '/server/tls/ca', errors);
  let options: SecureContextOptions | null = null;
  if (cert !== null && key !== null && (tls.ca === undefined || ca !== null)) {
    options = contextOptions(tls, cert, key, ca);
    buildContext(options, '/server/tls', errors);
  }
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  for (const name of Object.keys(tls.sni)) {
    const pair = tls.sni[name]!;
    const at = `/server/tls/sni/${seg(name)}`;
    const c = readPem(pair.cert, `${at}/cert`, errors);
    const k = readPem(pair.key, `${at}/key`, errors);
    if (c === null || k === null) continue;
    const ctx = buildContext(contextOptions(tls, c, k, ca), at, errors);
    if (ctx === null) continue;
    const lower = name.toLowerCase();
    if (lower.startsWith('*.')) wildcard.set(lower.slice(2), ctx);
    else exact.set(lower, ctx);
  }
  if (errors.length > 0 || options === null) throw new TlsLoadError(errors);
  return { options, exact, wildcard };
}

/** The context for a client's SNI name, or undefined for the default one. Names arrive lower-case from OpenSSL. */
export function contextFor(m: TlsMaterial, servername: string): SecureContext | undefined {
  const hit = m.exact.get(servername);
  if (hit !== undefined) return hit;
  if (m.wildcard.size === 0) return undefined;
  const dot = servername.indexOf('.');
  return dot === -1 ? undefined : m.wildcard.get(servername.slice(dot + 1));
}

/**
 * Semantic checks of the TLS/HTTP/2 listener options a schema cannot express, plus reading every PEM file
 * (called from the config validator, so `--check`, hot reload and startup all report a missing file).
 */
export function tlsConfigErrors(server: ServerConfig): string[] {
  const errors: string[] = [];
  if (server.tls !== undefined) {
    if (server.http2 === 'h2c') errors.push('/server/http2: "h2c" is cleartext HTTP/2 and cannot be combined with server.tls');
    try {
      loadTlsMaterial(server.tls);
    } catch (err) {
      if (err instanceof TlsLoadError) errors.push(...err.errors);
      else throw err;
    }
  } else {
    if (server.redirectHttp !== undefined) errors.push('/server/redirectHttp: needs server.tls (the redirect points at the TLS listener)');
    if (server.hsts !== undefined) errors.push('/server/hsts: needs server.tls (browsers ignore HSTS on cleartext responses)');
  }
  const r = server.redirectHttp;
  if (r !== undefined && r.port !== 0 && r.port === server.port && (r.host ?? server.host) === server.host) {
    errors.push(`/server/redirectHttp/port: ${r.port} is the TLS listener's port`);
  }
  return errors;
}

/**
 * The live TLS state of one listener. The SNI callback reads `material` on every handshake, so a swap is seen
 * by the next handshake; connections already established keep the context they negotiated.
 */
export class TlsContexts {
  private material: TlsMaterial;

  constructor(material: TlsMaterial) {
    this.material = material;
  }

  get defaultOptions(): SecureContextOptions {
    return this.material.options;
  }

  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    cb(null, contextFor(this.material, servername));
  };

  /** Installs new material: the default context via setSecureContext (clients without SNI), the rest via the callback. */
  swap(server: TlsServer, next: TlsMaterial): void {
    server.setSecureContext(next.options);
    this.material = next;
  }

  /**
   * The TLS part of a listener reload, for any server engine: the next config's certificates are loaded now,
   * without touching the live listener. `errors` rejects the reload; `apply` installs them at its commit.
   */
  prepareReload(next: ServerConfig): { errors: string[]; apply: (server: TlsServer) => void } {
    if (next.tls === undefined) return { errors: [], apply: () => undefined };
    let material: TlsMaterial;
    try {
      material = loadTlsMaterial(next.tls);
    } catch (err) {
      if (err instanceof TlsLoadError) return { errors: err.errors, apply: () => undefined };
      throw err;
    }
    return { errors: [], apply: (server) => this.swap(server, material) };
  }
}

/** The Strict-Transport-Security value for `server.hsts`, or null when off. */
export function hstsValue(server: ServerConfig): string | null {
  const h = server.hsts;
  if (h === undefined || server.tls === undefined) return null;
  let v = `max-age=${h.maxAgeS}`;
  if (h.includeSubDomains) v += '; includeSubDomains';
  if (h.preload) v += '; preload';
  return v;
}
