import { describe, expect, it } from 'vitest';
import { splitSamples } from '../../scripts/bench/cpu-budget-parts.js';

// Stacks as `perf script -F ip,sym` prints them (leaf first, one blank line between samples), trimmed from a run
// of scripts/bench/cpu-budget.ts on the own engine.
const D = 'file:///repo/dist';
const sample = (...frames: string[]) => frames.map((f, i) => `\t${f.startsWith('k:') ? 'ffffffff8' : '5'}${i}00 ${f.replace(/^k:/, '')}`).join('\n');
const SCRIPT = [
  // a kernel write under the h1 client's request head: the upstream's share of the kernel
  sample(
    'k:__tcp_transmit_skb',
    'k:ksys_write',
    'write',
    `JS:*writeOrBuffer node:internal/streams/writable:548:23`,
    `JS:*dispatch ${D}/variants/upstream/h1/index.js:72:13`,
    `JS:*forward ${D}/core/proxy/upstream.js:217:18`,
  ),
  // the same kernel write under the own engine's response: the client's share
  sample('k:__tcp_transmit_skb', 'k:do_writev', 'writev', `JS:*end ${D}/variants/server/own/response.js:325:8`, `JS:*send ${D}/core/data/response.js:104:9`),
  // node's stream code charged to the gateway frame that called it
  sample('Builtins_LoadIC', `JS:*writeOrBuffer node:internal/streams/writable:548:23`, `JS:*writeHead ${D}/variants/server/own/response.js:134:14`),
  sample(`JS:*parseHead ${D}/variants/server/own/parser.js:603:14`, `JS:*userRead ${D}/variants/server/own/connection.js:51:16`),
  sample(`JS:*head ${D}/variants/upstream/h1/parser.js:316:9`, `JS:*onData ${D}/variants/upstream/h1/connection.js:150:11`),
  sample(`JS:*walk ${D}/variants/router/radix/tree.js:148:14`, `JS:*onRequest ${D}/core/data/pipeline.js:87:14`),
  sample(`JS:*stage ${D}/core/proxy/upstream.js:344:10`),
  sample('v8::internal::Scavenger::ScavengePage', 'v8::internal::Heap::Scavenge'),
  sample('k:ep_poll', 'k:__x64_sys_epoll_pwait', 'epoll_pwait', 'uv__io_poll'),
  sample('Builtins_RunMicrotasks', 'node::InternalCallbackScope::Close'),
].join('\n\n');

describe('cpu-budget: which part of a proxied request a perf sample is charged to', () => {
  it('charges kernel writes to the client or the upstream by the gateway frame above them, and node internals to their caller', () => {
    expect(Object.fromEntries(splitSamples(SCRIPT))).toEqual({
      'kernel write to the upstream': 1,
      'kernel write to the client': 1,
      'client write': 1,
      'request parse': 1,
      'response parse (upstream)': 1,
      route: 1,
      'the rest: pipeline and proxy logic': 1,
      GC: 1,
      'kernel epoll': 1,
      'the rest: event loop, promises, V8 runtime': 1,
    });
  });
});
