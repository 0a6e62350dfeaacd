/**
 * What a results.json records about the machine a run measured on, so two reports can be judged comparable (or
 * not) from their files alone: Node and V8, the CPU and its frequency governor, the kernel, memory, the load
 * average before and after, the commit and whether the tree was dirty, and the CPU pinning.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem, type as osType } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './paths.js';
import type { CpuPlan } from './processes.js';
import type { Environment } from './results.js';

const CPU_SYSFS = '/sys/devices/system/cpu';

function git(args: string[]): string | null {
  const r = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/**
 * The CPU frequency governors in use ("performance", "powersave", "schedutil"; several joined with "/" when
 * CPUs differ), or null where cpufreq is not exposed (most VMs and containers): a "powersave" host measures its
 * own frequency scaling as much as the code.
 */
export function cpuGovernor(sysfs = CPU_SYSFS): string | null {
  let names: string[];
  try {
    names = readdirSync(sysfs).filter((n) => /^cpu\d+$/.test(n));
  } catch {
    return null;
  }
  const seen = new Set<string>();
  for (const n of names) {
    try {
      seen.add(readFileSync(join(sysfs, n, 'cpufreq', 'scaling_governor'), 'utf8').trim());
    } catch {
      // this CPU exposes no cpufreq
    }
  }
  return seen.size === 0 ? null : [...seen].sort().join('/');
}

export function describeEnvironment(plan: CpuPlan, loadavgBefore: number[]): Environment {
  const status = git(['status', '--porcelain', '--untracked-files=no']);
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${process.release.name}`,
    arch: process.arch,
    kernel: `${osType()} ${release()}`,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cpuGovernor: cpuGovernor(),
    cores: availableParallelism(),
    totalMemMB: Math.round(totalmem() / (1024 * 1024)),
    loadavgBefore,
    loadavgAfter: loadavg(),
    gitCommit: git(['rev-parse', 'HEAD']),
    gitDirty: status === null ? null : status !== '',
    pinning: plan,
  };
}
