import { EventEmitter } from 'node:events';
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync, statSync, watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fail, ok, type Result } from '../base/result.js';
import { locateJsonError } from './json-error.js';
import type { GatewayConfig } from './types.js';
import { validateConfig, type ValidationResult } from './validator.js';

/**
 * Reads, parses and validates a config file. Never throws: unreadable or half-written files are errors too.
 * Relative paths inside it resolve against the file's folder, on the first load and on every reload alike.
 */
export function loadConfigFile(file: string, prepare: (raw: unknown) => unknown = (r) => r): ValidationResult {
  const read = readConfigText(file);
  if (typeof read !== 'string') return fail([`/: cannot read ${file}: ${read.error}`]);
  return parseConfigText(read, file, prepare);
}

/**
 * Largest config file read. A real config is kilobytes; a bigger file is a mistake (a log or a dump copied over
 * it), and the watcher reads it synchronously in the primary on every look and every poll.
 */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The text of a config file, or why it cannot be had. The read is synchronous and runs in the primary (the
 * watcher, SIGHUP, POST /config/reload), so it must never wait: readFileSync on a FIFO blocks until a writer
 * comes, which froze the admin API and every reload for good. The file is opened non-blocking (a FIFO opens at
 * once) and judged by fstat of that very descriptor (no swap between check and read) before a byte is read:
 * only a regular file of at most MAX_CONFIG_BYTES is read. Bytes that are not UTF-8 are refused rather than
 * silently turned into U+FFFD inside some string value.
 */
export function readConfigText(file: string): string | { error: string } {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { error: `not a regular file (${fileKind(st)})` };
    if (st.size > MAX_CONFIG_BYTES) return { error: `${st.size} bytes, more than the ${MAX_CONFIG_BYTES} a config file may have` };
    // Read until EOF, but never past the limit: a file still growing while it is read cannot make this unbounded.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(Math.max(st.size, 4096), MAX_CONFIG_BYTES + 1 - total));
      const got = readSync(fd, chunk, 0, chunk.length, null);
      if (got === 0) break;
      chunks.push(chunk.subarray(0, got));
      total += got;
      if (total > MAX_CONFIG_BYTES) return { error: `more than the ${MAX_CONFIG_BYTES} bytes a config file may have` };
    }
    try {
      return utf8.decode(Buffer.concat(chunks, total));
    } catch {
      return { error: 'not valid UTF-8' };
    }
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  } finally {
    closeSync(fd);
  }
}

function fileKind(st: ReturnType<typeof fstatSync>): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a file';
}

/** A config file's JSON (flag overrides applied) and the folder its relative paths resolve against. */
export interface RawConfigFile {
  raw: unknown;
  baseDir: string;
}

/** Reads and parses a config file without validating it (`--check` runs every validation layer on it itself). */
export function readConfigFile(file: string, prepare: (raw: unknown) => unknown = (r) => r): Result<RawConfigFile> {
  const read = readConfigText(file);
  if (typeof read !== 'string') return fail([`/: cannot read ${file}: ${read.error}`]);
  return parseConfigJson(read, file, prepare);
}

function parseConfigJson(text: string, file: string, prepare: (raw: unknown) => unknown): Result<RawConfigFile> {
  // A byte-order mark (some Windows editors write one) is invisible to the person and fatal to JSON.parse.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    const at = locateJsonError(text);
    if (at === null) return fail([`/: invalid JSON in ${file}: ${(err as Error).message}`]);
    return fail([`/: invalid JSON in ${file} at line ${at.line}, column ${at.column}: ${at.reason}`]);
  }
  return ok({ raw: prepare(raw), baseDir: dirname(resolve(file)) });
}

/** Parses and validates the text of `file` (read by the caller, so it knows exactly which bytes were judged). */
function parseConfigText(text: string, file: string, prepare: (raw: unknown) => unknown): ValidationResult {
  const parsed = parseConfigJson(text, file, prepare);
  if (!parsed.ok) return parsed;
  return validateConfig(parsed.value.raw, { baseDir: parsed.value.baseDir });
}

export interface ConfigWatcherEvents {
  change: [config: GatewayConfig];
  invalid: [errors: string[]];
  /** the file, after a rejection, again holds the config in force: the rejection no longer describes it */
  restored: [];
}

export interface ConfigWatcherOptions {
  /** quiet time after the last event before the file is read: a burst of events (a write in chunks) is one read */
  debounceMs?: number;
  /**
   * Safety-net poll: every this many ms the file is read and compared with what the last look saw; a difference
   * schedules a look like an event would. 0 disables it. See docs/deploy.md for why it exists.
   */
  pollIntervalMs?: number;
}

/**
 * Default poll period. One tick (read a 4 KB file, a realpath and two stats to re-check the watched folders)
 * measured 63 µs of CPU on the 2-core test machine (load average 11): every 5 s that is 0.0013 % of a core,
 * while a lost event still gets applied within seconds.
 */
export const CONFIG_POLL_INTERVAL_MS = 5_000;

/** How many debounce periods a stream of events may postpone a look. */
const MAX_POSTPONE = 10;

/**
 * Watches a config file and emits `change` with each new valid config, `invalid` with the errors of a rejected
 * one (the caller keeps its current config), `restored` when a file rejected earlier again holds the config in
 * force. Three ways a file changes, all of which must be seen:
 *
 * - in-place write: the file's inode is modified;
 * - editor write-and-rename: a new inode is renamed over the name;
 * - Kubernetes ConfigMap volume (kubelet's AtomicWriter): `gateway.json -> ..data/gateway.json` and
 *   `..data -> ..2026_11_29_01_02_03.123`; an update writes a new timestamped folder, renames a new `..data`
 *   symlink over the old one and deletes the old folder. Nothing named `gateway.json` changes at all.
 *
 * So the watcher watches folders, not the file, and takes any event in them as "look again": the file's own
 * folder (renames, kubelet's `..data` swap) and the folder of its real path (writes through a symlink land
 * there). Which folders those are is recomputed on every look, because the real path moves with each kubelet
 * update. A look reads the file and compares it with the last content seen: an event that changed nothing
 * (an editor's swap file, a touch) is not a reload. Bursts are debounced so a half-written file is usually not
 * even read; when it is, it fails to parse and is rejected, and the completed write is the next event.
 *
 * A look acts only when the file's content or its real path differs from what the previous look saw: the
 * gateway's own log file in the config's folder (stdout redirected there) makes events all the time, and each
 * used to re-read, re-reject and re-log the same bad file, the log lines causing the next events. So a bad
 * content is rejected once, however many events follow, until the file changes again.
 */
export class ConfigWatcher extends EventEmitter<ConfigWatcherEvents> {
  /** folder path → its watch and the folder's identity when the watch was set (a replaced folder is re-watched) */
  private readonly watches = new Map<string, { watcher: FSWatcher; identity: string }>();
  private timer: NodeJS.Timeout | null = null;
  private poll: NodeJS.Timeout | null = null;
  private readonly file: string;
  private readonly debounceMs: number;
  private readonly pollIntervalMs: number;
  /** the content of the config in force: an equal read is not a reload */
  private lastText: string | null = null;
  /** the content the last look (event or poll) saw, valid or not: a look acts only when this changes */
  private lastSeen: string | null = null;
  /** the real path (symlinks resolved) the last look saw: a kubelet swap to equal content is noted, not applied */
  private lastReal: string | null = null;
  /** the last content rejected (or the read error, for a file that cannot be read): null since none is pending */
  private rejected: string | null = null;
  /** when the pending look was first scheduled */
  private pendingSince = 0;
  private closed = false;

  constructor(
    file: string,
    /** applied to the parsed JSON before validation (the CLI's flag overrides) */
    private readonly prepare: (raw: unknown) => unknown = (r) => r,
    options: ConfigWatcherOptions = {},
  ) {
    super();
    this.file = resolve(file);
    this.debounceMs = options.debounceMs ?? 100;
    this.pollIntervalMs = options.pollIntervalMs ?? CONFIG_POLL_INTERVAL_MS;
    this.lastText = readText(this.file);
    this.lastSeen = this.lastText;
    this.lastReal = realPath(this.file);
  }

  start(): void {
    this.closed = false;
    this.arm();
    if (this.pollIntervalMs > 0) {
      this.poll = setInterval(() => this.pollOnce(), this.pollIntervalMs);
      this.poll.unref();
    }
  }

  /** Reads and validates the file now without emitting (SIGHUP, POST /config/reload apply the result themselves). */
  read(): ValidationResult {
    const text = readText(this.file);
    // the read error, worded as at startup
    const result = text === null ? loadConfigFile(this.file, this.prepare) : parseConfigText(text, this.file, this.prepare);
    // The caller reports this result itself: the watcher's next look at the same content has nothing to add.
    this.lastSeen = text;
    this.lastReal = realPath(this.file);
    if (result.ok) {
      this.lastText = text;
      this.rejected = null;
    } else {
      this.rejected = rejectionKey(text, result.errors);
    }
    return result;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.poll !== null) clearInterval(this.poll);
    this.timer = null;
    this.poll = null;
    for (const { watcher } of this.watches.values()) watcher.close();
    this.watches.clear();
  }

  /** The folders to watch now: the file's own, and its real path's when a symlink leads elsewhere. */
  private arm(): void {
    if (this.closed) return;
    const wanted = new Map<string, string>();
    for (const dir of new Set([dirname(this.file), realDir(this.file)])) {
      if (dir === null) continue;
      const identity = folderIdentity(dir);
      if (identity !== null) wanted.set(dir, identity);
    }
    for (const [dir, w] of this.watches) {
      if (wanted.get(dir) === w.identity) continue;
      w.watcher.close();
      this.watches.delete(dir);
    }
    for (const [dir, identity] of wanted) {
      if (this.watches.has(dir)) continue;
      let watcher: FSWatcher;
      try {
        watcher = watch(dir, { persistent: false }, () => this.schedule());
      } catch {
        // ENOSPC (the inotify watch limit), a filesystem without notifications: the poll still sees changes.
        continue;
      }
      // A watched folder that is deleted (kubelet's old timestamped folder) ends its watch with an error on
      // some platforms; the next look drops it and watches whatever the real path is now.
      watcher.on('error', () => this.schedule());
      this.watches.set(dir, { watcher, identity });
    }
  }

  /**
   * Debounced look: each event postpones it by debounceMs, but never past MAX_POSTPONE × debounceMs after the
   * first one, so a folder that never goes quiet (a log file written next to the config, a poll shorter than the
   * debounce) cannot postpone a reload forever.
   */
  private schedule(): void {
    if (this.closed) return;
    const now = Date.now();
    if (this.timer !== null) {
      if (now - this.pendingSince >= MAX_POSTPONE * this.debounceMs) return;
      clearTimeout(this.timer);
    } else {
      this.pendingSince = now;
    }
    this.timer = setTimeout(() => this.check(), this.debounceMs);
    this.timer.unref();
  }

  /**
   * Events can be lost (see docs/deploy.md). Content, not stat, is compared: a rewrite of the same size within
   * the filesystem's timestamp granularity keeps size and mtime equal (the "racy git" problem), and was missed
   * that way in this file's tests.
   */
  private pollOnce(): void {
    if (this.timer !== null) return; // a look is already on its way
    if (readText(this.file) !== this.lastSeen) this.schedule();
    else this.arm();
  }

  /**
   * One look: the bytes read here are the ones validated and remembered, so a write landing between two reads
   * can never be remembered as applied while an older content serves.
   */
  private check(): void {
    this.timer = null;
    if (this.closed) return;
    this.arm();
    const text = readText(this.file);
    const real = realPath(this.file);
    // A touch, an unrelated file in the folder (a log written beside the config) or a duplicate event: the file
    // reads as the previous look saw it, so there is nothing new to apply, reject or log.
    const changed = text !== this.lastSeen || real !== this.lastReal || text === null;
    this.lastSeen = text;
    this.lastReal = real;
    if (!changed) return;
    if (text !== null && text === this.lastText) {
      // back to the config in force (a bad save undone): the earlier rejection no longer describes the file
      if (this.rejected !== null) {
        this.rejected = null;
        this.emit('restored');
      }
      return;
    }
    const result = text === null ? loadConfigFile(this.file, this.prepare) : parseConfigText(text, this.file, this.prepare);
    if (result.ok) {
      this.lastText = text;
      this.rejected = null;
      this.emit('change', result.value);
      return;
    }
    // An unreadable file is looked at again on every event (its content cannot be compared); the same error for
    // it is reported once.
    const key = rejectionKey(text, result.errors);
    if (key === this.rejected) return;
    this.rejected = key;
    this.emit('invalid', result.errors);
  }
}

function readText(file: string): string | null {
  const read = readConfigText(file);
  return typeof read === 'string' ? read : null;
}

function realPath(file: string): string | null {
  try {
    return realpathSync(file);
  } catch {
    return null;
  }
}

function realDir(file: string): string | null {
  const real = realPath(file);
  return real === null ? null : dirname(real);
}

/** What makes two rejections the same: the bytes judged, or for a file that could not be read, the error. */
function rejectionKey(text: string | null, errors: string[]): string {
  return text ?? `\0${errors.join('\n')}`;
}

/** device:inode of a folder, so a folder replaced under the same path is told apart from the one watched. */
function folderIdentity(dir: string): string | null {
  try {
    const s = statSync(dir);
    return `${s.dev}:${s.ino}`;
  } catch {
    return null;
  }
}
