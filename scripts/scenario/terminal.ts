import type { Results } from './results.js';
import { detailTable, targetsTable, verdictTable, type Table } from './report/tables.js';

function plain(s: string): string {
  return s.replace(/`/g, '').replace(/\*\*/g, '');
}

export function textTable(t: Table): string {
  const rows = [t.headers, ...t.rows].map((r) => r.map(plain));
  const widths = t.headers.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (t.align[i] === 'right' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [plain(t.title), line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** The verdict table for a terminal (falls back to the detail table when there is no reference). */
export function verdictTerminalTable(r: Results): string {
  const v = verdictTable(r);
  const d = detailTable(r);
  const compact: Table = {
    ...d,
    headers: d.headers.slice(0, 9).concat(d.headers.slice(14, 15)),
    align: d.align.slice(0, 9).concat(d.align.slice(14, 15)),
    rows: d.rows.map((row) => row.slice(0, 9).concat(row.slice(14, 15))),
  };
  const t = targetsTable(r);
  const main = v !== null ? `${textTable(v)}\n\n${textTable(compact)}` : textTable(compact);
  return t !== null ? `${main}\n\n${textTable(t)}` : main;
}
