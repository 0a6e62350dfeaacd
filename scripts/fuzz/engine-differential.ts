import type { IncomingHttpHeaders } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import type { ServerConfig } from '../../core/config/types.js';
import { validateConfig } from '../../core/config/validator.js';
import type { ServerEngine, ServerRequest, ServerResponse } from '../../core/contracts/server.js';
import { serverEngineFactory } from '../../core/variants.js';
import { compare } from './differential.js';
import { runLlhttp, runOwn } from './engines.js';
import { DEFAULT_MAX_HEADER_SIZE, generateCase, rng, type FuzzCase } from './generator.js';
import { FLAG_RULES, REJECT_RULES, STATUS_RULES } from './stricter.js';

/**
 * The engine-level differential check (issue 18): the same request bytes sent over a real loopback socket to two
 * server engines (variants/server/<name>, driven through their `createServerEngine` with an echo handler, no
 * gateway), cut into writes at random boundaries, and the outcomes compared: the sequence of requests each
 * engine dispatched (method, target, version, raw and joined headers, body bytes, whether the body ended; for an
 * upgrade, the tunnelled bytes), and whether, and with which status class, the engine refused the stream itself.
 *
 * The parser-level check (./differential.ts) proves the own parser frames like llhttp; this one proves the
 * engines around the parsers do too: buffering across reads, pipelining, body streams, upgrades, EOF handling.
 *
 * A difference is a failure unless the candidate engine runs the own parser, its dispatched requests are a prefix
 * of the reference's (it stopped earlier, never framed differently), and a rule of stricter.ts names why its
 * parser refuses (the same classifiers the parser-level check uses, applied through that check's verdict).
 */

/** One request (or upgrade) an engine handed to its handler. */
export interface Dispatch {
  kind: 'request' | 'upgrade';
  method: string;
  target: string;
  version: string;
  rawHeaders: string[];
  headers: IncomingHttpHeaders;
  /** latin1; for an upgrade, every byte the tunnel received (the head's leftover first) */
  body: string;
  /** the body ended (an upgrade: the client closed the tunnel) */
  complete: boolean;
  /** req.rawTrailers once the body ended (what the proxy would relay upstream) */
  rawTrailers: string[];
}

export interface EngineOutcome {
  engine: string;
  dispatched: Dispatch[];
  /** statuses of the final answers the engine wrote itself (the echo handler only ever answers 200) */
  refusals: number[];
  /** echo answers arrived out of dispatch order (a pipelining violation) */
  outOfOrder: boolean;
  /** the connection was still open a while after the client's FIN */
  hung: boolean;
  /** what came back, latin1 (for reports) */
  received: string;
}

/** One connection's record, server side. */
interface Conn {
  dispatched: Dispatch[];
  /** dispatched requests whose echo answer has not finished */
  pending: number;
  lastActivity: number;
  closed: Promise<void>;
}

/** How long the stream must be quiet (no dispatch, no answer, no byte back) before the client sends its FIN. */
const QUIET_MS = 8;
/** How long an engine may keep a connection open after the client's FIN before the case counts as hung. */
const HANG_MS = 3000;

/**
 * A ServerConfig as the validator fills it in, with the case's maxHeaderSize. The generator's size-limit cases
 * use limits below the 1024 the config schema allows (short inputs); engines take the object as it is.
 */
export function engineConfig(maxHeaderSize: number, extra: Record<string, unknown> = {}): ServerConfig {
  const v = validateConfig({ server: { host: '127.0.0.1', ...extra } });
  if (!v.ok) throw new Error(`engine config: ${v.errors.join('; ')}`);
  return { ...v.value.server, maxHeaderSize };
}

/**
 * One engine behind an echo handler on 127.0.0.1: answers each request 200 with its dispatch index once its
 * body has ended, and records what it dispatched per connection (keyed by the client's port).
 */
export class EchoEngine {
  readonly engine: ServerEngine;
  port = 0;
  private readonly conns = new Map<number, Conn>();

  constructor(
    readonly name: string,
    config: ServerConfig,
  ) {
    this.engine = serverEngineFactory(name)(config, {
      request: (req, res) => this.onRequest(req, res),
      upgrade: (req, socket, head) => this.onUpgrade(req, socket, head),
      connection: (socket) => this.onConnection(socket),
    });
  }

  async listen(): Promise<void> {
    const l = this.engine.listener;
    await new Promise<void>((resolve) => l.listen(0, '127.0.0.1', resolve));
    this.port = (l.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.engine.closeAll();
    return new Promise((resolve) => this.engine.listener.close(() => resolve()));
  }

  /** The record of the connection from this client port (registered when the engine accepted it). */
  conn(clientPort: number): Conn | undefined {
    return this.conns.get(clientPort);
  }

  forget(clientPort: number): void {
    this.conns.delete(clientPort);
  }

  private onConnection(socket: Socket): boolean {
    const port = socket.remotePort ?? 0;
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    this.conns.set(port, { dispatched: [], pending: 0, lastActivity: performance.now(), closed });
    socket.on('error', () => undefined);
    return true;
  }

  private record(socket: { remotePort?: number | undefined }, d: Dispatch): Conn | undefined {
    const c = this.conns.get(socket.remotePort ?? 0);
    if (c === undefined) return undefined;
    c.dispatched.push(d);
    c.lastActivity = performance.now();
    return c;
  }

  private onRequest(req: ServerRequest, res: ServerResponse): void {
    const d = head('request', req);
    const c = this.record(req.socket, d);
    const index = c === undefined ? -1 : c.dispatched.length - 1;
    if (c !== undefined) c.pending++;
    const parts: Buffer[] = [];
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      d.body = Buffer.concat(parts).toString('latin1');
      if (c !== undefined) {
        c.pending--;
        c.lastActivity = performance.now();
      }
    };
    req.on('data', (chunk: Buffer) => parts.push(chunk));
    req.on('error', settle);
    req.on('close', settle);
    req.on('end', () => {
      d.complete = true;
      d.rawTrailers = [...(req.rawTrailers ?? [])];
      settle();
      if (res.writableEnded || res.destroyed) return;
      try {
        res.writeHead(200, { 'content-length': '0', 'x-dispatch': String(index) });
        res.end();
      } catch {
        // the connection is already gone: nothing to answer
      }
    });
    res.on('error', () => undefined);
  }

  private onUpgrade(req: ServerRequest, socket: Duplex, headBytes: Buffer): void {
    const d = head('upgrade', req);
    const c = this.record(req.socket, d);
    const parts: Buffer[] = [headBytes];
    socket.on('data', (chunk: Buffer) => parts.push(chunk));
    socket.on('error', () => socket.destroy());
    const done = (): void => {
      d.body = Buffer.concat(parts).toString('latin1');
      if (c !== undefined) c.lastActivity = performance.now();
    };
    socket.on('end', () => {
      d.complete = true;
      done();
      socket.end();
    });
    socket.on('close', done);
  }
}

function head(kind: Dispatch['kind'], req: ServerRequest): Dispatch {
  return {
    kind,
    method: req.method ?? '',
    target: req.url ?? '',
    version: req.httpVersion,
    rawHeaders: [...req.rawHeaders],
    headers: { ...req.headers },
    body: '',
    complete: false,
    rawTrailers: [],
  };
}

/** The status codes of the responses in `received` (status lines at the start of the stream or after CRLF). */
function statuses(received: string): Array<{ status: number; dispatch: number | null }> {
  const out: Array<{ status: number; dispatch: number | null }> = [];
  const re = /(?<=^|\n)HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n/g;
  for (let m = re.exec(received); m !== null; m = re.exec(received)) {
    const d = /(?:^|\r\n)x-dispatch: *(\d+)/i.exec(m[2] ?? '');
    out.push({ status: Number(m[1]), dispatch: d === null ? null : Number(d[1]) });
  }
  return out;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Sends `input` to `echo` over a fresh connection, written in pieces cut at `cuts` (one write per piece, a loop
 * turn between them so the engine sees separate reads), waits until the exchange is quiet, sends FIN, and
 * reports what the engine did with it.
 */
export async function runEngineCase(echo: EchoEngine, input: Buffer, cuts: readonly number[]): Promise<EngineOutcome> {
  const sock = net.connect(echo.port, '127.0.0.1');
  sock.setNoDelay(true);
  const chunks: Buffer[] = [];
  let clientClosed = false;
  let lastByte = performance.now();
  sock.on('data', (c: Buffer) => {
    chunks.push(c);
    lastByte = performance.now();
  });
  sock.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  void closed.then(() => (clientClosed = true));
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const port = sock.localPort!;
  // the engine registers the connection in its 'connection' handler, which may run a turn after ours
  let conn = echo.conn(port);
  for (let i = 0; conn === undefined && i < 100; i++) {
    await tick();
    conn = echo.conn(port);
  }
  let start = 0;
  for (let i = 0; i <= cuts.length && !clientClosed; i++) {
    const end = i < cuts.length ? cuts[i]! : input.length;
    if (end <= start) continue;
    sock.write(input.subarray(start, end));
    start = end;
    await tick();
  }
  // quiet: every dispatched request answered (or broken off) and nothing new for QUIET_MS
  const deadline = performance.now() + HANG_MS;
  while (!clientClosed && performance.now() < deadline) {
    const last = Math.max(lastByte, conn?.lastActivity ?? 0);
    if ((conn?.pending ?? 0) === 0 && performance.now() - last >= QUIET_MS) break;
    await delay(2);
  }
  if (!clientClosed) sock.end();
  const hung = await Promise.race([Promise.all([closed, conn?.closed ?? Promise.resolve()]).then(() => false), delay(HANG_MS).then(() => true)]);
  sock.destroy();
  // the last body 'end' / tunnel 'end' events run in the turns after the close
  await tick();
  await tick();
  echo.forget(port);
  const received = Buffer.concat(chunks).toString('latin1');
  const answers = statuses(received).filter((s) => s.status >= 200);
  const echoes = answers.filter((s) => s.dispatch !== null).map((s) => s.dispatch!);
  return {
    engine: echo.name,
    dispatched: conn?.dispatched ?? [],
    refusals: answers.filter((s) => s.dispatch === null).map((s) => s.status),
    outOfOrder: echoes.some((d, i) => i > 0 && d <= echoes[i - 1]!),
    hung,
    received,
  };
}

/** The first field in which two dispatches differ, or null. */
export function dispatchDiff(a: Dispatch, b: Dispatch): string | null {
  if (a.kind !== b.kind) return 'kind';
  if (a.method !== b.method) return 'method';
  if (a.target !== b.target) return 'target';
  if (a.version !== b.version) return 'version';
  if (!isDeepStrictEqual(a.rawHeaders, b.rawHeaders)) return 'rawHeaders';
  if (!isDeepStrictEqual(a.headers, b.headers)) return 'headers';
  if (a.body !== b.body) return 'body';
  if (a.complete !== b.complete) return 'complete';
  if (!isDeepStrictEqual(a.rawTrailers, b.rawTrailers)) return 'rawTrailers';
  return null;
}

const statusClass = (o: EngineOutcome): string => (o.refusals.length === 0 ? 'none' : `${String(o.refusals[0]).slice(0, 1)}xx`);

export interface EngineVerdict {
  /** why the case failed, or null */
  failure: string | null;
  /** the stricter.ts rules that excused a difference */
  allowedBy: string[];
  /** both engines refused, with the same status class but a different status */
  statusDiffers: boolean;
}

/**
 * Compares the candidate engine with the reference on one case. `ownParser`: the candidate runs the own parser,
 * so where it stops earlier than the reference a stricter.ts rule may excuse it.
 */
export function compareEngines(c: FuzzCase, ref: EngineOutcome, cand: EngineOutcome, ownParser: boolean): EngineVerdict {
  const verdict: EngineVerdict = { failure: null, allowedBy: [], statusDiffers: false };
  for (const o of [ref, cand]) {
    if (o.hung) {
      verdict.failure = `${o.engine}: connection still open ${HANG_MS} ms after the client's FIN`;
      return verdict;
    }
    if (o.outOfOrder) {
      verdict.failure = `${o.engine}: pipelined answers out of order`;
      return verdict;
    }
  }
  let firstDiff = -1;
  let field = '';
  const n = Math.max(ref.dispatched.length, cand.dispatched.length);
  for (let i = 0; i < n && firstDiff === -1; i++) {
    const a = ref.dispatched[i];
    const b = cand.dispatched[i];
    if (a === undefined || b === undefined) {
      firstDiff = i;
      field = a === undefined ? 'extra request' : 'missing request';
    } else {
      const d = dispatchDiff(a, b);
      if (d !== null) {
        firstDiff = i;
        field = d;
      }
    }
  }
  const sameClass = statusClass(ref) === statusClass(cand);
  if (firstDiff === -1 && sameClass) {
    verdict.statusDiffers = !isDeepStrictEqual(ref.refusals, cand.refusals);
    return verdict;
  }
  const what =
    firstDiff === -1
      ? `refusal ${JSON.stringify(ref.refusals)} vs ${JSON.stringify(cand.refusals)}`
      : `request ${firstDiff}: ${field} differs (refusals ${JSON.stringify(ref.refusals)} vs ${JSON.stringify(cand.refusals)})`;
  if (ownParser) {
    const excuse = ownExcuse(c, ref, cand, firstDiff, field);
    if (excuse !== null) {
      verdict.allowedBy.push(...excuse);
      return verdict;
    }
  }
  verdict.failure = `${cand.engine} vs ${ref.engine}: ${what}`;
  return verdict;
}

/** The same request head (everything but the body, whether it ended and the trailers that ended it). */
function sameHead(a: Dispatch, b: Dispatch): boolean {
  const d = dispatchDiff({ ...a, body: '', complete: true, rawTrailers: [] }, { ...b, body: '', complete: true, rawTrailers: [] });
  return d === null;
}

/**
 * The own engine dispatched no request llhttp only refuses after its head (node:http has emitted it by then,
 * to fail it a moment later): the contract says a request the engine cannot parse never reaches `request`.
 */
export const REFUSED_AFTER_HEAD = 'refusedAfterHead (contract: an unparsable request never reaches the handler)';

/**
 * The rules that excuse how the own engine differs from the reference, or null. Either it stopped earlier: it
 * framed every request it dispatched as the reference did (the request it stopped at may have been dispatched
 * with its head alone), and the parser-level verdict on the same bytes names a stricter.ts rule and finds no
 * failure; or the reference dispatched a request it then refused (REFUSED_AFTER_HEAD). Then, where both
 * refused with statuses of different classes, a STATUS_RULES rule must name the status the own engine chose.
 */
function ownExcuse(c: FuzzCase, ref: EngineOutcome, cand: EngineOutcome, firstDiff: number, field: string): string[] | null {
  const names: string[] = [];
  const input = Buffer.from(c.input, 'latin1');
  const ours = runOwn(input, c.maxHeaderSize);
  if (firstDiff !== -1) {
    const a = ref.dispatched[firstDiff];
    const b = cand.dispatched[firstDiff];
    const rest = ref.dispatched.slice(firstDiff);
    const candRefused = cand.refusals.length > 0;
    if (b === undefined && candRefused && ref.refusals.length > 0 && rest.every((d) => !d.complete)) {
      names.push(REFUSED_AFTER_HEAD);
    } else {
      // stopped inside the request's body, or took an HTTP/1.0 Upgrade for a plain request (RFC 9110 §7.8)
      const insideBody = a !== undefined && b !== undefined && sameHead(a, b) && !b.complete && candRefused;
      const http10Upgrade = field === 'kind' && a?.kind === 'upgrade' && b?.kind === 'request' && b.version === '1.0';
      if (b !== undefined && !insideBody && !http10Upgrade) return null;
      if (http10Upgrade) {
        // what follows is not comparable: the reference tunnels it, the own engine reads it as requests
        const rule = FLAG_RULES.find((r) => r.name === 'upgradeIgnoredInHttp10')!;
        return [rule.name];
      }
      const parserVerdict = compare(c, ours, runLlhttp(input, c.maxHeaderSize), input);
      if (parserVerdict.failure !== null) return null;
      if (parserVerdict.allowedBy.length > 0) return parserVerdict.allowedBy;
      // The parser-level verdict found no rule: llhttp there reads an upgrade's body where node:http's server
      // hands it to the tunnel, refuses later in a body where the own parser refused earlier, or fails at the
      // end of input a request the own parser refused at once. Then a stricter.ts rule must recognise the
      // request the own engine refused: before dispatching it, or inside its body with a prefix of the same
      // body passed on.
      if (!candRefused) return null;
      if (insideBody && (ref.refusals.length === 0 || !a.body.startsWith(b.body))) return null;
      if (!insideBody && b !== undefined) return null;
      const request = input.toString('latin1', Math.max(0, ours.errorMessageStart));
      const rule = REJECT_RULES.find((r) => r.applies(request, { maxHeaderSize: c.maxHeaderSize, maxHeadBytes: 2 * c.maxHeaderSize }));
      if (rule === undefined) return null;
      return [rule.name];
    }
  }
  if (statusClass(ref) !== statusClass(cand)) {
    if (ref.refusals.length === 0) return null;
    if (cand.refusals.length === 0) {
      // the own engine closed after a request llhttp keeps alive (a FLAG_RULES rule), and the reference refused
      // what followed; the parser-level verdict on the same bytes says which rule
      const parserVerdict = compare(c, ours, runLlhttp(input, c.maxHeaderSize), input);
      if (parserVerdict.failure !== null || parserVerdict.allowedBy.length === 0) return null;
      return [...names, ...parserVerdict.allowedBy];
    }
    const request = input.toString('latin1', Math.max(0, ours.errorMessageStart));
    const rule = STATUS_RULES.find((r) => r.status === cand.refusals[0] && r.applies(request));
    if (rule === undefined) return null;
    names.push(rule.name);
  }
  return names;
}

/** Where to cut one case into writes: one to four random cuts, or (one case in twenty, short inputs) every byte. */
export function engineCuts(seed: number, length: number): number[] {
  if (length < 2) return [];
  const r = rng(seed ^ 0x2545f491);
  if (length <= 256 && r() < 0.05) return Array.from({ length: length - 1 }, (_, i) => i + 1);
  const cuts = new Set<number>();
  const n = Math.floor(r() * 5);
  for (let i = 0; i < n; i++) cuts.add(1 + Math.floor(r() * (length - 1)));
  return [...cuts].sort((a, b) => a - b);
}

export interface EngineFailure {
  seed: number;
  input: string;
  cuts: number[];
  maxHeaderSize: number;
  mutations: string[];
  failure: string;
  reference: Pick<EngineOutcome, 'dispatched' | 'refusals'>;
  candidate: Pick<EngineOutcome, 'dispatched' | 'refusals'>;
}

export interface EngineFuzzReport {
  reference: string;
  candidate: string;
  inputs: number;
  firstSeed: number;
  /** cases both engines answered without refusing */
  bothAccepted: number;
  bothRefused: number;
  /** both refused, same class, different status */
  statusDiffers: number;
  /** rule name → cases it excused */
  allowed: Record<string, number>;
  failures: EngineFailure[];
  ms: number;
}

export interface EngineFuzzOptions {
  /** cases in flight at once (default 16) */
  concurrency?: number;
  maxFailures?: number;
  onProgress?: (done: number) => void;
}

/**
 * Runs `inputs` generated cases (seeds firstSeed, firstSeed + 1, …) against the reference and the candidate
 * engine. One pair of engines per maxHeaderSize in use, started on demand and closed at the end.
 */
export async function runEngineFuzz(
  reference: string,
  candidate: string,
  inputs: number,
  firstSeed: number,
  opts: EngineFuzzOptions = {},
): Promise<EngineFuzzReport> {
  const started = performance.now();
  const report: EngineFuzzReport = {
    reference,
    candidate,
    inputs: 0,
    firstSeed,
    bothAccepted: 0,
    bothRefused: 0,
    statusDiffers: 0,
    allowed: {},
    failures: [],
    ms: 0,
  };
  const maxFailures = opts.maxFailures ?? 20;
  const ownParser = candidate === 'own';
  const startPair = async (maxHeaderSize: number): Promise<[EchoEngine, EchoEngine]> => {
    const config = engineConfig(maxHeaderSize);
    const a = new EchoEngine(reference, config);
    const b = new EchoEngine(candidate, config);
    await Promise.all([a.listen(), b.listen()]);
    return [a, b];
  };
  // the default limit serves almost every case; the size-limit cases (each its own small limit) get a pair each
  const shared = startPair(DEFAULT_MAX_HEADER_SIZE);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < inputs && report.failures.length < maxFailures) {
      const seed = (firstSeed + next++) >>> 0;
      const c = generateCase(seed);
      const input = Buffer.from(c.input, 'latin1');
      const cuts = engineCuts(seed, input.length);
      const own = c.maxHeaderSize !== DEFAULT_MAX_HEADER_SIZE;
      const [a, b] = own ? await startPair(c.maxHeaderSize) : await shared;
      const [ref, cand] = await Promise.all([runEngineCase(a, input, cuts), runEngineCase(b, input, cuts)]);
      if (own) await Promise.all([a.close(), b.close()]);
      const v = compareEngines(c, ref, cand, ownParser);
      report.inputs++;
      if (v.failure !== null) {
        report.failures.push({
          seed,
          input: c.input,
          cuts,
          maxHeaderSize: c.maxHeaderSize,
          mutations: c.mutations,
          failure: v.failure,
          reference: { dispatched: ref.dispatched, refusals: ref.refusals },
          candidate: { dispatched: cand.dispatched, refusals: cand.refusals },
        });
      } else if (v.allowedBy.length > 0) {
        for (const name of v.allowedBy) report.allowed[name] = (report.allowed[name] ?? 0) + 1;
      } else if (ref.refusals.length === 0) report.bothAccepted++;
      else report.bothRefused++;
      if (v.statusDiffers) report.statusDiffers++;
      if (opts.onProgress !== undefined && report.inputs % 1000 === 0) opts.onProgress(report.inputs);
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency ?? 16 }, worker));
  } finally {
    const [a, b] = await shared;
    await Promise.all([a.close(), b.close()]);
  }
  report.ms = performance.now() - started;
  return report;
}
