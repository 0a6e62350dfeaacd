import { statSync } from 'node:fs';
import type { ErrorObject } from 'ajv';
import { loadPluginCatalog, validatePluginOptions } from '../plugins/loader.js';
import { resolveConfigPaths } from './paths.js';
import type { GatewayConfig, PluginEntry } from './types.js';
import { schemaErrorObjects, validateConfig, type ValidateOptions } from './validator.js';

/**
 * `--check`: every problem of every layer in one pass, each naming its JSON path. The layers depend on each
 * other (references and route patterns need a schema-valid file, plugin options need the plugin catalog), so
 * validation alone stops at the first failing layer and a file with five mistakes took three runs to clear.
 * Here a file the schema refuses is pruned of what the schema refused (a bad value is dropped, so its default
 * applies; an array entry that cannot be mended is left out), and the later layers run on what is left, their
 * paths mapped back to the file as written. A valid file then gets `dryRun` (plugin modules loaded and initialised,
 * as a reload would): the caller resolves the variants it builds with, which config/ does not know.
 */
export async function checkConfig(raw: unknown, opts: ValidateOptions, dryRun: (config: GatewayConfig) => Promise<string[]>): Promise<string[]> {
  const result = validateConfig(raw, opts);
  if (result.ok) return dryRun(result.value);

  const salvaged = salvage(raw);
  if (salvaged === null) return result.errors;
  const errors = new Set(result.errors);
  if (salvaged.pruned) {
    const later = validateConfig(salvaged.value, opts);
    if (!later.ok) {
      for (const e of later.errors) {
        // an upstream the schema refused still exists in the file: a route naming it is not a second mistake
        const ref = /unknown upstream "(.*)"$/.exec(e);
        if (ref !== null && salvaged.prunedUpstreams.has(ref[1]!)) continue;
        errors.add(salvaged.remap(e));
      }
    }
  }
  for (const e of await pluginEntryErrors(salvaged.value as unknown as GatewayConfig, opts)) errors.add(salvaged.remap(e));
  return [...errors];
}

/**
 * Unknown plugin names and options a plugin's own schema refuses, without initialising anything (the full dry
 * run does that once the rest of the file is valid). Directories that cannot be listed are the file layer's
 * error already (`/pluginDirs/N`); a module in a readable one that fails to load is reported here.
 */
async function pluginEntryErrors(schemaValid: GatewayConfig, opts: ValidateOptions): Promise<string[]> {
  const config = structuredClone(schemaValid);
  if (opts.baseDir !== undefined) resolveConfigPaths(config, opts.baseDir);
  const readable = config.pluginDirs.filter((dir) => {
    try {
      return statSync(dir).isDirectory();
    } catch {
      return false;
    }
  });
  const errors: string[] = [];
  const loaded = await loadPluginCatalog(readable);
  if (!loaded.ok) errors.push(...loaded.errors);
  // A broken module elsewhere does not make a built-in's name unknown: check against what did load.
  const fallback = loaded.ok ? loaded : await loadPluginCatalog([]);
  if (!fallback.ok) return errors;
  const catalog = fallback.value;
  const entries: Array<[PluginEntry, string]> = [
    ...config.plugins.map((p, i): [PluginEntry, string] => [p, `/plugins/${i}`]),
    ...config.routes.flatMap((r, ri) => r.plugins.map((p, i): [PluginEntry, string] => [p, `/routes/${ri}/plugins/${i}`])),
  ];
  for (const [entry, path] of entries) {
    if (!entry.enabled) continue;
    const plugin = catalog.get(entry.name);
    if (plugin === undefined) {
      if (loaded.ok) errors.push(`${path}/name: unknown plugin "${entry.name}" (available: ${[...catalog.keys()].join(', ')})`);
      continue;
    }
    const options = validatePluginOptions(plugin, entry.options, `${path}/options`);
    if (!options.ok) errors.push(...options.errors);
  }
  return errors;
}

interface Salvaged {
  /** schema-valid (defaults applied) */
  value: Record<string, unknown>;
  /** whether anything was dropped */
  pruned: boolean;
  /** names of upstreams dropped whole */
  prunedUpstreams: Set<string>;
  /** maps the JSON path that starts an error message from the pruned copy's indices back to the file's */
  remap: (message: string) => string;
}

/** Enough rounds for nested failures (a bad value, then the object it was required in, then its array). */
const MAX_PRUNE_ROUNDS = 16;

/** A schema-valid copy of `raw` without what the schema refused, or null when nothing usable is left. */
function salvage(raw: unknown): Salvaged | null {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return null;
  let copy: Record<string, unknown>;
  try {
    copy = structuredClone(raw) as Record<string, unknown>;
  } catch {
    return null;
  }
  // Each array that lost entries keeps the file's index of every entry still in it.
  const origin = new WeakMap<unknown[], number[]>();
  const prunedUpstreams = new Set<string>();
  let pruned = false;
  for (let round = 0; round < MAX_PRUNE_ROUNDS; round++) {
    const problems = schemaErrorObjects(copy);
    if (problems.length === 0) return { value: copy, pruned, prunedUpstreams, remap: (m) => remapMessage(m, copy, origin) };
    pruned = true;
    const fromArrays = new Map<unknown[], Set<number>>();
    const fromObjects: Array<[Record<string, unknown>, string]> = [];
    for (const e of problems) {
      const segments = targetOf(e);
      if (segments === null || segments.length === 0) return null; // the document itself is wrong
      if (segments[0] === 'upstreams' && segments.length >= 2) prunedUpstreams.add(segments[1]!);
      const parent = walk(copy, segments.slice(0, -1));
      const key = segments[segments.length - 1]!;
      if (Array.isArray(parent)) {
        const set = fromArrays.get(parent) ?? new Set<number>();
        set.add(Number(key));
        fromArrays.set(parent, set);
      } else if (parent !== null && typeof parent === 'object') {
        fromObjects.push([parent as Record<string, unknown>, key]);
      }
    }
    for (const [obj, key] of fromObjects) delete obj[key];
    for (const [array, indices] of fromArrays) {
      const was = origin.get(array) ?? array.map((_, i) => i);
      const keep = was.filter((_, i) => !indices.has(i));
      const values = array.filter((_, i) => !indices.has(i));
      array.splice(0, array.length, ...values);
      origin.set(array, keep);
    }
  }
  return null;
}

/** The JSON path of the value an error condemns, as segments: the property itself for an unexpected property. */
function targetOf(e: ErrorObject): string[] | null {
  const segments = e.instancePath === '' ? [] : e.instancePath.slice(1).split('/').map(unescapePointer);
  if (e.keyword === 'additionalProperties') return [...segments, (e.params as { additionalProperty: string }).additionalProperty];
  if (e.keyword === 'propertyNames') return [...segments, (e.params as { propertyName: string }).propertyName];
  return segments;
}

function unescapePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

function walk(root: unknown, segments: string[]): unknown {
  let node = root;
  for (const s of segments) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[s];
  }
  return node;
}

/** `/routes/1/upstream: …` of the pruned copy becomes `/routes/3/upstream: …` when entries 1 and 2 were dropped. */
function remapMessage(message: string, root: Record<string, unknown>, origin: WeakMap<unknown[], number[]>): string {
  const m = /^(\/[^:\s]*):/.exec(message);
  if (m === null) return message;
  const segments = m[1]!.slice(1).split('/');
  let node: unknown = root;
  for (let i = 0; i < segments.length; i++) {
    if (node === null || typeof node !== 'object') break;
    const s = segments[i]!;
    if (Array.isArray(node)) {
      const map = origin.get(node);
      const index = Number(s);
      if (map !== undefined && Number.isInteger(index) && map[index] !== undefined) segments[i] = String(map[index]);
      node = node[index];
    } else {
      node = (node as Record<string, unknown>)[unescapePointer(s)];
    }
  }
  return `/${segments.join('/')}${message.slice(m[1]!.length)}`;
}
