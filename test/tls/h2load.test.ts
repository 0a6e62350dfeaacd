import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../core/control/gateway.js';
import { h2loadDuration, isH2LoadScenario, latencyFromLog, parseH2loadOutput } from '../../scripts/scenario/h2load.js';
import { needService } from '../support/services.js';
import { TestCa } from './certs.js';

const execFileP = promisify(execFile);
// A real h2load run against the gateway over TLS (certificates from openssl).
const h2load = needService('h2load');
const openssl = needService('openssl');
const canRun = h2load.available && openssl.available;

describe('scenario h2 mode (h2load)', () => {
  it('finds scenarios/h2load/h2.json by name and leaves autocannon scenarios alone', () => {
    expect(isH2LoadScenario('h2')).toBe(true);
    expect(isH2LoadScenario('smoke')).toBe(false);
    expect(isH2LoadScenario('no-such-scenario')).toBe(false);
  });

  it('passes fractional seconds to h2load as milliseconds (it refuses "0.5")', () => {
    expect(h2loadDuration(10)).toBe('10');
    expect(h2loadDuration(0.5)).toBe('500ms');
    expect(h2loadDuration(1.25)).toBe('1250ms');
  });

  it('computes latency percentiles from the per-request log, after the warmup only', () => {
    const lines = ['1000\t200\t999999999'];
    for (let i = 1; i <= 100; i++) lines.push(`${2000 + i}\t200\t${i * 1000}`);
    const l = latencyFromLog(lines.join('\n') + '\n', 2000);
    expect(l.p50).toBe(51);
    expect(l.p99).toBe(100);
    expect(l.max).toBe(100);
    expect(l.mean).toBeCloseTo(50.5, 6);
  });

  const gwState: { gw?: RunningGateway; ca?: TestCa; dir?: string } = {};
  beforeAll(async () => {
    if (!canRun) return;
    gwState.ca = new TestCa();
    const leaf = gwState.ca.leaf('localhost');
    gwState.gw = await startGateway({
      server: { host: '127.0.0.1', tls: { cert: leaf.cert, key: leaf.key } },
      routes: [{ path: '/ping', response: { body: 'pong' } }],
    });
    gwState.dir = mkdtempSync(join(tmpdir(), 'h2load-'));
  });
  afterAll(async () => {
    await gwState.gw?.close();
    gwState.ca?.cleanup();
    if (gwState.dir) rmSync(gwState.dir, { recursive: true, force: true });
  });

  it.skipIf(!canRun)('parses a real h2load run against the gateway over h2 and over HTTPS/1.1', async () => {
    const gw = gwState.gw!;
    for (const h1 of [false, true]) {
      const log = join(gwState.dir!, `${h1 ? 'h1' : 'h2'}.log`);
      const args = ['-n', '200', '-c', '2', '-m', h1 ? '1' : '4', '--log-file', log, ...(h1 ? ['--h1'] : []), `https://127.0.0.1:${gw.port}/ping`];
      const { stdout } = await execFileP('h2load', args, { timeout: 20_000 });
      const r = parseH2loadOutput(stdout);
      expect(r.requests).toBe(200);
      expect(r.status['2xx']).toBe(200);
      expect(r.errors).toBe(0);
      expect(r.rps).toBeGreaterThan(0);
      expect(stdout).toContain(h1 ? 'Application protocol: http/1.1' : 'Application protocol: h2');
      const lat = latencyFromLog(readFileSync(log, 'utf8'), 0);
      expect(lat.max).toBeGreaterThan(0);
    }
    const p = gw.gateway.exportMetrics().protocols;
    expect(p).toEqual({ h1: 200, h2: 200 });
  });
});
