/**
 * The README and docs/ as a newcomer uses them: every relative link and anchor resolves, every JSON config
 * passes the same one-pass check as `--check`, every `npm run` script named exists (the harness ones answer
 * --help), the configuration reference lists exactly the schema's fields with its defaults, and no page speaks
 * of issues or project history.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkConfig } from '../../core/config/check.js';
import { dryRun } from '../../core/data/runtime.js';
import { createLogger } from '../../core/observe/logger.js';
import { resolveVariants } from '../../core/variants.js';
import { writeConfig } from '../support/cli.js';

const PAGES = [
  'README.md',
  ...readdirSync('docs')
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const text = (page: string): string => readFileSync(page, 'utf8');
/** Fenced blocks are code, not prose: links and words inside them are not checked as such. */
const prose = (page: string): string =>
  text(page)
    .replace(/```[\s\S]*?```/g, '')
    .replace(/`[^`\n]*`/g, '``');

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, duplicates numbered. */
function anchors(page: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of text(page)
    .replace(/```[\s\S]*?```/g, '')
    .split('\n')) {
    const m = /^#{1,6}\s+(.*)$/.exec(line);
    if (m === null) continue;
    const base = m[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

describe('links', () => {
  it.each(PAGES)('%s: every relative link and anchor resolves', (page) => {
    const broken: string[] = [];
    for (const m of prose(page).matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (/^(https?|mailto):/.test(target)) continue;
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const file = path === '' ? page : resolve(dirname(page), path);
      if (!existsSync(file)) {
        broken.push(`${target}: no such file`);
        continue;
      }
      if (anchor !== undefined && statSync(file).isFile() && file.endsWith('.md') && !anchors(file).has(anchor)) broken.push(`${target}: no such heading`);
    }
    expect(broken).toEqual([]);
  });

  it('every docs page is in the index', () => {
    const index = text('docs/README.md');
    for (const page of PAGES.filter((p) => p.startsWith('docs/') && p !== 'docs/README.md')) expect(index).toContain(`(${page.slice(5)})`);
  });
});

const SECTIONS = new Set(['$schema', 'server', 'admin', 'alerts', 'variants', 'logging', 'upstreams', 'routes', 'plugins', 'pluginDirs']);

/** Every ```json block of a page: a whole config, a plugin entry (checked as a global plugin), or other JSON. */
function jsonBlocks(page: string): Array<{ line: number; config: Record<string, unknown> | null; parses: boolean }> {
  const t = text(page);
  return [...t.matchAll(/```json\n([\s\S]*?)\n```/g)].map((m) => {
    const line = t.slice(0, m.index).split('\n').length;
    let value: unknown;
    try {
      value = JSON.parse(m[1]!);
    } catch {
      try {
        value = JSON.parse(`{${m[1]!}}`); // a section shown on its own: "plugins": [ … ]
      } catch {
        return { line, config: null, parses: false };
      }
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return { line, config: null, parses: true };
    const keys = Object.keys(value);
    if (keys.length > 0 && keys.every((k) => SECTIONS.has(k))) return { line, config: value as Record<string, unknown>, parses: true };
    if (keys.includes('name') && keys.every((k) => ['name', 'enabled', 'options'].includes(k))) return { line, config: { plugins: [value] }, parses: true };
    return { line, config: null, parses: true };
  });
}

describe('examples', () => {
  const logger = createLogger({ level: 'silent', pretty: false });
  it.each(PAGES)(
    '%s: every json block parses, and every config in one passes --check',
    async (page) => {
      const problems: string[] = [];
      for (const block of jsonBlocks(page)) {
        if (!block.parses) problems.push(`line ${block.line}: not JSON`);
        if (block.config === null) continue;
        const errors = await checkConfig(block.config, { baseDir: mkdtempSync(join(tmpdir(), 'gw-docs-')) }, (c) =>
          dryRun(c, resolveVariants(c.variants), logger),
        );
        // TLS examples (listener and upstream) name certificate files of the reader's own: a missing file is all
        // that may be wrong there
        const real = errors.filter((e) => !(/^\/(server|upstreams\/[^/]+)\/tls\//.test(e) && /ENOENT/.test(e)));
        if (real.length > 0) problems.push(`line ${block.line}: ${real.join('; ')}`);
      }
      expect(problems).toEqual([]);
    },
    60_000,
  );

  it("the README's first proxy is a 10-line config the real CLI accepts", () => {
    const first = /```json\n([\s\S]*?)\n```/.exec(text('README.md'))![1]!;
    expect(first.split('\n')).toHaveLength(10);
    const config = JSON.parse(first) as { upstreams?: unknown };
    expect(config.upstreams).toBeDefined();
    const r = spawnSync(process.execPath, ['dist/core/cli.js', '--check', '--config', writeConfig(config)], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/is valid\n$/);
    expect(r.stderr).toBe(''); // no warnings either
  });

  it('the README is a path, not a reference: 100 to 150 lines, none wider than 120 characters', () => {
    const lines = text('README.md').split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(100);
    expect(lines.length).toBeLessThanOrEqual(150);
    expect(lines.filter((l) => l.length > 120)).toEqual([]);
  });
});

describe('commands', () => {
  const scripts = (JSON.parse(text('package.json')) as { scripts: Record<string, string> }).scripts;
  const named = [...new Set(PAGES.flatMap((p) => [...text(p).matchAll(/npm run (?:-s )?([a-z][\w:-]*)/g)].map((m) => m[1]!)))].sort();

  it('every `npm run` script the docs name exists', () => {
    expect(named.filter((n) => scripts[n] === undefined)).toEqual([]);
  });

  it('the test command is what CI runs', () => {
    expect(text('README.md')).toContain('npm test ');
    expect(readFileSync('.ci/run', 'utf8')).toMatch(/npm test\b/);
  });

  // The harness scripts (the ones run through the launcher from dist/scripts); build, lint and the test
  // shortcuts do their work on any argument, so --help is not theirs to answer.
  const harness = named.filter((n) => scripts[n]?.includes('dist/scripts/') === true);
  it.each(harness)('npm run %s -- --help answers with exit 0', (name) => {
    const r = spawnSync('npm', ['run', '-s', name, '--', '--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`npm run ${name}`);
  });
});

describe('configuration reference', () => {
  /** Every field of the schema as `section.field`, `NAME` for a key you choose, `[]` for array entries. */
  function schemaFields(): Map<string, string> {
    const schema = JSON.parse(text('gateway.schema.json')) as Node;
    interface Node {
      properties?: Record<string, Node>;
      additionalProperties?: Node | boolean;
      items?: Node;
      default?: unknown;
    }
    const out = new Map<string, string>();
    const walk = (node: Node, path: string): void => {
      for (const [k, v] of Object.entries(node.properties ?? {})) {
        const p = path === '' ? k : `${path}.${k}`;
        out.set(p, 'default' in v ? `\`${JSON.stringify(v.default)}\`` : '—');
        if (v.properties) walk(v, p);
        if (typeof v.additionalProperties === 'object' && v.additionalProperties.properties) walk(v.additionalProperties, `${p}.NAME`);
        if (v.items?.properties) walk(v.items, `${p}[]`);
      }
    };
    walk(schema, '');
    return out;
  }

  it('docs/configuration.md lists every schema field once, with the schema default', () => {
    const rows = new Map<string, string>();
    for (const m of text('docs/configuration.md').matchAll(/^\| `([^`]+)` \| [^|]*(?:\\\|[^|]*)* \| ([^|]+) \|/gm)) {
      expect(rows.has(m[1]!), `${m[1]} listed twice`).toBe(false);
      rows.set(m[1]!, m[2]!.trim());
    }
    const fields = schemaFields();
    expect([...rows.keys()].sort()).toEqual([...fields.keys()].sort());
    for (const [field, def] of fields) expect(rows.get(field), field).toBe(def);
  });
});

describe('words', () => {
  it.each(PAGES)('%s speaks to users, not of issues or project history', (page) => {
    const t = prose(page);
    expect(t).not.toMatch(/\bissues? #?\d/i);
    expect(t).not.toMatch(/\bthe seed\b/i);
    expect(t).not.toMatch(/\bsession history\b/i);
  });
});
