import type { BalancerName } from '../config/types.js';
import type { Target } from './target.js';

/**
 * Picks a target among those available now. `exclude` is a bitmask of target indexes already tried for this
 * request (retries go elsewhere when they can); `key` is the consistent-hash key (null: none).
 */
export interface Balancer {
  pick(now: number, key: string | null, exclude: number): Target | null;
}

function usable(t: Target, now: number, exclude: number): boolean {
  return (t.index > 30 || (exclude & (1 << t.index)) === 0) && t.available(now);
}

export class RoundRobin implements Balancer {
  private next = 0;
  constructor(private readonly targets: Target[]) {}

  pick(now: number, _key: string | null, exclude: number): Target | null {
    const ts = this.targets;
    const n = ts.length;
    for (let i = 0; i < n; i++) {
      const idx = (this.next + i) % n;
      const t = ts[idx]!;
      if (!usable(t, now, exclude)) continue;
      this.next = (idx + 1) % n;
      return t;
    }
    return null;
  }
}

/** nginx's smooth weighted round-robin: weights honoured with the picks interleaved, not in bursts. */
export class WeightedRoundRobin implements Balancer {
  constructor(private readonly targets: Target[]) {}

  pick(now: number, _key: string | null, exclude: number): Target | null {
    const ts = this.targets;
    let total = 0;
    let best: Target | null = null;
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i]!;
      if (!usable(t, now, exclude)) continue;
      t.currentWeight += t.weight;
      total += t.weight;
      if (best === null || t.currentWeight > best.currentWeight) best = t;
    }
    if (best !== null) best.currentWeight -= total;
    return best;
  }
}

/** Fewest in-flight requests per unit of weight; ties rotate so equal targets share the load. */
export class LeastConnections implements Balancer {
  private start = 0;
  constructor(private readonly targets: Target[]) {}

  pick(now: number, _key: string | null, exclude: number): Target | null {
    const ts = this.targets;
    const n = ts.length;
    let best: Target | null = null;
    let bestLoad = Infinity;
    this.start = (this.start + 1) % n;
    for (let i = 0; i < n; i++) {
      const t = ts[(this.start + i) % n]!;
      if (!usable(t, now, exclude)) continue;
      const load = t.active / t.weight;
      if (load < bestLoad) {
        best = t;
        bestLoad = load;
      }
    }
    return best;
  }
}

/** Power of two random choices: two distinct random available targets, the less loaded one wins. */
export class P2C implements Balancer {
  private readonly scratch: Target[];
  constructor(
    private readonly targets: Target[],
    private readonly random: () => number = Math.random,
  ) {
    this.scratch = new Array<Target>(targets.length);
  }

  pick(now: number, _key: string | null, exclude: number): Target | null {
    const ts = this.targets;
    const s = this.scratch;
    let k = 0;
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i]!;
      if (usable(t, now, exclude)) s[k++] = t;
    }
    if (k === 0) return null;
    if (k === 1) return s[0]!;
    const a = Math.floor(this.random() * k);
    let b = Math.floor(this.random() * (k - 1));
    if (b >= a) b++;
    const ta = s[a]!;
    const tb = s[b]!;
    return ta.active / ta.weight <= tb.active / tb.weight ? ta : tb;
  }
}

/** 32-bit FNV-1a with murmur3's finaliser (FNV alone clusters similar strings on the ring). */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export const VIRTUAL_NODES = 160;

/**
 * Consistent hashing on a ring of virtual nodes (VIRTUAL_NODES × weight per target, placed by hashing the
 * target URL, so a target keeps its points whatever the other targets are). A key goes to the first point
 * clockwise whose target is available: when a target leaves, only its keys move. No key: round-robin.
 */
export class ConsistentHash implements Balancer {
  private readonly points: Uint32Array;
  private readonly owners: Uint16Array;
  private readonly fallback: RoundRobin;

  constructor(private readonly targets: Target[]) {
    const entries: Array<[number, number]> = [];
    for (const t of targets) {
      const n = VIRTUAL_NODES * t.weight;
      for (let v = 0; v < n; v++) entries.push([hash32(`${t.url}#${v}`), t.index]);
    }
    entries.sort((x, y) => x[0] - y[0]);
    this.points = Uint32Array.from(entries, (e) => e[0]);
    this.owners = Uint16Array.from(entries, (e) => e[1]);
    this.fallback = new RoundRobin(targets);
  }

  pick(now: number, key: string | null, exclude: number): Target | null {
    if (key === null) return this.fallback.pick(now, null, exclude);
    const h = hash32(key);
    const pts = this.points;
    let lo = 0;
    let hi = pts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pts[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    const n = pts.length;
    let seen = 0;
    const all = this.targets.length;
    let seenMask = 0;
    for (let i = 0; i < n && seen < all; i++) {
      const owner = this.owners[(lo + i) % n]!;
      const t = this.targets[owner]!;
      if (owner <= 30) {
        if ((seenMask & (1 << owner)) !== 0) continue;
        seenMask |= 1 << owner;
      }
      seen++;
      if (usable(t, now, exclude)) return t;
    }
    return null;
  }
}

export function createBalancer(name: BalancerName, targets: Target[]): Balancer {
  switch (name) {
    case 'round-robin':
      return new RoundRobin(targets);
    case 'weighted-round-robin':
      return new WeightedRoundRobin(targets);
    case 'least-connections':
      return new LeastConnections(targets);
    case 'p2c':
      return new P2C(targets);
    case 'consistent-hash':
      return new ConsistentHash(targets);
  }
}
