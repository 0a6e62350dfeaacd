import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRPC_PATHS, GRPC_REPLY, GRPC_REQUEST } from '../../scripts/scenario/grpc-traffic.js';
import { checkH2Answer } from '../../scripts/scenario/h2-answer-check.js';
import { loadH2Scenario } from '../../scripts/scenario/h2load.js';
import { which } from '../../scripts/scenario/peers/index.js';
import { nginxConfig } from '../../scripts/scenario/peers/nginx.js';
import type { Results } from '../../scripts/scenario/results.js';
import { runScenario, type ScenarioRun } from '../../scripts/scenario/runner.js';
import { needService } from '../support/services.js';

// The grpc and upstream-h2 scenarios (scenarios/h2load/) run end to end with h2load; nginx is their peer, skipped
// and reported without its binary (tested below by hiding it from the PATH, whether installed or not).
const h2load = needService('h2load');
const nginx = needService('nginx');
const openssl = needService('openssl');
const canRun = h2load.available && openssl.available;

/** PATH without the directories holding nginx: the runner's view of a machine without it. */
function pathWithoutNginx(): string {
  const path = process.env.PATH ?? '';
  return path
    .split(delimiter)
    .filter((d) => which('nginx', d) === null)
    .join(delimiter);
}

function reportOf(run: ScenarioRun): string {
  return readFileSync(join(run.dir, 'report.md'), 'utf8');
}

function expectAllAnswered(results: Results, ids: string[]): void {
  expect(results.runs.map((r) => r.variant)).toEqual(ids);
  for (const r of results.runs) {
    expect(r.requests, r.variant).toBe(2000);
    expect(r.errors, r.variant).toBe(0);
    expect(r.timeouts, r.variant).toBe(0);
    expect(r.non2xx, r.variant).toBe(0);
    expect(r.gateway, `${r.variant}: CPU sampled`).not.toBeNull();
  }
  expect(results.answerChecks!.map((c) => c.variant)).toEqual(ids);
  for (const c of results.answerChecks!) expect(c, c.variant).toMatchObject({ identical: true, requests: 1 });
  for (const s of results.summary.variants) expect(s.cpuUsPerRequest?.estimate, s.variant).toBeGreaterThan(0);
}

describe('h2load scenario definitions', () => {
  it('a gRPC variant over HTTP/1.1 or to an HTTP/1.1 upstream is refused, naming the JSON path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'grpc-scenario-def-'));
    try {
      const file = join(dir, 'bad.json');
      const base = JSON.parse(readFileSync('scenarios/h2load/grpc.json', 'utf8')) as Record<string, unknown>;
      writeFileSync(
        file,
        JSON.stringify({
          ...base,
          variants: [
            { id: 'direct', protocol: 'h1', via: 'direct' },
            { id: 'gateway', protocol: 'h2c', upstream: 'http1' },
          ],
          baselineVariant: 'direct',
          targets: [{ variant: 'gateway', reference: 'peer=nginx', metric: 'cpu', min: 0.6 }],
        }),
      );
      expect(() => loadH2Scenario(file)).toThrow(
        /\/variants\/0\/protocol: gRPC calls are loaded over h2c[\s\S]*\/variants\/1\/upstream: gRPC needs an HTTP\/2 upstream \(h2c\)[\s\S]*\/targets\/0\/reference: must name a variant/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('nginx as a gRPC peer: HTTP/2 in front, grpc_pass behind, the same keep-alive upstream', () => {
    const conf = nginxConfig({ port: 8081, upstreamPort: 9091, prefixes: [], dir: '/tmp/ngx-g', grpc: true });
    expect(conf).toContain('listen 127.0.0.1:8081 http2;');
    expect(conf).toMatch(/location \/ \{\s*grpc_pass grpc:\/\/stub;\s*\}/);
    expect(conf).toMatch(/upstream stub \{\s*server 127\.0\.0\.1:9091;\s*keepalive 64;/);
    expect(conf).not.toContain('proxy_pass');
  });
});

describe('verify before timing (gRPC)', () => {
  let server: Http2Server;
  let port: number;
  beforeAll(async () => {
    // a service that answers HTTP 200 with the right bytes but fails the call in its trailers: h2load counts it a success
    server = createServer();
    server.on('stream', (stream) => {
      stream.resume();
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '13', 'grpc-message': 'broken' }));
        stream.end(GRPC_REPLY);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('a call that answers 200 with grpc-status 13 is a mismatch, named', async () => {
    const probe = {
      protocol: 'h2c' as const,
      port,
      path: GRPC_PATHS.unary,
      method: 'POST' as const,
      headers: { 'content-type': 'application/grpc', te: 'trailers' },
      body: GRPC_REQUEST,
    };
    const check = await checkH2Answer('broken', probe, { status: 200, grpcStatus: '0', body: GRPC_REPLY });
    expect(check).toEqual({ variant: 'broken', requests: 1, identical: false, mismatch: 'POST /gwtest.Echo/Unary: grpc-status 13, expected 0' });
    expect(await checkH2Answer('lenient', probe, { status: 200, grpcStatus: '13', body: GRPC_REPLY })).toMatchObject({ identical: true });
  });
});

describe.skipIf(!canRun)('grpc scenario end to end (1 repetition × 2,000 calls per variant)', () => {
  let out: string;
  let run: ScenarioRun;
  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'grpc-scenario-'));
    run = await runScenario({ scenario: 'grpc', repetitions: 1, amount: 2000, outDir: out, progress: false });
  }, 120_000);
  afterAll(() => {
    if (out !== undefined) rmSync(out, { recursive: true, force: true });
  });

  it('every contestant answered every unary and streaming call without errors, checked first', () => {
    const ids = ['direct', 'gateway', 'peer=nginx', 'direct/server-stream', 'gateway/server-stream', 'peer=nginx/server-stream'];
    expectAllAnswered(
      run.results,
      ids.filter((id) => nginx.available || !id.startsWith('peer=')),
    );
  });

  it('the report has CPU µs/req beside req/s and judges the nginx target', () => {
    const md = reportOf(run);
    expect(md).toMatch(/\| variant \| req\/s median \[95% CI\] \|.*\| CPU µs\/req \[95% CI\] \|/);
    // the saturation lines name what was measured: the service itself for `direct`, nginx for its rows
    expect(md).toMatch(/\| `direct` \| bare server at \d+% CPU/);
    if (nginx.available) expect(md).toMatch(/\| `peer=nginx\/server-stream` \| nginx at \d+% CPU/);
    const target = run.results.targets!.find((t) => t.variant === 'gateway' && t.reference === 'peer=nginx')!;
    expect(target).toMatchObject({ metric: 'cpu', min: 0.6 });
    if (nginx.available) {
      expect(['met', 'missed']).toContain(target.status);
      expect(target.ratio!.estimate).toBeGreaterThan(0);
      expect(md).toContain(`| \`gateway\` ÷ \`peer=nginx\` (issue 28) | CPU efficiency | ${target.ratio!.estimate.toFixed(3)}`);
    } else {
      expect(target.status).toBe('not run');
    }
  });
});

describe.skipIf(!canRun)('grpc scenario without nginx on the PATH', () => {
  let out: string;
  let run: ScenarioRun;
  const path = process.env.PATH;
  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'grpc-scenario-nonginx-'));
    process.env.PATH = pathWithoutNginx();
    try {
      run = await runScenario({ scenario: 'grpc', repetitions: 1, amount: 2000, only: ['gateway,peer=nginx'], outDir: out, progress: false });
    } finally {
      process.env.PATH = path;
    }
  }, 60_000);
  afterAll(() => {
    if (out !== undefined) rmSync(out, { recursive: true, force: true });
  });

  it('the peer is reported skipped with why, the target "not run", the others measured', () => {
    expectAllAnswered(run.results, ['direct', 'gateway']);
    expect(run.results.skipped).toEqual([{ variant: 'peer=nginx', reason: 'nginx is not on the PATH' }]);
    expect(run.results.targets![0]).toMatchObject({ status: 'not run', note: 'nginx is not on the PATH' });
    const md = reportOf(run);
    expect(md).toContain('peer=nginx skipped: nginx is not on the PATH.');
    expect(md).toMatch(/\| `gateway` ÷ `peer=nginx` \(issue 28\) \| CPU efficiency \|.*not run/);
  });
});

describe.skipIf(!canRun)('upstream-h2 scenario end to end (1 repetition × 2,000 requests per variant)', () => {
  let out: string;
  let run: ScenarioRun;
  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'upstream-h2-scenario-'));
    run = await runScenario({ scenario: 'upstream-h2', repetitions: 1, amount: 2000, outDir: out, progress: false });
  }, 60_000);
  afterAll(() => {
    if (out !== undefined) rmSync(out, { recursive: true, force: true });
  });

  it('the same HTTP/1.1 traffic reached the HTTP/1.1 and the h2c upstream, every answer the upstream body', () => {
    expectAllAnswered(run.results, ['upstream=http1', 'upstream=h2c']);
    const md = reportOf(run);
    expect(md).toMatch(/\| `upstream=h2c` \| [\d,]+ \(n=1, no CI\) \|/);
    expect(md).toContain('CPU µs/req [95% CI]');
  });
});
