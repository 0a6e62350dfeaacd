import { createHash, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';

const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, len: number, opts: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

export interface ApiKeyRecord {
  /** a name for logs and the identity's subject; never the key */
  name: string;
  digest: Buffer;
  scopes: string[];
}

export type ApiKeyConfig = string | { name?: string; sha256: string; scopes?: string[] };

const HEX64 = /^[0-9a-f]{64}$/i;

function record(k: ApiKeyConfig, i: number, where: string): ApiKeyRecord {
  const hex = typeof k === 'string' ? k : k.sha256;
  if (!HEX64.test(hex)) throw new Error(`${where}: key ${i} must be the sha256 hex digest of the key (64 hex digits)`);
  return {
    name: typeof k === 'string' || k.name === undefined ? `key-${hex.slice(0, 8).toLowerCase()}` : k.name,
    digest: Buffer.from(hex, 'hex'),
    scopes: typeof k === 'string' ? [] : (k.scopes ?? []),
  };
}

/**
 * API keys are configured as sha256 digests (a leaked config does not leak keys). A key file holds one digest per
 * line (`#` comments), or `name:digest[:scope scope…]`.
 */
export function loadApiKeys(keys: ApiKeyConfig[], file: string | undefined): ApiKeyRecord[] {
  const out = keys.map((k, i) => record(k, i, 'auth apiKey.keys'));
  if (file !== undefined) {
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const parts = line.split(':');
      if (parts.length === 1) out.push(record(parts[0]!, i, `auth apiKey.file ${file} line ${i + 1}`));
      else
        out.push(
          record({ name: parts[0]!, sha256: parts[1]!, scopes: (parts[2] ?? '').split(/\s+/).filter(Boolean) }, i, `auth apiKey.file ${file} line ${i + 1}`),
        );
    });
  }
  return out;
}

/**
 * Constant time in the presented key and in which stored key matches: every digest is compared, no early exit.
 * (Comparing digests also makes the comparison independent of the key's length.)
 */
export function findApiKey(presented: string, records: readonly ApiKeyRecord[]): ApiKeyRecord | null {
  const digest = createHash('sha256').update(presented).digest();
  let found: ApiKeyRecord | null = null;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (timingSafeEqual(digest, r.digest) && found === null) found = r;
  }
  return found;
}

export type UserConfig = string | { hash: string; scopes?: string[] };

/**
 * Password hashes: bcrypt (`$2a$`/`$2b$`/`$2y$`) or scrypt as `scrypt$N$r$p$<salt b64>$<hash b64>`.
 */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  if (hash.startsWith('$2')) return bcrypt.compare(password, hash);
  if (hash.startsWith('scrypt$')) {
    const [, n, r, p, salt, expected] = hash.split('$');
    const want = Buffer.from(expected ?? '', 'base64');
    if (want.length === 0) return false;
    const N = Number(n);
    const got = await scrypt(password, Buffer.from(salt ?? '', 'base64'), want.length, {
      N,
      r: Number(r),
      p: Number(p),
      maxmem: 256 * N * Number(r) + 1024 * 1024,
    });
    return timingSafeEqual(got, want);
  }
  return false;
}

export function checkPasswordHash(hash: string, where: string): void {
  if (/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) return;
  if (/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/.test(hash)) return;
  throw new Error(`${where}: not a bcrypt ($2b$…) or scrypt (scrypt$N$r$p$salt$hash) hash`);
}
