import { fasterThanBareNote, non2xxText, readingLines } from './interpret.js';
import { capacityTable } from './report/capacity.js';
import { statisticsText } from './report/markdown.js';
import { detailTable, targetsTable, verdictTable, type Table } from './report/tables.js';
import type { Results } from './results.js';

function plain(s: string): string {
  return s.replace(/`/g, '').replace(/\*\*/g, '');
}

/** Widest cell a terminal table prints: long notes are trimmed (the report has them whole), not a 240-column line. */
const MAX_CELL = 36;

function trim(s: string): string {
  return s.length > MAX_CELL ? `${s.slice(0, MAX_CELL - 1)}…` : s;
}

export function textTable(t: Table): string {
  const rows = [t.headers, ...t.rows].map((r) => r.map((c) => trim(plain(c))));
  const widths = t.headers.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (t.align[i] === 'right' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [plain(t.title), line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** The verdict table for a terminal (falls back to the detail table when there is no reference). */
export function verdictTerminalTable(r: Results): string {
  const v = verdictTable(r);
  const d = detailTable(r);
  const keep = ['variant', 'runs', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'CPU %', 'CPU µs/req', 'loader-bound runs'].map((h) =>
    d.headers.indexOf(h),
  );
  const compact: Table = {
    ...d,
    headers: keep.map((i) => d.headers[i]!),
    align: keep.map((i) => d.align[i]!),
    rows: d.rows.map((row) => keep.map((i) => row[i]!)),
  };
  const t = targetsTable(r);
  const cap = capacityTable(r);
  // The intervals make the verdict table 180 columns wide: the terminal gets the estimates, the report both.
  const noCi = (c: string): string => c.replace(/ \[[^\]]*\]/g, '').replace(' (within noise)', '');
  const narrow =
    v === null ? null : { ...v, title: `${v.title} (intervals in the report)`, headers: v.headers.map(noCi), rows: v.rows.map((row) => row.map(noCi)) };
  const main = narrow !== null ? `${textTable(narrow)}\n\n${textTable(compact)}` : textTable(compact);
  const parts = cap !== null ? [textTable(cap), main] : [main];
  if (r.drift !== undefined) parts.unshift(plain(r.drift.exceeded ? r.drift.note : `drift guard: ${r.drift.note}`));
  for (const c of r.answerChecks ?? []) if (!c.identical) parts.unshift(`NOT TIMED: ${c.variant} answered differently: ${c.mismatch}`);
  if (t !== null) parts.push(textTable(t));
  parts.push(readingText(r));
  return parts.join('\n\n');
}

/** Statistics used, then per variant: what bounded the run, and the non-2xx split into intended and not. */
export function readingText(r: Results): string {
  const lines = ['Reading the numbers', `statistics: ${statisticsText(r)}`];
  for (const l of readingLines(r)) {
    lines.push(`${l.variant}: ${l.saturation.text}`);
    if (l.non2xx.total > 0 || l.non2xx.expected.length > 0) lines.push(`${' '.repeat(l.variant.length)}  ${plain(non2xxText(l.non2xx))}`);
  }
  const faster = fasterThanBareNote(r);
  if (faster !== null) lines.push(faster);
  return lines.join('\n');
}
