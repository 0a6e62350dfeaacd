import type { TLSSocket } from 'node:tls';
import { pino, type Logger } from 'pino';
import type { AccessLogConfig } from '../config/types.js';
import type { RequestState } from '../data/request-state.js';
import { COMBINED_TEMPLATE, TEMPLATE_VARIABLE, type AccessLogField } from './access-log-fields.js';
import { BatchedFile } from './batched-file.js';

/**
 * The access log: one line per finished request, in the fields and format `logging.accessLog` names, to stdout (the
 * gateway's own log stream, so lines never interleave mid-line) or to a file of its own that `reopen()` (SIGUSR2)
 * reopens after logrotate moved it. Built once per config; the request path pays a null check when it is off.
 */

/** What a field is computed from: the finished request's state, the status recorded, and its latency in ms. */
interface Entry {
  ctx: RequestState;
  status: number;
  ms: number;
  /** bytes read from / written to the client connection for this request (-1 when not known: HTTP/2) */
  bytesIn: number;
  bytesOut: number;
}

type FieldValue = string | number | undefined;

/** Every field a format may name. Values that are unknown for a request are left out (JSON) or written `-` (text). */
const FIELDS: Record<AccessLogField, (e: Entry) => FieldValue> = {
  time: () => isoNow(),
  /** Common Log Format time, as nginx's $time_local: 08/Dec/2026:01:02:03 +0000 */
  time_local: () => clfTime(new Date()),
  client: (e) => e.ctx.clientIp || undefined,
  peer: (e) => e.ctx.peerIp || undefined,
  method: (e) => e.ctx.method,
  url: (e) => e.ctx.url,
  path: (e) => e.ctx.pathname,
  /** the request line as nginx's $request: `GET /a?b HTTP/1.1` */
  request: (e) => `${e.ctx.method} ${e.ctx.url} HTTP/${e.ctx.httpVersion}`,
  route: (e) => (e.ctx.route as { name?: string } | null)?.name,
  upstream: (e) => e.ctx.upstreamTarget || undefined,
  status: (e) => e.status,
  /** the catalogue code of the gateway's own error answer (docs/errors.md); absent for any other answer */
  code: (e) => e.ctx.errorCode ?? undefined,
  bytesIn: (e) => (e.bytesIn < 0 ? undefined : e.bytesIn),
  bytesOut: (e) => (e.bytesOut < 0 ? undefined : e.bytesOut),
  ms: (e) => round(e.ms),
  upstreamConnectMs: (e) => (e.ctx.upstreamConnectMs < 0 ? undefined : round(e.ctx.upstreamConnectMs)),
  upstreamFirstByteMs: (e) => (e.ctx.upstreamSentAt === 0 ? undefined : round(e.ctx.upstreamFirstByteMs)),
  upstreamMs: (e) => (e.ctx.upstreamSentAt === 0 ? undefined : round(e.ctx.startTime + e.ms - e.ctx.upstreamSentAt)),
  requestId: (e) => e.ctx.requestId || undefined,
  userAgent: (e) => e.ctx.header('user-agent'),
  referer: (e) => e.ctx.header('referer'),
  tls: (e) => {
    const socket = e.ctx.req?.socket as TLSSocket | undefined;
    return socket !== undefined && socket.encrypted === true ? (socket.getProtocol() ?? undefined) : undefined;
  },
  protocol: (e) => `HTTP/${e.ctx.httpVersion}`,
};

/** Where lines go: the gateway log's stream, or a file of our own. */
interface Sink {
  /** false while nothing would be written (stdout at a log level above info): the line is not even built */
  active(): boolean;
  write(line: string): void;
  reopen(): void;
  close(): void;
}

export class AccessLog {
  private readonly format: (e: Entry) => string;
  private readonly sink: Sink;
  /** fraction of answers below 400 that are logged (errors always are) */
  private readonly sampleSuccess: number;
  /** per client connection: its byte counters at the end of its previous request (HTTP/1.x) */
  private readonly marks = new WeakMap<object, { read: number; written: number }>();
  private readonly entry: Entry = { ctx: null as unknown as RequestState, status: 0, ms: 0, bytesIn: -1, bytesOut: -1 };

  private failed = false;

  constructor(
    readonly config: AccessLogConfig,
    private readonly logger: Logger,
  ) {
    this.sampleSuccess = config.sampleSuccess;
    this.format = config.format === 'json' ? jsonFormat(config.fields) : templateFormat(config.format === 'combined' ? COMBINED_TEMPLATE : config.format);
    this.sink = config.file === '' ? loggerSink(logger) : fileSink(config.file, logger);
  }

  /** One finished request: its line, unless sampled out. Called before the state goes back to the pool. */
  record(ctx: RequestState, status: number, ms: number): void {
    if (status < 400 && this.sampleSuccess < 1 && Math.random() >= this.sampleSuccess) return;
    if (!this.sink.active()) return;
    const e = this.entry;
    e.ctx = ctx;
    e.status = status;
    e.ms = ms;
    try {
      this.countBytes(ctx, e);
      this.sink.write(this.format(e));
    } catch (err) {
      // the request is answered already; its line is lost, the request's accounting (finish) must not be
      if (!this.failed) this.logger.error({ err }, 'access log line could not be written (logged once)');
      this.failed = true;
    } finally {
      e.ctx = null as unknown as RequestState;
    }
  }

  /** After logrotate moved the file: the next line goes to a new file at the configured path. */
  reopen(): void {
    this.sink.reopen();
  }

  close(): void {
    this.sink.close();
  }

  /**
   * Bytes of this request on its connection: the socket's counters now, less where they were when the previous
   * request on the same connection finished (request line, headers and body, as nginx's $request_length and
   * $bytes_sent). HTTP/2 streams share one connection, so they have none.
   */
  private countBytes(ctx: RequestState, e: Entry): void {
    const req = ctx.req;
    const socket = req?.socket;
    if (req === null || socket == null || req.httpVersionMajor >= 2) {
      e.bytesIn = e.bytesOut = -1;
      return;
    }
    const read = socket.bytesRead;
    const written = socket.bytesWritten;
    const mark = this.marks.get(socket);
    if (mark === undefined) {
      e.bytesIn = read;
      e.bytesOut = written;
      this.marks.set(socket, { read, written });
    } else {
      e.bytesIn = read - mark.read;
      e.bytesOut = written - mark.written;
      mark.read = read;
      mark.written = written;
    }
  }
}

function jsonFormat(fields: readonly string[]): (e: Entry) => string {
  const getters = fields.map((f) => FIELDS[f as AccessLogField]);
  const keys = fields.map((f) => JSON.stringify(f));
  return (e) => {
    // msg first: on stdout the lines share the stream with the gateway's own log, and `jq 'select(.msg=="access")'` finds them
    let out = '{"msg":"access"';
    for (let i = 0; i < getters.length; i++) {
      const v = getters[i]!(e);
      if (v === undefined || v === '') continue;
      out += `,${keys[i]!}:${typeof v === 'number' ? String(v) : JSON.stringify(v)}`;
    }
    return out + '}\n';
  };
}

function templateFormat(template: string): (e: Entry) => string {
  // split once: literal, field, literal, field, ..., literal
  const literals: string[] = [];
  const getters: Array<(e: Entry) => FieldValue> = [];
  let at = 0;
  for (const m of template.matchAll(TEMPLATE_VARIABLE)) {
    literals.push(template.slice(at, m.index));
    getters.push(FIELDS[(m[1] ?? m[2]!) as AccessLogField]);
    at = m.index! + m[0].length;
  }
  literals.push(template.slice(at));
  return (e) => {
    let out = literals[0]!;
    for (let i = 0; i < getters.length; i++) {
      const v = getters[i]!(e);
      out += (v === undefined || v === '' ? '-' : typeof v === 'number' ? String(v) : escapeText(v)) + literals[i + 1]!;
    }
    return out + '\n';
  };
}

/** As nginx escapes variables in a text log: `"`, `\` and control bytes as \xHH, so no value can break a line or a quoted field. */
function escapeText(v: string): string {
  // eslint-disable-next-line no-control-regex
  return /["\\\x00-\x1f\x7f]/.test(v) ? v.replace(/["\\\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`) : v;
}

/** stdout: the gateway logger's own destination, so access lines and log lines never cut into each other. */
function loggerSink(logger: Logger): Sink {
  const stream = (logger as unknown as Record<symbol, { write(s: string): unknown } | undefined>)[pino.symbols.streamSym];
  return {
    // the gateway's level applies to its stream (a `silent` gateway writes nothing there)
    active: () => stream !== undefined && logger.isLevelEnabled('info'),
    write(line) {
      stream!.write(line);
    },
    reopen() {},
    close() {},
  };
}

/** A file of its own (core/observe/batched-file.ts), reopened on demand; its failures logged at most once a minute. */
function fileSink(file: string, logger: Logger): Sink {
  let lastError = -Infinity;
  const out = new BatchedFile(file, (err) => {
    const now = Date.now();
    if (now - lastError < ERROR_LOG_INTERVAL_MS) return;
    lastError = now;
    logger.error({ err, file }, 'access log file could not be written; its lines are lost until it can');
  });
  return {
    active: () => true,
    write: (line) => out.append(line),
    reopen: () => out.reopen(),
    close: () => out.close(),
  };
}

const ERROR_LOG_INTERVAL_MS = 60_000;

/** The ISO time of the current millisecond, built once per millisecond (at thousands of lines a second, most share one). */
let isoAt = 0;
let iso = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== isoAt) {
    isoAt = now;
    iso = new Date(now).toISOString();
  }
  return iso;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number): string => (n < 10 ? `0${n}` : String(n));

function clfTime(d: Date): string {
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]!}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}
