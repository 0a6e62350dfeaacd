import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import {
  checkServerIdentity,
  createSecureContext,
  type ConnectionOptions,
  type PeerCertificate,
  type SecureContext,
  type SecureContextOptions,
} from 'node:tls';
import { TlsLoadError } from '../base/errors.js';
import type { UpstreamConfig, UpstreamTlsConfig } from '../config/types.js';

/**
 * The TLS material of one upstream for one config generation: the PEM files of `upstreams.NAME.tls` read and
 * parsed into one secure context shared by every target's connections. A config reload builds new material (and
 * new connection pools) before the old generation is retired, so a renewed certificate on disk is used by the
 * next connection and a broken one rejects the reload, exactly as for the listener's certificates (core/base/tls.ts).
 */
export interface UpstreamTlsMaterial {
  readonly secureContext: SecureContext;
  /** SNI name and the name checked in the upstream's certificate; undefined: the target's own host name */
  readonly servername: string | undefined;
  readonly verify: boolean;
  /** notAfter of the configured client certificate (ms epoch), or null without one */
  readonly clientCertNotAfter: number | null;
}

/** RFC 6901 escaping of one JSON-pointer segment (upstream names are free-form). */
function seg(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** A PEM file's bytes, or a message naming the JSON path and what is wrong with the file. */
function readPem(path: string, pointer: string, errors: string[]): Buffer | null {
  try {
    if (statSync(path).isDirectory()) {
      errors.push(`${pointer}: ${path} is a directory, not a PEM file`);
      return null;
    }
    const pem = readFileSync(path);
    if (!pem.includes('-----BEGIN ')) {
      errors.push(`${pointer}: ${path} is not a PEM file (no "-----BEGIN" line)`);
      return null;
    }
    return pem;
  } catch (err) {
    errors.push(`${pointer}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    return null;
  }
}

/** Every certificate of a PEM bundle, parsed (a bundle with a broken one is an error). */
function parseCertificates(pem: Buffer, pointer: string, errors: string[]): X509Certificate[] {
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    errors.push(`${pointer}: no "BEGIN CERTIFICATE" block in the PEM file`);
    return [];
  }
  const out: X509Certificate[] = [];
  for (const b of blocks) {
    try {
      out.push(new X509Certificate(b));
    } catch (err) {
      errors.push(`${pointer}: invalid certificate (${(err as Error).message})`);
      return [];
    }
  }
  return out;
}

/** Reads and parses the files of `upstreams.NAME.tls`; throws TlsLoadError naming each problem with its JSON path. */
export function loadUpstreamTls(name: string, tls: UpstreamTlsConfig): UpstreamTlsMaterial {
  const at = `/upstreams/${seg(name)}/tls`;
  const errors: string[] = [];
  const o: SecureContextOptions = { minVersion: tls.minVersion };
  if (tls.ca !== undefined) {
    const ca = readPem(tls.ca, `${at}/ca`, errors);
    if (ca !== null && parseCertificates(ca, `${at}/ca`, errors).length > 0) o.ca = ca;
  }
  let clientCertNotAfter: number | null = null;
  if (tls.cert !== undefined && tls.key !== undefined) {
    const cert = readPem(tls.cert, `${at}/cert`, errors);
    const key = readPem(tls.key, `${at}/key`, errors);
    if (cert !== null && key !== null) {
      const chain = parseCertificates(cert, `${at}/cert`, errors);
      if (chain.length > 0) {
        clientCertNotAfter = Date.parse(chain[0]!.validTo);
        o.cert = cert;
        o.key = key;
      }
    }
  }
  let secureContext: SecureContext | null = null;
  if (errors.length === 0) {
    try {
      // parses the key and checks it belongs to the certificate
      secureContext = createSecureContext(o);
    } catch (err) {
      errors.push(`${at}: invalid certificate/key (${(err as Error).message})`);
    }
  }
  if (secureContext === null) throw new TlsLoadError(errors);
  return { secureContext, servername: tls.servername, verify: tls.verify, clientCertNotAfter };
}

/** Every upstream's TLS file problem (called by the config validator: --check, startup and reload see them). */
export function upstreamTlsConfigErrors(upstreams: Record<string, UpstreamConfig>): string[] {
  const errors: string[] = [];
  for (const [name, u] of Object.entries(upstreams)) {
    if (u.tls === undefined) continue;
    try {
      loadUpstreamTls(name, u.tls);
    } catch (err) {
      if (err instanceof TlsLoadError) errors.push(...err.errors);
      else throw err;
    }
  }
  return errors;
}

/** Receives the peer certificate's notAfter (ms epoch) each time a connection verified it. */
export type PeerCertificateSink = (notAfter: number) => void;

/**
 * The tls.connect options of one target: the upstream's secure context, SNI and the certificate name check
 * against `servername` (the configured one, else the target's host name: for an address found by DNS, the name
 * that was resolved), and a hook that reports the certificate each handshake verified (its expiry is a metric).
 */
export function targetTlsOptions(material: UpstreamTlsMaterial | null, hostname: string | undefined, onPeer: PeerCertificateSink): ConnectionOptions {
  const servername = material?.servername ?? hostname;
  const o: ConnectionOptions = {
    rejectUnauthorized: material?.verify ?? true,
    checkServerIdentity: (host: string, cert: PeerCertificate): Error | undefined => {
      const notAfter = Date.parse(cert.valid_to);
      if (Number.isFinite(notAfter)) onPeer(notAfter);
      return checkServerIdentity(host, cert);
    },
  };
  if (material !== null) o.secureContext = material.secureContext;
  // an IP address is no SNI name (RFC 6066): the certificate is then checked for that IP
  if (servername !== undefined && isIP(servername) === 0) o.servername = servername;
  return o;
}

const DAY_MS = 86_400_000;

/** Days from now until `notAfter` (negative once expired), to two decimals: the alert metric's value. */
export function daysUntil(notAfter: number, now: number): number {
  return Math.round(((notAfter - now) / DAY_MS) * 100) / 100;
}
