import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoaderJob, LoaderOutcome } from './loader-child.js';

/**
 * wrk as the load engine: a C load generator costs a fraction of autocannon's CPU per request, so on a 2-core
 * machine one loader core can outrun a Node server that has the other core (autocannon saturates its core near
 * the bare-server rate, and the run then measures the loader). The request mix is replayed by a Lua script,
 * round-robin over the runner's pre-generated request list, exactly like autocannon's `requests` array; a Lua
 * `response` hook counts status classes (it costs wrk a little CPU per response, still far below autocannon's).
 */
export const wrkAvailable: boolean = spawnSync('wrk', ['--version']).error === undefined;

/** wrk replays fixed-duration, closed-loop runs without pipelining; anything else stays with autocannon. */
export function wrkCanRun(job: { rate?: number; amount?: number; pipelining: number }): boolean {
  return wrkAvailable && job.rate === undefined && job.amount === undefined && job.pipelining === 1;
}

function lua(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
}

function script(job: LoaderJob, out: string): string {
  const entries = job.requests.map((r) => {
    const headers = Object.entries(r.headers ?? {})
      .map(([k, v]) => `[${lua(k)}]=${lua(v)}`)
      .join(',');
    return `{${lua(r.method)},${lua(r.path)},{${headers}},${r.body === undefined ? 'nil' : lua(r.body)}}`;
  });
  return `
local specs = {${entries.join(',\n')}}
local reqs = {}
local i = 0
local threads = {}
c3, c4, c5 = 0, 0, 0
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body)
  if status >= 500 then c5 = c5 + 1 elseif status >= 400 then c4 = c4 + 1 elseif status >= 300 then c3 = c3 + 1 end
end
function init(args)
  for k, s in ipairs(specs) do reqs[k] = wrk.format(s[1], s[2], s[3], s[4]) end
end
function request()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
function done(summary, latency, requests)
  local f = io.open(${lua(out)}, "w")
  local e = summary.errors
  local t3, t4, t5 = 0, 0, 0
  for _, t in ipairs(threads) do t3 = t3 + t:get("c3"); t4 = t4 + t:get("c4"); t5 = t5 + t:get("c5") end
  f:write(string.format('{"requests":%d,"durationUs":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"c3":%d,"c4":%d,"c5":%d,"mean":%f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout, t3, t4, t5,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
  f:close()
end
`;
}

/** CPU (µs) of this process's waited-for children: wrk's own CPU once it has exited. */
function childrenCpuUs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // after the comm field: index 13 = cutime, 14 = cstime (clock ticks, 100 per second on Linux)
  return (Number(fields[13]) + Number(fields[14])) * 10_000;
}

export function runWrk(job: LoaderJob): Promise<LoaderOutcome> {
  const dir = mkdtempSync(join(tmpdir(), 'wrk-'));
  const out = join(dir, 'result.json');
  const file = join(dir, 'mix.lua');
  writeFileSync(file, script(job, out));
  const durationS = Math.max(1, Math.round(job.durationS ?? 1));
  const args = ['-t', '1', '-c', String(job.connections), '-d', `${durationS}s`, '--timeout', `${job.timeoutS ?? 10}s`, '-s', file, job.url];
  return new Promise((resolve, reject) => {
    const cpu0 = childrenCpuUs();
    const t0 = performance.now();
    const startMs = Date.now();
    const child = spawn('wrk', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`wrk exited ${code}: ${stderr.slice(0, 300)}`);
        const r = JSON.parse(readFileSync(out, 'utf8')) as Record<string, number>;
        const ms = (us: number): number => us / 1000;
        const non2xx = r.c3! + r.c4! + r.c5!;
        resolve({
          startMs,
          endMs: Date.now(),
          cpuUs: childrenCpuUs() - cpu0,
          wallMs: performance.now() - t0,
          result: {
            requests: r.requests!,
            durationS: r.durationUs! / 1e6,
            bytes: r.bytes!,
            latency: { mean: ms(r.mean!), p50: ms(r.p50!), p90: ms(r.p90!), p99: ms(r.p99!), p999: ms(r.p999!), max: ms(r.max!) },
            errors: r.connect! + r.read! + r.write!,
            timeouts: r.timeout!,
            non2xx,
            status: { '1xx': 0, '2xx': r.requests! - non2xx, '3xx': r.c3!, '4xx': r.c4!, '5xx': r.c5! },
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
