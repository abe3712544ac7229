// A container's identity and capabilities as Kubernetes with containerd gives them, turned
// into one `setpriv` argv prefix. Pure: no I/O.
//
// containerd: root gets the runtime default set minus `drop` plus `add` (ALL allowed in
// both) as bounding = permitted = effective; `privileged` (and `add: [ALL]`) gets every
// capability the host kernel has (0..cap_last_cap, which the caller reads); a non-root
// user keeps that bounding set but gets no permitted/effective/ambient capability (runc
// no longer fills the inheritable set, so exec of a plain file grants nothing).
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import type { Container, PodSpec } from './types.js';

/** containerd's default capability set (oci.defaultUnixCaps). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID',
  'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
];

/** The capabilities with a name, in bit order (Linux 5.9+: CHECKPOINT_RESTORE is bit 40). */
export const NAMED_CAPABILITIES: readonly string[] = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID',
  'SETPCAP', 'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW',
  'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT',
  'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD',
  'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG',
  'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
];

/** A capability newer than this list, by its bit: `CAP_41` (the form setpriv takes, too). */
const UNNAMED = /^CAP_(\d+)$/;

/**
 * Every capability of a kernel whose /proc/sys/kernel/cap_last_cap is `lastCap`: what
 * containerd grants `privileged` and `add: [ALL]` (the runtime's own full set). Bits past
 * the named ones are called `CAP_<bit>`.
 */
export function allCapabilities(lastCap: number): string[] {
  if (!Number.isInteger(lastCap) || lastCap < 0 || lastCap > 63) {
    throw new WeftError(ErrorCodes.SANDBOX, `cap_last_cap: ${lastCap} is not a capability bit (0-63)`, { field: 'cap_last_cap' });
  }
  return Array.from({ length: lastCap + 1 }, (_, bit) => NAMED_CAPABILITIES[bit] ?? `CAP_${bit}`);
}

/** The kernel facts a plan depends on; the caller reads them (this module does no I/O). */
export interface HostCaps {
  /** /proc/sys/kernel/cap_last_cap */
  lastCap: number;
}

export interface CapabilityPlan {
  uid: number;
  gid: number;
  groups: number[];
  /** Capability names without CAP_, upper case. */
  bounding: string[];
  /** What the process ends up with as permitted = effective. */
  effective: string[];
  noNewPrivs: boolean;
  /** `setpriv … --` (without the command). */
  setpriv: string[];
}

function normalise(name: string, where: string, all: readonly string[]): string {
  const upper = name.toUpperCase();
  const n = UNNAMED.test(upper) ? upper : upper.replace(/^CAP_/, '');
  if (n !== 'ALL' && !all.includes(n)) {
    throw new WeftError(ErrorCodes.SANDBOX, `${where}: unknown capability "${name}"; allowed: ALL or ${all.join(', ')}`, { field: where });
  }
  return n;
}

/**
 * @param where  JSON path of the container, for error messages (`spec.containers[1]`).
 * @param override  identity forced by `exec({uid, gid})`.
 */
export function capabilityPlan(spec: PodSpec, container: Container, where: string, host: HostCaps, override: { uid?: number; gid?: number } = {}): CapabilityPlan {
  const all = allCapabilities(host.lastCap);
  const psc = spec.securityContext ?? {};
  const sc = container.securityContext ?? {};
  const uid = override.uid ?? sc.runAsUser ?? psc.runAsUser ?? 0;
  const gid = override.gid ?? sc.runAsGroup ?? psc.runAsGroup ?? 0;
  if ((sc.runAsNonRoot ?? psc.runAsNonRoot) === true && uid === 0 && override.uid === undefined) {
    throw new WeftError(ErrorCodes.SANDBOX, `${where}.securityContext: runAsNonRoot is true but the container would run as uid 0`, { field: `${where}.securityContext.runAsNonRoot` });
  }
  const groups = [...new Set([...(psc.supplementalGroups ?? []), ...(psc.fsGroup === undefined ? [] : [psc.fsGroup])])];

  let bounding: string[];
  if (sc.privileged === true) {
    bounding = all;
  } else {
    const add = (sc.capabilities?.add ?? []).map((c) => normalise(c, `${where}.securityContext.capabilities.add`, all));
    const drop = (sc.capabilities?.drop ?? []).map((c) => normalise(c, `${where}.securityContext.capabilities.drop`, all));
    // containerd's TweakCapabilities: start from the default set (every capability if add
    // has ALL), remove drops (everything if drop has ALL), then append the named adds, so the
    // usual `drop: [ALL], add: [NET_BIND_SERVICE]` keeps NET_BIND_SERVICE.
    const set = new Set(add.includes('ALL') ? all : DEFAULT_CAPABILITIES);
    if (drop.includes('ALL')) set.clear();
    for (const d of drop) set.delete(d);
    for (const a of add) if (a !== 'ALL') set.add(a);
    bounding = all.filter((c) => set.has(c));
  }
  const effective = uid === 0 ? bounding : [];
  const noNewPrivs = sc.allowPrivilegeEscalation === false && sc.privileged !== true;

  // By bit number (`+cap_12`): setpriv knows that form for every bit, named or not.
  const lower = (cs: string[]): string => cs.map((c) => `+cap_${capBit(c)}`).join(',');
  const setpriv = [
    '/usr/bin/setpriv',
    `--reuid=${uid}`,
    `--regid=${gid}`,
    ...(groups.length > 0 ? [`--groups=${groups.join(',')}`] : ['--clear-groups']),
    `--bounding-set=-all${bounding.length > 0 ? ',' + lower(bounding) : ''}`,
    '--inh-caps=-all',
    '--ambient-caps=-all',
    ...(noNewPrivs ? ['--no-new-privs'] : []),
    '--',
  ];
  return { uid, gid, groups, bounding, effective, noNewPrivs, setpriv };
}

/** Capability names → the hex mask /proc/<pid>/status prints (CapEff, CapBnd…). */
export function capMask(names: readonly string[]): bigint {
  let m = 0n;
  for (const n of names) m |= 1n << BigInt(capBit(n));
  return m;
}

/** A capability's bit: its place among the named ones, or N of `CAP_N`. */
export function capBit(name: string): number {
  const named = NAMED_CAPABILITIES.indexOf(name);
  if (named >= 0) return named;
  const m = UNNAMED.exec(name);
  if (m) return Number(m[1]);
  throw new WeftError(ErrorCodes.SANDBOX, `unknown capability ${name}`, { field: 'capability' });
}
