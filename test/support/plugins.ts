import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Writes test-only plugins into a fresh temp dir (for `pluginDirs`) and returns the dir. Each entry is a file
 * name without extension → the module source, written as `<name>.mjs`.
 */
export function writePlugins(plugins: Record<string, string>, prefix = 'gw-plugins-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  for (const [name, source] of Object.entries(plugins)) writeFileSync(join(dir, `${name}.mjs`), source);
  return dir;
}
