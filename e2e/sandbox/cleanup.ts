// Finding and removing what the sandbox made, by name prefix: what a crashed run left
// (`sweepStale`), what a test can assert is gone (`leftovers`), and the synchronous cleanup
// that runs when the process exits or is killed before `teardown()` could.
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import type { Leftovers } from './index.js';
import { runSync } from './sh.js';

/** The file in a node's temp dir listing host directories it created (mountPaths), one a line. */
export const CREATED_PATHS_FILE = 'created-paths';

/** The cgroup2 mount point from /proc/mounts (never assumed to be /sys/fs/cgroup). */
export function cgroup2Mount(): string {
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, mnt, type] = line.split(' ');
    if (type === 'cgroup2' && mnt !== undefined) return unescapeMount(mnt);
  }
  throw new WeftError(ErrorCodes.MISSING_FEATURE, 'no cgroup2 mount in /proc/mounts; the sandbox needs cgroup v2', { field: 'cgroup2' });
}

const unescapeMount = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

const matches = (name: string, prefix: string): boolean => name === prefix || name.startsWith(`${prefix}-`);

function netnsNames(prefix: string): string[] {
  try {
    return readdirSync('/run/netns').filter((n) => matches(n, prefix));
  } catch {
    return [];
  }
}

function cgroupTops(prefix: string): string[] {
  let root: string;
  try {
    root = cgroup2Mount();
  } catch {
    return [];
  }
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && matches(d.name, prefix))
    .map((d) => join(root, d.name));
}

/** Every cgroup directory under `dir`, deepest first. */
function cgroupTree(dir: string): string[] {
  const out: string[] = [];
  try {
    for (const d of readdirSync(dir, { withFileTypes: true })) if (d.isDirectory()) out.push(...cgroupTree(join(dir, d.name)));
  } catch {
    return out;
  }
  out.push(dir);
  return out;
}

function mountsOf(prefix: string): string[] {
  const roots = [join(tmpdir(), prefix), join('/run/netns', prefix)];
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => unescapeMount(l.split(' ')[1] ?? ''))
    .filter((m) => roots.some((r) => m === r || m.startsWith(`${r}-`)));
}

function tmpDirs(prefix: string): string[] {
  return readdirSync(tmpdir(), { withFileTypes: true })
    .filter((d) => d.isDirectory() && matches(d.name, prefix))
    .map((d) => join(tmpdir(), d.name));
}

/** Processes in one of the prefix's cgroups or network namespaces. */
function processesOf(prefix: string, netns: string[]): number[] {
  const inodes = new Set<string>();
  for (const n of netns) {
    try {
      inodes.add(`net:[${statSync(join('/run/netns', n)).ino}]`);
    } catch {
      // deleted meanwhile
    }
  }
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      // A zombie holds nothing; orphans are reaped by pid 1 a moment later.
      if (/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${p}/stat`, 'utf8'))) continue;
      const cg = readFileSync(`/proc/${p}/cgroup`, 'utf8');
      const v2 = /^0::(\/[^\n]*)$/m.exec(cg)?.[1] ?? '';
      const top = v2.split('/')[1] ?? '';
      if (matches(top, prefix) || inodes.has(readlinkSync(`/proc/${p}/ns/net`))) pids.push(Number(p));
    } catch {
      // the process exited while we looked
    }
  }
  return pids;
}

function rootLinks(prefix: string): string[] {
  const r = runSync(['ip', '-o', 'link', 'show']);
  return r.stdout
    .split('\n')
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '')
    .filter((n) => n !== '' && matches(n, prefix));
}

/** What remains on this machine of `prefix` (a suite prefix like `wfsb`, or `wfsb-n1` for one node). */
export function leftovers(prefix: string): Leftovers {
  const netns = netnsNames(prefix);
  return {
    netns,
    cgroups: cgroupTops(prefix).flatMap(cgroupTree),
    mounts: mountsOf(prefix),
    processes: processesOf(prefix, netns),
    links: rootLinks(prefix),
    dirs: tmpDirs(prefix),
  };
}

export const isEmpty = (l: Leftovers): boolean => Object.values(l).every((v: unknown[]) => v.length === 0);

/** Kill every process of a cgroup subtree (cgroup.kill, kernel ≥ 5.14) and wait until it is empty. */
export function killCgroupSync(dir: string): void {
  if (!existsSync(dir)) return;
  try {
    writeFileSync(join(dir, 'cgroup.kill'), '1');
  } catch {
    // not populated or already gone
  }
  const until = Date.now() + 3000;
  while (Date.now() < until) {
    try {
      if (/populated 0/.test(readFileSync(join(dir, 'cgroup.events'), 'utf8'))) return;
    } catch {
      return;
    }
    runSync(['sleep', '0.02']);
  }
}

export function rmCgroupTreeSync(dir: string): string[] {
  const failed: string[] = [];
  for (const d of cgroupTree(dir)) {
    try {
      rmdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') failed.push(`${d}: ${(e as Error).message}`);
    }
  }
  return failed;
}

/** Remove the host directories a node created for mountPaths (listed in its temp dir), deepest first. */
export function removeCreatedPathsSync(nodeDir: string): void {
  let lines: string[] = [];
  try {
    lines = readFileSync(join(nodeDir, CREATED_PATHS_FILE), 'utf8').split('\n').filter(Boolean);
  } catch {
    return;
  }
  for (const p of [...new Set(lines)].sort((a, b) => b.length - a.length)) {
    try {
      if (statSync(p).isDirectory()) rmdirSync(p);
      else rmSync(p);
    } catch {
      // not empty (someone else's now) or gone: leave it
    }
  }
}

/**
 * Remove everything of `prefix` on this machine: processes (cgroup.kill, then by netns),
 * mounts, namespaces, cgroups, created mountPaths and temp dirs. Returns what could not be removed.
 */
export function sweepStale(prefix: string): Leftovers {
  if (!/^[a-z][a-z0-9]{1,7}(-[a-z0-9-]+)?$/.test(prefix)) {
    throw new WeftError(ErrorCodes.SANDBOX, `sweepStale: prefix "${prefix}" must look like "wfsb" or "wfsb-n1"`, { field: 'prefix' });
  }
  for (const top of cgroupTops(prefix)) killCgroupSync(top);
  for (const pid of processesOf(prefix, netnsNames(prefix))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const d of tmpDirs(prefix)) removeCreatedPathsSync(d);
  for (const m of mountsOf(prefix).sort((a, b) => b.length - a.length)) {
    if (m.startsWith('/run/netns/')) continue;
    runSync(['umount', '-l', m]);
  }
  for (const n of netnsNames(prefix)) runSync(['ip', 'netns', 'del', n]);
  for (const top of cgroupTops(prefix)) rmCgroupTreeSync(top);
  for (const d of tmpDirs(prefix)) rmSync(d, { recursive: true, force: true });
  return leftovers(prefix);
}

/** Nodes alive in this process, cleaned synchronously if the process exits or is killed first. */
const live = new Set<{ cleanupSync(): void }>();
let hooked = false;

export function registerLive(n: { cleanupSync(): void }): () => void {
  live.add(n);
  if (!hooked) {
    hooked = true;
    process.on('exit', cleanupAll);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      const onSignal = (): void => {
        cleanupAll();
        process.removeListener(sig, onSignal);
        // Re-raise so the default action (or another handler) still ends the process.
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
      };
      process.on(sig, onSignal);
    }
  }
  return () => live.delete(n);
}

function cleanupAll(): void {
  for (const n of [...live]) {
    try {
      n.cleanupSync();
    } catch {
      // best effort at exit
    }
    live.delete(n);
  }
}
