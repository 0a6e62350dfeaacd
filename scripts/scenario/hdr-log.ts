/**
 * HdrHistogram interval logs (the format of HdrHistogram's HistogramLogWriter, version 1.3): one compressed
 * histogram per interval of a fixed-rate run, so runs can be merged, compared and replotted with the tools that
 * already read them (HdrHistogram's HistogramLogProcessor, HdrHistogramVisualizer, hdr-plot, hdr-histogram-js).
 * Values are recorded in microseconds; each line's max is in milliseconds (maxValueUnitRatio 1000).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as hdr from 'hdr-histogram-js';

export interface HdrLogOptions {
  /** where the log goes */
  file: string;
  /** seconds per interval histogram */
  intervalS: number;
  /** wall-clock time the run started (ms since the epoch): the log's StartTime */
  startMs: number;
  /** every interval line's Tag= (variant and rate; commas become ";"), so logs of several runs can be concatenated and told apart */
  tag: string;
  /** comment lines at the top (what was measured, how) */
  comments: string[];
}

/** Samples as openloop.c writes them: pairs of little-endian doubles [seconds from the start, latency ms]. */
export function readSamples(file: string): Array<[number, number]> {
  const buf = readFileSync(file);
  const out: Array<[number, number]> = [];
  for (let off = 0; off + 16 <= buf.length; off += 16) out.push([buf.readDoubleLE(off), buf.readDoubleLE(off + 8)]);
  return out;
}

/** Writes the samples as one histogram per interval (by the time each answer arrived); returns the interval count. */
export function writeHdrLog(samples: Array<[number, number]>, o: HdrLogOptions): number {
  const lines: string[] = [];
  const writer = new hdr.HistogramLogWriter((s) => lines.push(s));
  for (const c of o.comments) writer.outputComment(c);
  writer.outputLogFormatVersion();
  writer.outputStartTime(o.startMs);
  writer.outputLegend();
  const last = samples.reduce((m, [t]) => Math.max(m, t), 0);
  const intervals = Math.max(1, Math.ceil(last / o.intervalS));
  const hists = Array.from({ length: intervals }, () =>
    hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 }),
  );
  for (const [t, ms] of samples) hists[Math.min(intervals - 1, Math.floor(t / o.intervalS))]!.recordValue(Math.max(1, Math.round(ms * 1000)));
  // the log format ends a tag at the first comma and splits lines on whitespace: variant ids like "build=x,server=own" would not survive
  const tag = o.tag.replace(/,/g, ';').replace(/\s+/g, '_');
  for (const [i, h] of hists.entries()) {
    h.tag = tag;
    writer.outputIntervalHistogram(h, i * o.intervalS, Math.min((i + 1) * o.intervalS, Math.max(last, (i + 1) * o.intervalS)), 1000);
    h.destroy();
  }
  writeFileSync(o.file, lines.join(''));
  return intervals;
}
