/**
 * What a report says, rendered from a committed results.json: the baseline's saturation line names the bare
 * server, two repetitions are not called a 95 % CI, a gateway faster than the bare server gets its explanation,
 * every report with CPU data charts CPU per request, and the terminal table stays narrow.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fasterThanBareNote, readingLines } from '../../scripts/scenario/interpret.js';
import { cpuChart } from '../../scripts/scenario/report/charts.js';
import { renderMarkdown, statisticsText } from '../../scripts/scenario/report/markdown.js';
import type { Results } from '../../scripts/scenario/results.js';
import { verdictTerminalTable } from '../../scripts/scenario/terminal.js';

const load = (name: string): Results => JSON.parse(readFileSync(`reports/latest/${name}/results.json`, 'utf8')) as Results;

describe('report reading', () => {
  const r = load('engines-direct');

  it('names the bare server in its own saturation line, not "gateway"', () => {
    const bare = readingLines(r).find((l) => l.variant === 'baseline')!;
    expect(bare.saturation.text).toMatch(/^bare server at \d+% CPU/);
    expect(bare.saturation.text).not.toContain('gateway');
  });

  it('two repetitions are labelled as the two values, not a 95% CI', () => {
    const two = { ...r, options: { ...r.options, repetitions: 2 } };
    expect(statisticsText(two)).toContain("n=2: each [lo – hi] is the two runs' values, not a 95% CI");
    expect(statisticsText(r)).toContain('95% percentile-bootstrap CI');
  });

  it('explains a gateway faster than the bare server', () => {
    // in this run the own engine answered more req/s than the bare http.createServer
    expect(fasterThanBareNote(r)).toMatch(/^Faster than the bare server \(server=own\)/);
    expect(renderMarkdown(r, ['throughput'])).toContain('Faster than the bare server');
  });

  it('charts CPU per request and links it from report.md', async () => {
    const png = await cpuChart(r);
    expect(png).not.toBeNull();
    expect(png!.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(renderMarkdown(r, ['throughput', 'cpu'])).toContain('cpu.png');
  });

  it('prints no terminal line wider than 160 columns', () => {
    for (const name of ['engines-direct', 'routers', 'peers-builds']) {
      const lines = verdictTerminalTable(load(name)).split('\n');
      // the reading lines are prose and wrap in a terminal; the tables are what must not
      const tableLines = lines.slice(0, lines.indexOf('Reading the numbers'));
      expect(
        tableLines.filter((l) => l.length > 160),
        name,
      ).toEqual([]);
    }
  });
});
