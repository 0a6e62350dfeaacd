/**
 * Peers: other proxies the gateway is measured against in the `peers` scenario, each a "variant" of kind
 * `peer` run by the scenario runner exactly like the gateway (same CPU pinning, same upstream stub, same load,
 * interleaved). Node peers run from dist/ with the same diagnostics preload as the gateway; nginx, HAProxy and
 * Caddy (native peers) run when their binary is on the PATH and are skipped (with a caveat in the report) otherwise.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ROOT } from '../paths.js';
import { prepareCaddy } from './caddy.js';
import { prepareHaproxy } from './haproxy.js';
import { prepareNginx } from './nginx.js';

export const PEER_NAMES = ['fast-gateway', 'fastify-http-proxy', 'handwritten', 'nginx', 'haproxy', 'caddy', 'floor'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

/** Peers that are programs of their own (not Node scripts from dist/), with the binary each needs on the PATH. */
const NATIVE_PEERS = { nginx: 'nginx', haproxy: 'haproxy', caddy: 'caddy' } as const;
type NativePeer = keyof typeof NATIVE_PEERS;
export type NodePeer = Exclude<PeerName, NativePeer>;

function isNative(name: PeerName): name is NativePeer {
  return Object.hasOwn(NATIVE_PEERS, name);
}

const NODE_PEER_SCRIPTS: Record<NodePeer, string> = {
  'fast-gateway': 'fast-gateway.js',
  'fastify-http-proxy': 'fastify-http-proxy.js',
  handwritten: 'handwritten-proxy.js',
  floor: 'floor-proxy.js',
};

export function peerScript(name: NodePeer): string {
  return join(ROOT, 'dist', 'scripts', 'scenario', 'peers', NODE_PEER_SCRIPTS[name]);
}

export function isPeerName(name: string): name is PeerName {
  return (PEER_NAMES as readonly string[]).includes(name);
}

/** First executable `name` on the PATH, or null. */
export function which(name: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** null when the peer can run here, otherwise why not (for the report). */
export function peerUnavailable(name: PeerName): string | null {
  if (isNative(name) && which(NATIVE_PEERS[name]) === null) return `${NATIVE_PEERS[name]} is not on the PATH`;
  return null;
}

/** Node peers support the scenario's diagnostics preload (GC, event loop); nginx, HAProxy and Caddy do not. */
export function peerIsNode(name: PeerName): name is NodePeer {
  return !isNative(name);
}

export interface PeerStart {
  port: number;
  upstreamPort: number;
  prefixes: string[];
  /** CPUs to pin to (empty = unpinned) */
  cpus: number[];
  /** private scratch directory for this start (nginx config, pid, logs) */
  dir: string;
  /** extra node flags placed before the script (the diagnostics preload) */
  nodeArgs: string[];
  spawn: SpawnOptions;
  /** gRPC over h2c in front and behind (the h2load scenarios); only nginx (`grpc_pass`) is set up for it */
  grpc?: boolean;
}

function pinned(cmd: string, args: string[], cpus: number[], opts: SpawnOptions): ChildProcess {
  if (cpus.length > 0) return spawn('taskset', ['-c', cpus.join(','), cmd, ...args], opts);
  return spawn(cmd, args, opts);
}

export function spawnPeer(name: PeerName, s: PeerStart): ChildProcess {
  if (s.grpc === true && name !== 'nginx') throw new Error(`peer ${name}: no gRPC configuration (only nginx's grpc_pass)`);
  if (isNative(name)) {
    const bin = which(NATIVE_PEERS[name]);
    if (bin === null) throw new Error(`${NATIVE_PEERS[name]} is not on the PATH`);
    const o = { port: s.port, upstreamPort: s.upstreamPort, prefixes: s.prefixes, dir: s.dir };
    if (name === 'nginx') return pinned(bin, prepareNginx({ ...o, grpc: s.grpc === true }), s.cpus, s.spawn);
    if (name === 'haproxy') return pinned(bin, prepareHaproxy(o), s.cpus, s.spawn);
    const caddy = prepareCaddy(o);
    return pinned(bin, caddy.args, s.cpus, { ...s.spawn, env: { ...(s.spawn.env ?? process.env), ...caddy.env } });
  }
  const args = [...s.nodeArgs, peerScript(name), '--port', String(s.port), '--upstream-port', String(s.upstreamPort)];
  for (const p of s.prefixes) args.push('--prefix', p);
  return pinned(process.execPath, args, s.cpus, s.spawn);
}

/**
 * The path prefix a route pattern forwards, for peers without the gateway's pattern syntax: everything before
 * the first segment holding a param or a wildcard ("/api/*" → "/api", "/users/:id" → "/users"). Static routes
 * keep their full path. Duplicates are dropped; a route whose first segment is dynamic yields "" (forward all).
 */
export function routePrefixes(paths: string[]): string[] {
  const out: string[] = [];
  for (const path of paths) {
    const segs = path.split('/').slice(1);
    const cut = segs.findIndex((s) => s.includes(':') || s.includes('*'));
    const prefix = cut === -1 ? path : `/${segs.slice(0, cut).join('/')}`.replace(/\/$/, '');
    if (!out.includes(prefix)) out.push(prefix);
  }
  // a catch-all makes every other prefix redundant (and nginx/fastify reject duplicate "/" locations)
  return out.includes('') ? [''] : out;
}
