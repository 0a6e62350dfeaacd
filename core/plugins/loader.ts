import { readdirSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import AjvModule from 'ajv';
import { fail, ok, type Result } from '../base/result.js';
import { formatAjvError } from '../config/validator.js';
import { builtinPlugins } from './builtin/index.js';
import type { GatewayPlugin } from './types.js';

const Ajv = AjvModule.default ?? AjvModule;
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const compiledOptionSchemas = new WeakMap<object, ReturnType<typeof ajv.compile>>();

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPlugin = GatewayPlugin<any>;

/** Checks a plugin module's shape; returns the problems (empty when valid). */
export function checkPluginShape(p: unknown, where: string): string[] {
  if (p === null || typeof p !== 'object') return [`${where}: plugin must be an object`];
  const plugin = p as Record<string, unknown>;
  const errors: string[] = [];
  if (typeof plugin.name !== 'string' || plugin.name.length === 0) errors.push(`${where}: plugin "name" must be a non-empty string`);
  if (typeof plugin.version !== 'string' || !/^\d+\.\d+\.\d+/.test(plugin.version)) {
    errors.push(`${where}: plugin "version" must be a semver string`);
  }
  if (typeof plugin.init !== 'function') errors.push(`${where}: plugin "init" must be a function`);
  if (plugin.optionsSchema !== undefined && (plugin.optionsSchema === null || typeof plugin.optionsSchema !== 'object')) {
    errors.push(`${where}: plugin "optionsSchema" must be a JSON Schema object`);
  }
  return errors;
}

/**
 * Validates options against the plugin's own schema (defaults applied to a copy). Errors are prefixed with the
 * config path of the entry, e.g. `/plugins/1/options/limit: must be >= 1`.
 */
export function validatePluginOptions(plugin: AnyPlugin, options: unknown, path: string): Result<Record<string, unknown>> {
  const copy = structuredClone(options ?? {}) as Record<string, unknown>;
  if (plugin.optionsSchema === undefined) return ok(copy);
  let validate = compiledOptionSchemas.get(plugin.optionsSchema);
  if (validate === undefined) {
    validate = ajv.compile(plugin.optionsSchema);
    compiledOptionSchemas.set(plugin.optionsSchema, validate);
  }
  if (validate(copy)) return ok(copy);
  return fail(
    (validate.errors ?? []).map((e) => {
      const msg = formatAjvError(e);
      return `${path}${msg.startsWith('/:') ? msg.slice(1) : msg}`;
    }),
  );
}

/**
 * The plugins available by name: first-party ones plus every module in the configured directories
 * (each `.js`/`.mjs` file default-exports a GatewayPlugin). A directory plugin may shadow a built-in one.
 * Every directory and file is tried, so a failure lists all the unreadable folders and broken modules at once.
 */
export async function loadPluginCatalog(dirs: string[]): Promise<Result<Map<string, AnyPlugin>>> {
  const catalog = new Map<string, AnyPlugin>(Object.entries(builtinPlugins));
  const errors: string[] = [];
  for (const dir of dirs) {
    let files: string[];
    try {
      files = readdirSync(dir)
        .filter((f) => ['.js', '.mjs'].includes(extname(f)))
        .sort();
    } catch (err) {
      errors.push(`/pluginDirs: cannot read ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      continue;
    }
    for (const file of files) {
      const full = resolve(join(dir, file));
      try {
        const st = statSync(full);
        // import() of a FIFO waits for a writer forever, and the loader runs in the primary's reload.
        if (!st.isFile()) {
          errors.push(`${full}: failed to load: not a regular file`);
          continue;
        }
        // The mtime in the URL makes a hot reload pick up an edited plugin file (ESM caches by URL).
        const url = `${pathToFileURL(full).href}?v=${st.mtimeMs}`;
        const mod = (await import(url)) as { default?: unknown; plugin?: unknown };
        const plugin = mod.default ?? mod.plugin;
        const problems = checkPluginShape(plugin, full);
        if (problems.length > 0) errors.push(...problems);
        else catalog.set((plugin as AnyPlugin).name, plugin as AnyPlugin);
      } catch (err) {
        errors.push(`${full}: failed to load: ${(err as Error).message}`);
      }
    }
  }
  return errors.length > 0 ? fail(errors) : ok(catalog);
}
