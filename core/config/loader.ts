import { EventEmitter } from 'node:events';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fail } from '../result.js';
import { locateJsonError } from './json-error.js';
import type { GatewayConfig } from './types.js';
import { validateConfig, type ValidationResult } from './validator.js';

/**
 * Reads, parses and validates a config file. Never throws: unreadable or half-written files are errors too.
 * Relative paths inside it resolve against the file's folder, on the first load and on every reload alike.
 */
export function loadConfigFile(file: string, prepare: (raw: unknown) => unknown = (r) => r): ValidationResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return fail([`/: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
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
  return validateConfig(prepare(raw), { baseDir: dirname(resolve(file)) });
}

export interface ConfigWatcherEvents {
  change: [config: GatewayConfig];
  invalid: [errors: string[]];
}

/**
 * Watches a config file and emits `change` with each new valid config, `invalid` with the errors of a rejected
 * one (the caller keeps its current config). Watches the directory, not the file: editors and `mv` replace the
 * file's inode, which a file watch would silently lose. Bursts of events (a write in several chunks) are
 * debounced so a half-written file is usually not even read; when it is, it fails to parse and is rejected.
 */
export class ConfigWatcher extends EventEmitter<ConfigWatcherEvents> {
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly file: string;
  private lastText: string | null = null;

  constructor(
    file: string,
    /** applied to the parsed JSON before validation (the CLI's flag overrides) */
    private readonly prepare: (raw: unknown) => unknown = (r) => r,
    private readonly debounceMs = 100,
  ) {
    super();
    this.file = resolve(file);
    try {
      this.lastText = readFileSync(this.file, 'utf8');
    } catch {
      this.lastText = null;
    }
  }

  start(): void {
    const name = basename(this.file);
    this.watcher = watch(dirname(this.file), { persistent: false }, (_event, changed) => {
      if (changed !== null && changed !== name) return;
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = setTimeout(() => this.check(), this.debounceMs);
      this.timer.unref();
    });
    this.watcher.on('error', () => {
      /* the directory vanished; reload by SIGHUP or admin still works */
    });
  }

  /** Reads and validates the file now without emitting (SIGHUP, POST /config/reload apply the result themselves). */
  read(): ValidationResult {
    const result = loadConfigFile(this.file, this.prepare);
    if (result.ok) this.remember();
    return result;
  }

  private remember(): void {
    try {
      this.lastText = readFileSync(this.file, 'utf8');
    } catch {
      /* raced with a rename; the next event re-reads */
    }
  }

  private reload(): ValidationResult {
    const result = loadConfigFile(this.file, this.prepare);
    if (result.ok) {
      this.remember();
      this.emit('change', result.value);
    } else {
      this.emit('invalid', result.errors);
    }
    return result;
  }

  private check(): void {
    let text: string | null;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      text = null;
    }
    // A touch or a duplicate watch event with unchanged content is not a reload.
    if (text !== null && text === this.lastText) return;
    this.reload();
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.watcher?.close();
    this.watcher = null;
  }
}
