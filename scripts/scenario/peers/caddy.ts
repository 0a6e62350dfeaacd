import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fillPeerTemplate, readPeerTemplate } from './config-template.js';

export interface CaddyOptions {
  port: number;
  upstreamPort: number;
  /** path prefixes forwarded to the stub ("" = everything); other paths get a 404 */
  prefixes: string[];
  /** private directory for the Caddyfile and Caddy's data/config homes */
  dir: string;
}

/** The Caddyfile (the reviewed template next to this file, tuning notes in it) for one run. */
export function caddyConfig(o: CaddyOptions): string {
  const all = o.prefixes.length === 0 || o.prefixes.includes('');
  const matcher = all ? '*' : o.prefixes.map((p) => `${p}/*`).join(' ');
  const routes = [
    `\t@routed path ${matcher}`,
    '\thandle @routed {',
    `\t\treverse_proxy 127.0.0.1:${o.upstreamPort} {`,
    '\t\t\ttransport http {',
    '\t\t\t\tkeepalive 65s',
    '\t\t\t\tkeepalive_idle_conns_per_host 64',
    '\t\t\t}',
    '\t\t}',
    '\t}',
  ].join('\n');
  return fillPeerTemplate(readPeerTemplate('Caddyfile'), { PORT: String(o.port), ROUTES: routes });
}

/**
 * Writes the Caddyfile; returns the caddy argv and the environment it needs: Caddy keeps its data and config
 * under XDG_DATA_HOME / XDG_CONFIG_HOME (or HOME), which point into `dir` so a run leaves nothing behind.
 */
export function prepareCaddy(o: CaddyOptions): { args: string[]; env: Record<string, string> } {
  mkdirSync(o.dir, { recursive: true });
  const conf = join(o.dir, 'Caddyfile');
  writeFileSync(conf, caddyConfig(o));
  return {
    args: ['run', '--config', conf, '--adapter', 'caddyfile'],
    env: { XDG_DATA_HOME: join(o.dir, 'data'), XDG_CONFIG_HOME: join(o.dir, 'config'), HOME: o.dir },
  };
}
