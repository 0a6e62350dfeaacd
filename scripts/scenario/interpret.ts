/**
 * What the numbers of a run mean, derived from results.json alone (so `npm run report` re-renders it): which side
 * of each measurement was saturated, and which non-2xx answers the traffic mix asked for on purpose.
 */
import type { Results, RunResult, TrafficInfo, VariantSummary } from './results.js';
import type { Answer, LoadRequest } from './traffic.js';

/** A process above this share of its CPU capacity is saturated (the loader: of its one core). */
export const SATURATED_PCT = 90;

type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';

/** The share of the replayed request cycle whose correct answer has each non-2xx status (e.g. 404 for misses). */
export function trafficInfo(requests: LoadRequest[], answers: Record<string, Answer>): TrafficInfo {
  const counts = new Map<number, number>();
  for (const r of requests) {
    const a = answers[`${r.method} ${r.path}`];
    if (a?.kind === 'static' && (a.status < 200 || a.status >= 300)) counts.set(a.status, (counts.get(a.status) ?? 0) + 1);
  }
  const expectedStatusShare: Record<string, number> = {};
  for (const [status, n] of [...counts].sort((a, b) => a[0] - b[0])) expectedStatusShare[String(status)] = n / requests.length;
  return { cycle: requests.length, expectedStatusShare };
}

/** How much CPU the variant's process tree can use: one core per process, at most the cores it is pinned to. */
export function gatewayCapacityPct(r: Results, variant: string): number {
  const spec = r.variants.find((v) => v.id === variant);
  const processes = Math.max(1, spec?.workers ?? 0);
  const p = r.environment.pinning;
  const cores = p.taskset && p.gatewayCpus.length > 0 ? p.gatewayCpus.length : r.environment.cores;
  return Math.min(processes, cores) * 100;
}

export interface Saturation {
  gatewayPct: number | null;
  capacityPct: number;
  gatewaySaturated: boolean;
  loaderPct: number;
  loaderSaturated: boolean;
  /** one line a person can act on */
  text: string;
}

const pct = (x: number) => `${Math.round(x)}%`;

export function saturation(r: Results, s: VariantSummary): Saturation {
  const capacityPct = gatewayCapacityPct(r, s.variant);
  const gatewayPct = s.gatewayCpuPct;
  const gatewaySaturated = gatewayPct !== null && gatewayPct >= (SATURATED_PCT / 100) * capacityPct;
  const loaderSaturated = s.loaderCpuPct >= SATURATED_PCT || s.loaderBoundRuns > s.runs / 2;
  // the row may be the bare-server baseline or a peer: name what was measured, not "gateway" for all
  // (by the variant's kind where the results carry it: h2load scenarios name their rows freely, e.g. "direct")
  const spec = r.variants.find((v) => v.id === s.variant);
  const kind = spec?.kind ?? (s.variant === 'baseline' ? 'baseline' : s.variant.startsWith('peer=') ? 'peer' : 'gateway');
  const who = kind === 'baseline' ? 'bare server' : kind === 'peer' ? (spec?.peer ?? s.variant.slice(5)) : 'gateway';
  const gw = gatewayPct === null ? `${who} CPU not measured` : `${who} at ${pct(gatewayPct)} CPU${capacityPct !== 100 ? ` (of ${capacityPct}%)` : ''}`;
  const ld = `loader at ${pct(s.loaderCpuPct)}`;
  const fixedRate = r.calibration !== undefined || r.scenario.definition.load.rate !== undefined;
  let text: string;
  if (gatewaySaturated && loaderSaturated) text = `${gw}, ${ld}: both saturated — req/s is a lower bound of the gateway's capacity`;
  else if (gatewaySaturated) text = `${gw}, ${ld}: ${who}-bound — req/s is the ${who}'s capacity on its CPU`;
  else if (loaderSaturated) text = `${gw}, ${ld}: loader-bound — req/s is a lower bound, the load generator was the limit`;
  else if (fixedRate) text = `${gw}, ${ld}: neither saturated, as a fixed rate intends — the numbers measure latency at that rate, not capacity`;
  else if (gatewayPct === null) text = `${gw}, ${ld}: loader not saturated — whether the ${who} was is unknown`;
  else {
    const load = r.environment.loadavgBefore[0] ?? 0;
    const busy = load > r.environment.cores * 0.5 ? ` (load average ${load.toFixed(1)} on ${r.environment.cores} cores: other work held the CPUs)` : '';
    text = `${gw}, ${ld}: neither saturated — the numbers measure latency, not capacity${busy}`;
  }
  return { gatewayPct, capacityPct, gatewaySaturated, loaderPct: s.loaderCpuPct, loaderSaturated, text };
}

export interface Non2xx {
  total: number;
  /** non-2xx the mix asked for, per status label ("404", or "4xx" when several codes share a class) */
  expected: Array<{ label: string; count: number; share: number; observedShare: number }>;
  unexpected: number;
}

function classOf(status: string): StatusClass {
  return `${status[0]}xx` as StatusClass;
}

/**
 * Splits a variant's non-2xx responses into the ones the traffic mix intends (its share of the request cycle,
 * within sampling slack: every connection replays the cycle from its own position) and the rest.
 */
export function non2xxBreakdown(r: Results, runs: RunResult[]): Non2xx {
  const total = runs.reduce((s, x) => s + x.non2xx, 0);
  const requests = runs.reduce((s, x) => s + x.requests, 0);
  const shares = r.traffic?.expectedStatusShare ?? {};
  const byClass = new Map<StatusClass, string[]>();
  for (const code of Object.keys(shares)) byClass.set(classOf(code), [...(byClass.get(classOf(code)) ?? []), code]);
  const connections = Math.max(1, r.scenario.definition.load?.connections ?? 1);
  const expected: Non2xx['expected'] = [];
  let explained = 0;
  for (const [cls, codes] of byClass) {
    const share = codes.reduce((s, c) => s + shares[c]!, 0);
    const observed = runs.reduce((s, x) => s + x.status[cls], 0);
    const mean = share * requests;
    const slack = 4 * Math.sqrt(connections * requests * share * (1 - share)) + 5;
    const count = Math.min(observed, Math.round(mean + slack));
    explained += count;
    expected.push({ label: codes.length === 1 ? codes[0]! : cls, count, share, observedShare: requests > 0 ? observed / requests : 0 });
  }
  return { total, expected, unexpected: Math.max(0, total - explained) };
}

export function non2xxText(n: Non2xx): string {
  if (n.total === 0 && n.expected.length === 0) return 'no non-2xx responses';
  const parts = n.expected.map(
    (e) =>
      `expected ${e.label}s: ${e.count.toLocaleString('en-US')} (the mix's miss share, ${(e.share * 100).toFixed(1)}% of requests; ${(e.observedShare * 100).toFixed(1)}% observed)`,
  );
  parts.push(n.unexpected === 0 ? 'unexpected non-2xx: 0' : `**unexpected non-2xx: ${n.unexpected.toLocaleString('en-US')}**`);
  return parts.join('; ');
}

export function runsOf(r: Results, variant: string): RunResult[] {
  return r.runs.filter((x) => x.variant === variant);
}

/** One line per variant: saturation, then non-2xx. */
export function readingLines(r: Results): Array<{ variant: string; saturation: Saturation; non2xx: Non2xx }> {
  return r.summary.variants.map((s) => ({ variant: s.variant, saturation: saturation(r, s), non2xx: non2xxBreakdown(r, runsOf(r, s.variant)) }));
}

/**
 * When a gateway variant answered more req/s than the bare-server baseline, one paragraph on why that is not
 * "negative overhead"; null otherwise.
 */
export function fasterThanBareNote(r: Results): string | null {
  const bare = r.summary.variants.find((v) => v.variant === 'baseline');
  if (bare === undefined) return null;
  const faster = r.summary.variants.filter((v) => v.variant !== 'baseline' && !v.variant.startsWith('peer=') && v.rps.estimate > bare.rps.estimate);
  if (faster.length === 0) return null;
  return (
    `Faster than the bare server (${faster.map((v) => v.variant).join(', ')}): the baseline is not a floor under the gateway's cost. ` +
    'Both answer the same bytes through node:http, and the bare server is the plain way to use it (writeHead with an object, ' +
    'then end with a Buffer: headers validated and joined per response, head and body written as two chunks), while the gateway sends ' +
    'a prepared answer (headers checked once when the config is loaded, a small body joined to the head in one write). ' +
    'When the interval of the ratio includes 1, the difference is also within run-to-run noise.'
  );
}
