// A container's identity and capabilities as Kubernetes with containerd gives them, turned
// into one `setpriv` argv prefix. Pure: no I/O.
//
// containerd: root gets the runtime default set minus `drop` plus `add` (ALL allowed in
// both) as bounding = permitted = effective; `privileged` gets every capability; a non-root
// user keeps that bounding set but gets no permitted/effective/ambient capability (runc
// no longer fills the inheritable set, so exec of a plain file grants nothing).
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import type { Container, PodSpec } from './types.js';

/** containerd's default capability set (oci.defaultUnixCaps). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID',
  'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
];

/** Every capability setpriv knows on this kernel generation (`setpriv --list-caps`). */
export const ALL_CAPABILITIES: readonly string[] = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID',
  'SETPCAP', 'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW',
  'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT',
  'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD',
  'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG',
  'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
];

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

function normalise(name: string, where: string): string {
  const n = name.toUpperCase().replace(/^CAP_/, '');
  if (n !== 'ALL' && !ALL_CAPABILITIES.includes(n)) {
    throw new WeftError(ErrorCodes.SANDBOX, `${where}: unknown capability "${name}"; allowed: ALL or ${ALL_CAPABILITIES.join(', ')}`, { field: where });
  }
  return n;
}

/**
 * @param where  JSON path of the container, for error messages (`spec.containers[1]`).
 * @param override  identity forced by `exec({uid, gid})`.
 */
export function capabilityPlan(spec: PodSpec, container: Container, where: string, override: { uid?: number; gid?: number } = {}): CapabilityPlan {
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
    bounding = [...ALL_CAPABILITIES];
  } else {
    const add = (sc.capabilities?.add ?? []).map((c) => normalise(c, `${where}.securityContext.capabilities.add`));
    const drop = (sc.capabilities?.drop ?? []).map((c) => normalise(c, `${where}.securityContext.capabilities.drop`));
    // containerd's TweakCapabilities: start from the default set (every capability if add
    // has ALL), remove drops (everything if drop has ALL), then append the named adds, so the
    // usual `drop: [ALL], add: [NET_BIND_SERVICE]` keeps NET_BIND_SERVICE.
    const set = new Set(add.includes('ALL') ? ALL_CAPABILITIES : DEFAULT_CAPABILITIES);
    if (drop.includes('ALL')) set.clear();
    for (const d of drop) set.delete(d);
    for (const a of add) if (a !== 'ALL') set.add(a);
    bounding = ALL_CAPABILITIES.filter((c) => set.has(c));
  }
  const effective = uid === 0 ? bounding : [];
  const noNewPrivs = sc.allowPrivilegeEscalation === false && sc.privileged !== true;

  const lower = (cs: string[]): string => cs.map((c) => `+${c.toLowerCase()}`).join(',');
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
  for (const n of names) {
    const bit = CAP_BITS[n];
    if (bit === undefined) throw new WeftError(ErrorCodes.SANDBOX, `unknown capability ${n}`, { field: 'capability' });
    m |= 1n << BigInt(bit);
  }
  return m;
}

const CAP_BITS: Record<string, number> = {
  CHOWN: 0, DAC_OVERRIDE: 1, DAC_READ_SEARCH: 2, FOWNER: 3, FSETID: 4, KILL: 5, SETGID: 6, SETUID: 7,
  SETPCAP: 8, LINUX_IMMUTABLE: 9, NET_BIND_SERVICE: 10, NET_BROADCAST: 11, NET_ADMIN: 12, NET_RAW: 13,
  IPC_LOCK: 14, IPC_OWNER: 15, SYS_MODULE: 16, SYS_RAWIO: 17, SYS_CHROOT: 18, SYS_PTRACE: 19,
  SYS_PACCT: 20, SYS_ADMIN: 21, SYS_BOOT: 22, SYS_NICE: 23, SYS_RESOURCE: 24, SYS_TIME: 25,
  SYS_TTY_CONFIG: 26, MKNOD: 27, LEASE: 28, AUDIT_WRITE: 29, AUDIT_CONTROL: 30, SETFCAP: 31,
  MAC_OVERRIDE: 32, MAC_ADMIN: 33, SYSLOG: 34, WAKE_ALARM: 35, BLOCK_SUSPEND: 36, AUDIT_READ: 37,
  PERFMON: 38, BPF: 39, CHECKPOINT_RESTORE: 40,
};
