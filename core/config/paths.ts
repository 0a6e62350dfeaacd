import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { GatewayConfig } from './types.js';

/**
 * Every file path a config can hold: `pluginDirs`, the TLS PEM files (default pair, `ca`, each SNI pair; each
 * upstream's `tls` files) and the
 * built-in auth plugin's `apiKey.file`. A relative one means relative to the config file's folder, as in nginx
 * or haproxy: the gateway must find the same files whichever directory it was started from (a service manager's
 * cwd is `/`), and a hot reload reads them as the first load did. Mutates the (already copied) validated config.
 */
export function resolveConfigPaths(config: GatewayConfig, baseDir: string): void {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  config.pluginDirs = config.pluginDirs.map(abs);
  const tls = config.server.tls;
  if (tls !== undefined) {
    tls.cert = abs(tls.cert);
    tls.key = abs(tls.key);
    if (tls.ca !== undefined) tls.ca = abs(tls.ca);
    for (const pair of Object.values(tls.sni)) {
      pair.cert = abs(pair.cert);
      pair.key = abs(pair.key);
    }
  }
  for (const u of Object.values(config.upstreams)) {
    const t = u.tls;
    if (t === undefined) continue;
    if (t.ca !== undefined) t.ca = abs(t.ca);
    if (t.cert !== undefined) t.cert = abs(t.cert);
    if (t.key !== undefined) t.key = abs(t.key);
  }
  // Plugin options are validated later, by the plugin: only a string in the documented place is touched.
  for (const entry of [...config.plugins, ...config.routes.flatMap((r) => r.plugins)]) {
    if (entry.name !== 'auth') continue;
    const apiKey = entry.options.apiKey as { file?: unknown } | undefined;
    if (apiKey !== null && typeof apiKey === 'object' && typeof apiKey.file === 'string' && apiKey.file !== '') apiKey.file = abs(apiKey.file);
  }
}

/** `/pluginDirs/N: …` for each directory that cannot be listed (the plugin loader would fail on it later, unplaced). */
export function pluginDirErrors(dirs: readonly string[]): string[] {
  const errors: string[] = [];
  dirs.forEach((dir, i) => {
    try {
      if (!statSync(dir).isDirectory()) errors.push(`/pluginDirs/${i}: ${dir} is not a directory`);
    } catch (err) {
      errors.push(`/pluginDirs/${i}: cannot read ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  });
  return errors;
}
