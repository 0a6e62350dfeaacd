/**
 * The fixed-rate (open-loop) load engine in C: scripts/scenario/openloop.c, compiled on first use with the
 * machine's C compiler into the temp directory (keyed by a hash of the source). Same method and result shape as
 * the Node generator in open-loop.ts, which saturated its own core near 20k req/s on a 2-core box: at 50% of the
 * gateway's maximum the Node generator measured itself. When no compiler is present the Node one runs instead.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSamples, writeHdrLog } from './hdr-log.js';
import type { LoaderJob, LoaderOutcome } from './loader-child.js';

/** the C source sits next to this file's TypeScript source; from dist/scripts/scenario/ that is three levels up */
const here = dirname(fileURLToPath(import.meta.url));
const SOURCE = [join(here, 'openloop.c'), resolve(here, '../../../scripts/scenario/openloop.c')].find((p) => existsSync(p)) ?? '';

let binary: string | null | undefined;

/** Path of the compiled generator, or null when it cannot be built here (no cc, not Linux). */
export function openLoopBinary(): string | null {
  if (binary !== undefined) return binary;
  binary = null;
  if (process.platform !== 'linux' || SOURCE === '') return binary;
  const src = readFileSync(SOURCE);
  const out = join(tmpdir(), `ts-gateway-openloop-${createHash('sha256').update(src).digest('hex').slice(0, 12)}`);
  if (!existsSync(out)) {
    try {
      const tmp = `${out}.${process.pid}`;
      execFileSync('cc', ['-O2', '-o', tmp, SOURCE], { stdio: 'pipe' });
      execFileSync('mv', [tmp, out]);
    } catch {
      return binary;
    }
  }
  binary = out;
  return binary;
}

/** The job's requests as raw HTTP/1.1 bytes, each prefixed with its u32 LE length (openloop.c's input). */
function requestsFile(job: LoaderJob, file: string): void {
  const host = new URL(job.url).host;
  const parts: Buffer[] = [];
  for (const r of job.requests) {
    const body = r.body === undefined ? null : Buffer.from(r.body);
    let head = `${r.method} ${r.path} HTTP/1.1\r\nhost: ${host}\r\n`;
    for (const [k, v] of Object.entries(r.headers ?? {})) {
      if (k.toLowerCase() !== 'host' && k.toLowerCase() !== 'content-length') head += `${k}: ${v}\r\n`;
    }
    if (body !== null) head += `content-length: ${body.length}\r\n`;
    const bytes = Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(bytes.length);
    parts.push(len, bytes);
  }
  writeFileSync(file, Buffer.concat(parts));
}

export function runOpenLoopC(job: LoaderJob & { rate: number }, bin: string): Promise<LoaderOutcome> {
  const dir = mkdtempSync(join(tmpdir(), 'openloop-'));
  const file = join(dir, 'requests.bin');
  requestsFile(job, file);
  const u = new URL(job.url);
  const total = job.amount ?? Math.max(1, Math.round(job.rate * (job.durationS ?? 10)));
  const host = u.hostname === 'localhost' ? '127.0.0.1' : u.hostname;
  const samples = job.hdrLog !== undefined ? join(dir, 'samples.bin') : null;
  const args = [host, u.port, String(job.connections), String(job.rate), String(total), String((job.timeoutS ?? 10) * 1000), file, String(job.giveUpMs ?? 0)];
  if (samples !== null) args.push(samples);
  return new Promise((resolvePromise, reject) => {
    const startMs = Date.now();
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`openloop exited ${code}: ${stderr.slice(0, 300)}`);
        const r = JSON.parse(stdout) as LoaderOutcome['result'] & { wallMs: number; cpuUs: number };
        if (samples !== null && job.hdrLog !== undefined) {
          writeHdrLog(readSamples(samples), {
            ...job.hdrLog,
            startMs,
            comments: [
              `openloop (scripts/scenario/openloop.c): ${job.rate} req/s open loop over ${job.connections} connections, latency from each request's due time`,
              `values in microseconds; each line's max in milliseconds; intervals of ${job.hdrLog.intervalS} s by answer time`,
            ],
          });
        }
        resolvePromise({
          startMs,
          endMs: Date.now(),
          cpuUs: r.cpuUs,
          wallMs: r.wallMs,
          result: {
            requests: r.requests,
            durationS: r.durationS,
            bytes: r.bytes,
            latency: r.latency,
            errors: r.errors,
            timeouts: r.timeouts,
            non2xx: r.non2xx,
            status: r.status,
            ...(r.abandoned === true ? { abandoned: true } : {}),
          },
        });
      } catch (err) {
        reject(err as Error);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
