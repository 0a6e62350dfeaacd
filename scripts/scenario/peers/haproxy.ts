import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fillPeerTemplate, readPeerTemplate } from './config-template.js';

export interface HaproxyOptions {
  port: number;
  upstreamPort: number;
  /** path prefixes forwarded to the stub ("" = everything); other paths get HAProxy's 404 */
  prefixes: string[];
  /** private directory for the config and pid file */
  dir: string;
}

/** haproxy.cfg (the reviewed template next to this file, tuning notes in it) for one run. */
export function haproxyConfig(o: HaproxyOptions): string {
  const routed = o.prefixes.filter((p) => p !== '');
  const routes =
    routed.length === 0 || o.prefixes.includes('')
      ? ''
      : `  acl routed path_beg ${routed.map((p) => `${p}/`).join(' ')}\n  http-request return status 404 if !routed`;
  return fillPeerTemplate(readPeerTemplate('haproxy.cfg'), { DIR: o.dir, PORT: String(o.port), UPSTREAM_PORT: String(o.upstreamPort), ROUTES: routes });
}

/** Writes the config; returns the haproxy argv: foreground (-db), this config only. */
export function prepareHaproxy(o: HaproxyOptions): string[] {
  mkdirSync(o.dir, { recursive: true });
  const conf = join(o.dir, 'haproxy.cfg');
  writeFileSync(conf, haproxyConfig(o));
  return ['-db', '-f', conf];
}
