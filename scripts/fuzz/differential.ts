import { isDeepStrictEqual } from 'node:util';
import { runLlhttp, runOwn, type Message, type Outcome } from './engines.js';
import { generateCase, splits, type FuzzCase } from './generator.js';
import { FLAG_RULES, REJECT_RULES } from './stricter.js';

/**
 * One differential check: the own parser against llhttp on one input, then the own parser against itself on
 * the same input cut into reads at other boundaries. A difference is a failure unless a rule of stricter.ts
 * recognises it.
 */

export interface Verdict {
  /** the rule names that excused a difference (empty: the engines agreed) */
  allowedBy: string[];
  /** why the case failed, or null */
  failure: string | null;
  oursAccepted: boolean;
  llhttpAccepted: boolean;
}

/** Compares what matters of two requests; returns the first differing field, or null. */
export function messageDiff(a: Message, b: Message, withHeaders: boolean): string | null {
  if (a.method !== b.method) return 'method';
  if (a.target !== b.target) return 'target';
  if (a.version !== b.version) return 'version';
  if (!isDeepStrictEqual(a.rawHeaders, b.rawHeaders)) return 'rawHeaders';
  if (withHeaders && !isDeepStrictEqual(a.headers, b.headers)) return 'headers';
  if (a.body !== b.body) return 'body';
  if (!isDeepStrictEqual(a.trailers, b.trailers)) return 'trailers';
  if (a.upgrade !== b.upgrade) return 'upgrade';
  if (a.keepAlive !== b.keepAlive) return 'keepAlive';
  return null;
}

/** The same outcome (own parser, fed in different reads): messages, acceptance, upgrade offset. */
function sameOutcome(a: Outcome, b: Outcome): boolean {
  if (a.accepted !== b.accepted || a.upgradeOffset !== b.upgradeOffset || a.messages.length !== b.messages.length) return false;
  for (let i = 0; i < a.messages.length; i++) if (messageDiff(a.messages[i]!, b.messages[i]!, false) !== null) return false;
  return true;
}

/** ours against llhttp */
export function compare(c: FuzzCase, ours: Outcome, theirs: Outcome, input: Buffer): Verdict {
  const verdict: Verdict = { allowedBy: [], failure: null, oursAccepted: ours.accepted, llhttpAccepted: theirs.accepted };
  const n = Math.min(ours.messages.length, theirs.messages.length);
  for (let i = 0; i < n; i++) {
    const o = ours.messages[i]!;
    const t = theirs.messages[i]!;
    const diff = messageDiff(o, t, true);
    if (diff === null) continue;
    if (diff === 'keepAlive' || diff === 'upgrade') {
      const rule = FLAG_RULES.find((r) => r.flag === diff && r.applies(o, t));
      if (rule !== undefined) {
        // what follows a request ours closes after is not comparable: llhttp parses on, ours refuses
        verdict.allowedBy.push(rule.name);
        return verdict;
      }
    }
    verdict.failure = `request ${i}: ${diff} differs`;
    return verdict;
  }
  if (ours.accepted && theirs.accepted) {
    if (ours.messages.length !== theirs.messages.length) verdict.failure = 'both accept, different number of requests';
    else if (ours.upgradeOffset !== theirs.upgradeOffset) verdict.failure = `upgrade offset ${ours.upgradeOffset} vs ${theirs.upgradeOffset}`;
    return verdict;
  }
  const oursFurther = ours.messages.length > theirs.messages.length || (ours.messages.length === theirs.messages.length && ours.accepted);
  const theirsFurther = theirs.messages.length > ours.messages.length || (ours.messages.length === theirs.messages.length && theirs.accepted);
  if (oursFurther) {
    verdict.failure = `laxer than llhttp (llhttp: ${theirs.error} after ${theirs.messages.length} requests)`;
    return verdict;
  }
  if (theirsFurther) {
    const request = input.toString('latin1', Math.max(0, ours.errorMessageStart));
    const ctx = { maxHeaderSize: c.maxHeaderSize, maxHeadBytes: 2 * c.maxHeaderSize };
    const rule = REJECT_RULES.find((r) => r.applies(request, ctx));
    if (rule === undefined) verdict.failure = `stricter than llhttp for no listed reason (ours: ${ours.error} after ${ours.messages.length} requests)`;
    else verdict.allowedBy.push(rule.name);
  }
  return verdict;
}

export interface CheckOptions {
  /** every two-piece cut for inputs up to this length (default 96) */
  allCutsUpTo?: number;
  /** random cuts for longer inputs (default 8) */
  randomSplits?: number;
}

/** The whole check for one case: against llhttp, then split invariance. */
export function checkCase(c: FuzzCase, opts: CheckOptions = {}): Verdict {
  const input = Buffer.from(c.input, 'latin1');
  const ours = runOwn(input, c.maxHeaderSize);
  const theirs = runLlhttp(input, c.maxHeaderSize);
  const verdict = compare(c, ours, theirs, input);
  if (verdict.failure !== null) return verdict;
  for (const cuts of splits(c.seed, input.length, opts.allCutsUpTo, opts.randomSplits)) {
    const split = runOwn(input, c.maxHeaderSize, cuts, false);
    if (!sameOutcome(ours, split)) {
      verdict.failure = `different outcome when read in pieces cut at ${JSON.stringify(cuts.length > 8 ? `${cuts.length} cuts` : cuts)}`;
      return verdict;
    }
  }
  return verdict;
}

export interface FuzzFailure {
  seed: number;
  input: string;
  maxHeaderSize: number;
  mutations: string[];
  failure: string;
}

export interface FuzzReport {
  inputs: number;
  firstSeed: number;
  bothAccepted: number;
  bothRejected: number;
  /** rule name → cases it excused */
  allowed: Record<string, number>;
  failures: FuzzFailure[];
  ms: number;
}

/** Runs `inputs` cases with seeds firstSeed, firstSeed + 1, … and gathers the verdicts. */
export function runFuzz(
  inputs: number,
  firstSeed: number,
  opts: CheckOptions & { maxFailures?: number; onProgress?: (done: number) => void } = {},
): FuzzReport {
  const started = performance.now();
  const report: FuzzReport = { inputs: 0, firstSeed, bothAccepted: 0, bothRejected: 0, allowed: {}, failures: [], ms: 0 };
  const maxFailures = opts.maxFailures ?? 20;
  for (let i = 0; i < inputs; i++) {
    const seed = (firstSeed + i) >>> 0;
    const c = generateCase(seed);
    const v = checkCase(c, opts);
    report.inputs++;
    if (v.failure !== null) {
      report.failures.push({ seed, input: c.input, maxHeaderSize: c.maxHeaderSize, mutations: c.mutations, failure: v.failure });
      if (report.failures.length >= maxFailures) break;
    } else if (v.allowedBy.length > 0) {
      for (const name of v.allowedBy) report.allowed[name] = (report.allowed[name] ?? 0) + 1;
    } else if (v.oursAccepted && v.llhttpAccepted) report.bothAccepted++;
    else report.bothRejected++;
    if (opts.onProgress !== undefined && (i + 1) % 10000 === 0) opts.onProgress(i + 1);
  }
  report.ms = performance.now() - started;
  return report;
}
