// Finding the pod-level cgroup from the pod UID, as kubelet lays it out under the host's
// cgroup2 mount: systemd driver `…/kubepods-<qos>-pod<uid with _>.slice` (or
// `kubepods-pod<uid>.slice` for Guaranteed), cgroupfs driver `…/pod<uid>`.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, WeftError } from '../../errors/index.js';

/** The first cgroup2 mount point in a /proc/mounts text, or null. */
export function cgroup2MountFrom(mounts: string): string | null {
  for (const line of mounts.split('\n')) {
    const [, mountPoint, fsType] = line.split(' ');
    if (fsType === 'cgroup2' && mountPoint !== undefined) return mountPoint.replace(/\\040/g, ' ');
  }
  return null;
}

export function findCgroup2Mount(mountsFile = '/proc/mounts'): string {
  const m = cgroup2MountFrom(readFileSync(mountsFile, 'utf8'));
  if (m === null) throw new WeftError(ErrorCodes.MISSING_FEATURE, 'no cgroup2 mount in /proc/mounts: eBPF interception needs cgroup v2 (give --cgroup-root)', { field: '--cgroup-root' });
  return m;
}

/** Whether a directory name is the pod-level cgroup of this pod UID (either driver). */
export function isPodCgroupName(name: string, podUid: string): boolean {
  const uid = podUid.toLowerCase();
  const underscored = uid.replaceAll('-', '_');
  const n = name.toLowerCase();
  return n === `pod${uid}` || n === `pod${underscored}` || n.endsWith(`-pod${underscored}.slice`);
}

const MAX_DEPTH = 8;
const MAX_DIRS = 50_000;

/** Breadth-first search under `root` for the pod's cgroup directory; bounded in depth and
 * directories visited so a huge host tree cannot stall the init container. */
export function findPodCgroup(root: string, podUid: string): string {
  let level = [root];
  let visited = 0;
  for (let depth = 0; depth < MAX_DEPTH && level.length > 0; depth++) {
    const next: string[] = [];
    for (const dir of level) {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        const p = join(dir, name);
        if (!isDirectory(p)) continue;
        if (isPodCgroupName(name, podUid)) return p;
        if (++visited > MAX_DIRS) break;
        next.push(p);
      }
    }
    level = next;
  }
  throw new WeftError(ErrorCodes.APPLY_FAILED, `no cgroup of pod ${podUid} under ${root} (looked for pod${podUid} and *-pod${podUid.replaceAll('-', '_')}.slice); give --cgroup`, { field: '--pod-uid' });
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
