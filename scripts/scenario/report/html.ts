import type { Results } from '../results.js';
import { capacityTable, probesTable } from './capacity.js';
import { CHARTS, statisticsText } from './markdown.js';
import { detailTable, environmentTable, readingTable, runsTable, targetsTable, verdictTable, type Table } from './tables.js';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The tables' cells use Markdown's `code` and **bold**; render just those two. */
function inline(s: string): string {
  return esc(s)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
}

function table(t: Table): string {
  const head = t.headers.map((h, i) => `<th style="text-align:${t.align[i]}">${inline(h)}</th>`).join('');
  const body = t.rows.map((r) => `<tr>${r.map((c, i) => `<td style="text-align:${t.align[i]}">${inline(c)}</td>`).join('')}</tr>`).join('\n');
  return `<h2>${inline(t.title)}</h2>\n${t.note !== undefined ? `<p class="note">${inline(t.note)}</p>\n` : ''}<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

/** report.html: self-contained (charts embedded as data: URIs), so it can be mailed or opened from an archive. */
export function renderHtml(r: Results, charts: Partial<Record<keyof typeof CHARTS, Buffer>>): string {
  const verdicts = verdictTable(r);
  const chartHtml = (Object.keys(CHARTS) as Array<keyof typeof CHARTS>)
    .filter((k) => charts[k] !== undefined)
    .map(
      (k) => `<figure><img alt="${k}" src="data:image/png;base64,${charts[k]!.toString('base64')}"><figcaption>${esc(CHARTS[k].title)}</figcaption></figure>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Scenario ${esc(r.scenario.name)} — ${esc(r.startedAt)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; }
th { background: #f3f3f3; }
code { background: #f5f5f5; padding: 0 0.2rem; }
.note { color: #555; font-size: 0.9rem; max-width: 60rem; }
figure { margin: 1rem 0; }
img { max-width: 100%; border: 1px solid #ddd; }
</style>
</head>
<body>
<h1>Scenario <code>${esc(r.scenario.name)}</code></h1>
<p>${esc(r.scenario.description)}</p>
<p>Statistics: ${esc(statisticsText(r))}.</p>
<h2>Caveats</h2>
<ul>
${r.caveats.map((c) => `<li>${esc(c)}</li>`).join('\n')}
</ul>
${capacityTable(r) !== null ? table(capacityTable(r)!) : ''}
${targetsTable(r) !== null ? table(targetsTable(r)!) : ''}
${verdicts !== null ? table(verdicts) : '<h2>Verdicts</h2><p>No reference variant in this run.</p>'}
${table(readingTable(r))}
${table(detailTable(r))}
<h2>Charts</h2>
${chartHtml}
${probesTable(r) !== null ? table(probesTable(r)!) : ''}
${table(runsTable(r))}
${table(environmentTable(r))}
<h2>How to reproduce</h2>
<pre>git checkout ${esc(r.environment.gitCommit ?? '<commit>')}
npm ci
${esc(r.command)}</pre>
</body>
</html>
`;
}
