/**
 * The split of scripts/bench/cpu-budget.ts: which part of a proxied request a perf sample is charged to, from its
 * stack. A sample goes to the part of the first gateway (or node:http) frame from the leaf up, so node's streams and
 * V8 code between the leaf and that frame count for the part that called them; a kernel write goes to the client or
 * the upstream by that same frame.
 */

/** Parts of a proxied request, each recognised by the gateway (or node:http) frame that decides it. */
const PARTS: Array<[string, RegExp]> = [
  ['request parse', /own\/connection\.js|own\/parser\.js|own\/headers\.js|own\/request\.js|llhttp|_http_common|parserOnIncoming|_http_incoming/],
  ['route', /variants\/router\/|canonical-path|findRoute/],
  ['response parse (upstream)', /upstream\/h1\/parser\.js|onHead .*upstream\/h1\/connection\.js/],
  ['upstream write', /upstream\/h1\/|buildRequestHeaders|forwardingInfo/],
  ['client write', /own\/response\.js|own\/date\.js|data\/response\.js|_http_outgoing|_http_server|buildResponseHeaders/],
  ['metrics', /observe\/metrics|variants\/metrics\//],
  ['the rest: pipeline and proxy logic', /dist\/core\/|dist\/variants\//],
];
const GC = /Scavenge|MarkCompact|ConcurrentMarking|Sweeper|Heap::|GCTracer|Marking|Evacuat/;
const COMPILER = /compiler::|Compil|Maglev/;

/** The part a sample's stack (leaf first) is charged to. */
export function partOf(frames: string[], kernel: boolean): string {
  let user: string | null = null;
  for (const f of frames) {
    if (!f.startsWith('JS:') && !f.includes('llhttp')) continue;
    const hit = PARTS.find(([, re]) => re.test(f));
    if (hit !== undefined) {
      user = hit[0];
      break;
    }
  }
  if (kernel) {
    if (frames.some((f) => /ksys_write|do_writev|vfs_writev|sock_write_iter/.test(f))) {
      return user === 'upstream write' ? 'kernel write to the upstream' : user === 'client write' ? 'kernel write to the client' : 'kernel write (other)';
    }
    if (frames.some((f) => /ksys_read|sock_read_iter|recvmsg/.test(f))) return 'kernel read';
    if (frames.some((f) => f.includes('epoll'))) return 'kernel epoll';
    return 'kernel other (softirq, faults, scheduler)';
  }
  const top = frames.slice(0, 4).join(' ');
  if (GC.test(top)) return 'GC';
  if (COMPILER.test(top)) return 'V8 compiler';
  return user ?? 'the rest: event loop, promises, V8 runtime';
}

/** `perf script -F ip,sym` output → count of samples per part. */
export function splitSamples(script: string): Map<string, number> {
  const parts = new Map<string, number>();
  for (const block of script.split('\n\n')) {
    const lines = block
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    if (lines.length === 0) continue;
    const frames = lines.map((l) => {
      const sp = l.indexOf(' ');
      return sp === -1 ? '' : l.slice(sp + 1);
    });
    const part = partOf(frames, lines[0]!.startsWith('ffffffff'));
    parts.set(part, (parts.get(part) ?? 0) + 1);
  }
  return parts;
}
