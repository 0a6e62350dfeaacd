import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INSTALL, onPath } from '../support/services.js';

/**
 * Certificates generated at test time with the openssl CLI (node:crypto cannot sign X.509 on Node 20):
 * one CA and leaf certificates it signs, each a PEM file pair in a temp dir. EC P-256 keeps generation fast.
 */
export const hasOpenssl = onPath('openssl') !== null;

export interface Leaf {
  cert: string;
  key: string;
  /** SHA-256 fingerprint as Node's TLS peer certificate reports it (AA:BB:...) */
  fingerprint256: string;
}

export class TestCa {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  private serial = 1;

  constructor() {
    if (!hasOpenssl) throw new Error(`openssl not installed: TLS tests need it to create certificates (${INSTALL.openssl})`);
    this.dir = mkdtempSync(join(tmpdir(), 'gw-tls-'));
    this.caKey = join(this.dir, 'ca.key');
    this.caCert = join(this.dir, 'ca.pem');
    openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      this.caKey,
      '-out',
      this.caCert,
      '-days',
      '2',
      '-subj',
      '/CN=gateway test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  }

  get caPem(): Buffer {
    return readFileSync(this.caCert);
  }

  /** A leaf for the given DNS names (and 127.0.0.1), signed by this CA; `usage` clientAuth for an mTLS client. */
  leaf(name: string, dnsNames: string[] = [name], usage: 'serverAuth' | 'clientAuth' = 'serverAuth'): Leaf {
    const n = this.serial++;
    const key = join(this.dir, `${name.replace(/[^a-z0-9.-]/gi, '_')}-${n}.key`);
    const csr = join(this.dir, `${n}.csr`);
    const cert = join(this.dir, `${name.replace(/[^a-z0-9.-]/gi, '_')}-${n}.pem`);
    const ext = join(this.dir, `${n}.ext`);
    writeFileSync(ext, `subjectAltName=${[...dnsNames.map((d) => `DNS:${d}`), 'IP:127.0.0.1'].join(',')}\nextendedKeyUsage=${usage}\n`);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
    openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      this.caCert,
      '-CAkey',
      this.caKey,
      '-set_serial',
      String(1000 + n),
      '-days',
      '2',
      '-out',
      cert,
      '-extfile',
      ext,
    ]);
    return { cert, key, fingerprint256: new X509Certificate(readFileSync(cert)).fingerprint256 };
  }

  /**
   * A server leaf signed by this CA whose validity ended in the past (`openssl ca` is the CLI that takes explicit
   * dates; `x509 -days` refuses anything but a future end).
   */
  expiredLeaf(name: string): Leaf {
    const n = this.serial++;
    const key = join(this.dir, `expired-${n}.key`);
    const csr = join(this.dir, `${n}.csr`);
    const cert = join(this.dir, `expired-${n}.pem`);
    const cnf = join(this.dir, `${n}.cnf`);
    writeFileSync(join(this.dir, 'index.txt'), '');
    writeFileSync(join(this.dir, 'serial'), `${(1000 + n).toString(16).padStart(4, '0')}\n`);
    writeFileSync(
      cnf,
      [
        '[ca]',
        'default_ca = test_ca',
        '[test_ca]',
        `database = ${join(this.dir, 'index.txt')}`,
        `new_certs_dir = ${this.dir}`,
        `serial = ${join(this.dir, 'serial')}`,
        'default_md = sha256',
        'policy = any',
        'unique_subject = no',
        '[any]',
        'commonName = supplied',
        '[ext]',
        `subjectAltName = DNS:${name},IP:127.0.0.1`,
        'extendedKeyUsage = serverAuth',
        '',
      ].join('\n'),
    );
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
    openssl([
      'ca',
      '-batch',
      '-notext',
      '-config',
      cnf,
      '-cert',
      this.caCert,
      '-keyfile',
      this.caKey,
      '-in',
      csr,
      '-out',
      cert,
      '-startdate',
      '20200101000000Z',
      '-enddate',
      '20200102000000Z',
      '-extensions',
      'ext',
    ]);
    return { cert, key, fingerprint256: new X509Certificate(readFileSync(cert)).fingerprint256 };
  }

  /** A self-signed pair outside this CA (a client trusting only the CA must refuse it). */
  selfSigned(name: string): Leaf {
    const n = this.serial++;
    const key = join(this.dir, `self-${n}.key`);
    const cert = join(this.dir, `self-${n}.pem`);
    openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=DNS:${name}`,
    ]);
    return { cert, key, fingerprint256: new X509Certificate(readFileSync(cert)).fingerprint256 };
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}
