import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { ServerRequest, ServerResponse } from '../contracts/server.js';
import type { TrustedProxies } from '../proxy/trust.js';
import { RequestState, type ResponseBody } from './request-state.js';

export type { ResponseBody } from './request-state.js';

/** Set by RequestContext's static block: the one way to reach a handle's private state from outside the class. */
let finishHandle: (ctx: RequestContext) => void;

/**
 * What a plugin's hooks and handlers are given as `ctx`: one request's context. The state behind it is pooled
 * (core/data/request-state.ts) and reused by a later request once this one finishes; this handle is not. When the
 * request finishes the handle lets go of its state: from then on every read gives what an empty context holds
 * (nothing of any request) and every write is ignored, and logged once per place in the code that makes it. So a
 * plugin that keeps `ctx` in a timer or a closure can no longer write into, or read from, whichever request
 * reuses the state.
 *
 * Every member forwards to the state; see RequestState for what each one is.
 */
export class RequestContext {
  #s: RequestState;
  readonly #late: LateWrites;

  constructor(state: RequestState = new RequestState(), late: LateWrites = UNREPORTED) {
    this.#s = state;
    this.#late = late;
  }

  /** The state to write, or null (the write is reported) once the request has finished. */
  #live(member: string): RequestState | null {
    const s = this.#s;
    if (s !== FINISHED) return s;
    this.#late.report(member);
    return null;
  }

  get req(): ServerRequest | null {
    return this.#s.req;
  }
  set req(v: ServerRequest | null) {
    const s = this.#live('req');
    if (s !== null) s.req = v;
  }
  get res(): ServerResponse | null {
    return this.#s.res;
  }
  set res(v: ServerResponse | null) {
    const s = this.#live('res');
    if (s !== null) s.res = v;
  }
  get method(): string {
    return this.#s.method;
  }
  set method(v: string) {
    const s = this.#live('method');
    if (s !== null) s.method = v;
  }
  get url(): string {
    return this.#s.url;
  }
  set url(v: string) {
    const s = this.#live('url');
    if (s !== null) s.url = v;
  }
  get params(): Record<string, string> {
    return this.#s.params;
  }
  set params(v: Record<string, string>) {
    const s = this.#live('params');
    if (s !== null) s.params = v;
  }
  get route(): unknown {
    return this.#s.route;
  }
  set route(v: unknown) {
    const s = this.#live('route');
    if (s !== null) s.route = v;
  }
  get startTime(): number {
    return this.#s.startTime;
  }
  set startTime(v: number) {
    const s = this.#live('startTime');
    if (s !== null) s.startTime = v;
  }
  get statusCode(): number {
    return this.#s.statusCode;
  }
  set statusCode(v: number) {
    const s = this.#live('statusCode');
    if (s !== null) s.statusCode = v;
  }
  get responseHeaders(): OutgoingHttpHeaders | null {
    return this.#s.responseHeaders;
  }
  set responseHeaders(v: OutgoingHttpHeaders | null) {
    const s = this.#live('responseHeaders');
    if (s !== null) s.responseHeaders = v;
  }
  get body(): ResponseBody {
    return this.#s.body;
  }
  set body(v: ResponseBody) {
    const s = this.#live('body');
    if (s !== null) s.body = v;
  }
  /** the headers added with addResponseHeader (flat name, value pairs); read-only outside the core */
  get extraHeaders(): readonly string[] {
    return this.#s.extraHeaders;
  }
  get error(): unknown {
    return this.#s.error;
  }
  set error(v: unknown) {
    const s = this.#live('error');
    if (s !== null) s.error = v;
  }
  get identity(): Record<string, unknown> | null {
    return this.#s.identity;
  }
  set identity(v: Record<string, unknown> | null) {
    const s = this.#live('identity');
    if (s !== null) s.identity = v;
  }
  get upgrade(): boolean {
    return this.#s.upgrade;
  }
  get socket(): Duplex | null {
    return this.#s.socket;
  }
  get upgradeHead(): Buffer | null {
    return this.#s.upgradeHead;
  }
  get requestId(): string {
    return this.#s.requestId;
  }
  set requestId(v: string) {
    const s = this.#live('requestId');
    if (s !== null) s.requestId = v;
  }
  get unbuffered(): boolean {
    return this.#s.unbuffered;
  }
  set unbuffered(v: boolean) {
    const s = this.#live('unbuffered');
    if (s !== null) s.unbuffered = v;
  }
  get trustedProxies(): TrustedProxies | null {
    return this.#s.trustedProxies;
  }
  get halted(): boolean {
    return this.#s.halted;
  }

  /** Stage a complete response (status, headers, body). Hooks call this to answer early (e.g. 401, 429). */
  send(statusCode: number, headers: OutgoingHttpHeaders | null, body: ResponseBody): void {
    const s = this.#live('send()');
    if (s !== null) s.send(statusCode, headers, body);
  }

  /** Add a header to the response, whatever it turns out to be (the staged response's own headers win). */
  addResponseHeader(name: string, value: string): void {
    const s = this.#live('addResponseHeader()');
    if (s !== null) s.addResponseHeader(name, value);
  }

  /**
   * Set a request header for the upstream that the gateway vouches for (an identity, a request id): it replaces
   * any same-named field from the client and survives the client's hop-by-hop removal.
   */
  setUpstreamHeader(name: string, value: string): void {
    const s = this.#live('setUpstreamHeader()');
    if (s !== null) s.setUpstreamHeader(name, value);
  }

  /** This request's value of a plugin's own state (`set`), undefined when none. */
  get(name: string): unknown {
    return this.#s.get(name);
  }

  /** Per-request state for plugins, keyed by plugin name. */
  set(name: string, value: unknown): void {
    const s = this.#live('set()');
    if (s !== null) s.set(name, value);
  }

  get clientIp(): string {
    return this.#s.clientIp;
  }
  get peerIp(): string {
    return this.#s.peerIp;
  }
  get peerIsTrustedProxy(): boolean {
    return this.#s.peerIsTrustedProxy;
  }
  header(name: string): string | undefined {
    return this.#s.header(name);
  }
  get requestHeaders(): IncomingHttpHeaders {
    return this.#s.requestHeaders;
  }
  get httpVersion(): string {
    return this.#s.httpVersion;
  }
  get secure(): boolean {
    return this.#s.secure;
  }
  get requestBody(): Readable | null {
    return this.#s.requestBody;
  }
  get pathname(): string {
    return this.#s.pathname;
  }
  get search(): string {
    return this.#s.search;
  }

  static {
    finishHandle = (ctx) => {
      ctx.#s = FINISHED;
    };
  }
}

/**
 * Reports writes through a handle whose request has finished: once per place in the code (the first stack frame
 * outside this module), so a careless plugin's timer firing per request logs one line, not one per request.
 */
export class LateWrites {
  private readonly seen = new Set<string>();
  /** late writes ignored (every one, not just the logged ones) */
  count = 0;
  constructor(private readonly logger: Logger | null) {}

  report(member: string): void {
    this.count++;
    if (this.logger === null) return;
    const at = callerOutsideContext();
    const file = fileOf(at);
    if (this.seen.has(file)) return;
    this.seen.add(file);
    this.logger.warn({ member, at }, 'plugin code wrote to a request context after its request had finished (a ctx kept past its hook); the write was ignored');
  }
}

const UNREPORTED = new LateWrites(null);

/** The state every finished handle reads: an empty context nobody writes (the handle refuses every write). */
const FINISHED = new RequestState();

/**
 * The handle plugins are given for `state`'s request, made on first use. The core calls this wherever plugin code
 * is about to run; a request that runs none (a static route without hooks) allocates no handle.
 */
export function handleOf(state: RequestState, late: LateWrites): RequestContext {
  const h = state.handle;
  if (h !== null) return h;
  return (state.handle = new RequestContext(state, late));
}

/** The request is over: its handle (if it made one) lets go of the state, which may now be reused. */
export function finishContext(state: RequestState): void {
  const h = state.handle;
  if (h !== null) finishHandle(h);
}

/** The first stack frame outside this module (`at fn (file:line:col)`): where the late write was made. */
function callerOutsideContext(): string {
  const stack = new Error().stack ?? '';
  for (const line of stack.split('\n').slice(1)) if (!line.includes(THIS_FILE)) return line.trim().replace(/^at /, '');
  return 'unknown';
}

/** The module of a stack frame (its location without line and column): one plugin's file. */
function fileOf(frame: string): string {
  const m = /\(?([^()\s]+?)(?::\d+)?(?::\d+)?\)?$/.exec(frame);
  return m?.[1] ?? frame;
}

const THIS_FILE = new URL(import.meta.url).pathname.replace(/\.[jt]s$/, '');
