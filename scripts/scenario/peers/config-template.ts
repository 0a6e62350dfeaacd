import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** peer config templates sit next to this file's TypeScript source; from dist/scripts/scenario/peers/ that is four levels up */
const here = dirname(fileURLToPath(import.meta.url));

/** The reviewed config file `name` of scripts/scenario/peers/ (haproxy.cfg, Caddyfile), read from the sources. */
export function readPeerTemplate(name: string): string {
  const file = [join(here, name), resolve(here, '../../../../scripts/scenario/peers', name)].find((p) => existsSync(p));
  if (file === undefined) throw new Error(`peer config template ${name} not found next to ${here}`);
  return readFileSync(file, 'utf8');
}

/** Replaces every @@NAME@@ marker; a marker without a value is an error (a template and its filler out of step). */
export function fillPeerTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/@@([A-Z_]+)@@/g, (_m, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`peer config template: no value for @@${key}@@`);
    return v;
  });
}
