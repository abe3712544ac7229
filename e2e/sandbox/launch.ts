// How a container process is started: one /bin/sh that moves itself into the container's
// cgroup, then execs nsenter (pod netns) → unshare (private mount namespace with the bind
// mounts) → env -i (the container's environment only) → setpriv (uid, gid, capabilities) →
// the command. Every step execs, so the pid the
// caller sees is the container's main process. Pure: builds the argv only.
import { shq } from './sh.js';

export interface BindMount {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface LaunchSpec {
  cgroupDir: string;
  netnsPath: string;
  /** New private mount namespace with these binds (a container start). */
  mounts?: BindMount[];
  /** Join this process's mount namespace instead (an exec into a running container). */
  joinMountNsOf?: number;
  cwd?: string;
  /** Write a line to fd 3 (then close it) once namespaces, cgroup and mounts are in place. */
  signalFd3?: boolean;
  /**
   * The process's whole environment, set with `env -i` at the last step: whatever the
   * spawner adds (tap's NODE_OPTIONS loader, say) never reaches the container.
   */
  env: Record<string, string>;
  /** `setpriv … --` from capabilityPlan. */
  setpriv: string[];
  argv: string[];
}

/** Exit code of the launcher when it cannot set the container up (before the command runs). */
export const LAUNCH_FAILED = 125;

export function launchArgv(spec: LaunchSpec): string[] {
  const steps: string[] = [];
  for (const m of spec.mounts ?? []) {
    steps.push(`/usr/bin/mount --bind ${shq(m.source)} ${shq(m.target)}`);
    if (m.readOnly) steps.push(`/usr/bin/mount -o remount,bind,ro ${shq(m.target)}`);
  }
  if (spec.cwd !== undefined) steps.push(`cd ${shq(spec.cwd)}`);
  if (spec.signalFd3 === true) steps.push('echo started >&3', 'exec 3>&-');
  const inner = [...steps.map((s) => `${s} || exit ${LAUNCH_FAILED}`), `exec ${['/usr/bin/env', '-i', ...Object.entries(spec.env).map(([k, v]) => `${k}=${v}`), ...spec.setpriv, ...spec.argv].map(shq).join(' ')}`].join('\n');
  const ns = [`--net=${spec.netnsPath}`, ...(spec.joinMountNsOf === undefined ? [] : [`--mount=/proc/${spec.joinMountNsOf}/ns/mnt`])];
  const mountNs = spec.joinMountNsOf === undefined ? ['/usr/bin/unshare', '--mount', '--propagation', 'private', '--'] : [];
  const outer = [
    `echo $$ > ${shq(`${spec.cgroupDir}/cgroup.procs`)} || { echo "sandbox: cannot join cgroup ${spec.cgroupDir}" >&2; exit ${LAUNCH_FAILED}; }`,
    `exec ${['/usr/bin/nsenter', ...ns, '--', ...mountNs, '/bin/sh', '-c', inner].map(shq).join(' ')}`,
  ].join('\n');
  return ['/bin/sh', '-c', outer];
}
