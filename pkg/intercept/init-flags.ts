// The zod-free half of the `weft init` flags: names, allowed values, the flag specs (docs/flags.md)
// and CIDR text. common.ts builds the zod schema (the source of truth) from these; init-fast.ts
// uses them to parse the init container's flags without loading zod.
import { isIPv4, isIPv6 } from 'node:net';
import type { FlagSpecs } from '../cli/flags.js';

/** Ports never intercepted inbound: the proxy admin port and the app-probe port. */
export const ALWAYS_EXCLUDED_INBOUND_PORTS: readonly number[] = [15020, 15021];

export const INIT_MODES = ['tproxy', 'ebpf'] as const;
export type InitMode = (typeof INIT_MODES)[number];
export const IPV6_SETTINGS = ['auto', 'on', 'off'] as const;
export const IPTABLES_BACKENDS = ['auto', 'nft', 'legacy'] as const;
export type IptablesBackendSetting = (typeof IPTABLES_BACKENDS)[number];

/** "10.0.0.0/8", "fd00::/8", or a bare address (host route). Returns the canonical text or null. */
export function normalizeCidr(text: string): string | null {
  const [addr, prefix, extra] = text.split('/');
  if (addr === undefined || extra !== undefined) return null;
  const family = isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : 0;
  if (family === 0) return null;
  const max = family === 4 ? 32 : 128;
  if (prefix === undefined) return `${addr}/${max}`;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return null;
  return `${addr}/${Number(prefix)}`;
}

export const cidrFamily = (cidr: string): 4 | 6 => (cidr.includes(':') ? 6 : 4);

/** Flags only one mode reads (names of initFlagSpecs). Given with the other mode they
 * would do nothing, so `weft init` refuses them (their WEFT_* env vars are ambient: ignored). */
export const MODE_ONLY_FLAGS: Readonly<Record<InitMode, readonly string[]>> = {
  tproxy: ['mark', 'route-table', 'iptables-backend', 'proxy-mark'],
  ebpf: ['pod-uid', 'cgroup', 'cgroup-root', 'bpffs', 'sk-msg'],
};

/** The flag names given on the command line (`--name`, `--name=value`); values are not options. */
export const givenFlags = (argv: readonly string[]): string[] => argv.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')[0] ?? '');

/** The first flag of `argv` that belongs to the other mode, with the error to give, or null. */
export function otherModeFlag(mode: InitMode, argv: readonly string[]): { flag: string; message: string } | null {
  const other = INIT_MODES.find((m) => m !== mode) ?? mode;
  const flag = givenFlags(argv).find((f) => MODE_ONLY_FLAGS[other].includes(f));
  if (flag === undefined) return null;
  return { flag: `--${flag}`, message: `--${flag} applies to --mode ${other} only; this is --mode ${mode} (drop the flag, or use --mode ${other})` };
}

/** Flag specs for `weft init` (names as in docs/flags.md; camelCase keys of initSchema). */
export const initFlagSpecs = {
  mode: { type: 'string', help: 'interception mode: tproxy|ebpf (default tproxy)' },
  'proxy-uid': { type: 'string', help: "the proxy's uid, never intercepted (default 1337)" },
  'proxy-gid': { type: 'string', help: "the proxy's gid, never intercepted (default 1337)" },
  'inbound-port': { type: 'string', help: 'proxy inbound listener (default 15006)' },
  'outbound-port': { type: 'string', help: 'proxy outbound listener (default 15001)' },
  'exclude-inbound-ports': { type: 'string', help: 'inbound ports not intercepted, comma-separated (15020,15021 always)' },
  'exclude-outbound-ports': { type: 'string', help: 'outbound ports not intercepted, comma-separated' },
  'exclude-outbound-cidrs': { type: 'string', help: 'outbound destinations not intercepted, comma-separated CIDRs' },
  'include-outbound-cidrs': { type: 'string', help: 'only these outbound destinations are intercepted (default * or empty: all)' },
  ipv6: { type: 'string', help: 'program IPv6 too: auto|on|off (default auto: if the pod has an IPv6 address)' },
  'dry-run': { type: 'boolean', help: 'print the plan, change nothing' },
  cleanup: { type: 'boolean', help: 'remove exactly what weft added' },
  mark: { type: 'string', help: 'tproxy: fwmark for diverted packets (default 0x539)' },
  'route-table': { type: 'string', help: 'tproxy: policy routing table (default 133)' },
  'iptables-backend': { type: 'string', help: 'tproxy: auto|nft|legacy (default auto: detected)' },
  'proxy-mark': { type: 'string', help: "tproxy: the proxy's --proxy-mark, exempt from interception (default 0: none)" },
  'pod-uid': { type: 'string', help: 'ebpf: pod UID, finds the pod cgroup (downward API)' },
  cgroup: { type: 'string', help: 'ebpf: pod-level cgroup directory (overrides discovery)' },
  'cgroup-root': { type: 'string', help: 'ebpf: host cgroup2 mount as seen here (default: from /proc/mounts)' },
  bpffs: { type: 'string', help: 'ebpf: host bpffs as seen here (default /sys/fs/bpf)' },
  'sk-msg': { type: 'string', help: 'ebpf: on|off, short-circuit proxy-to-app bytes with sk_msg (default off, see docs/ebpf.md)' },
} satisfies FlagSpecs;

export const INIT_SUMMARY = 'Program traffic interception inside the pod (tproxy: netfilter TPROXY rules; ebpf: cgroup and sk_lookup programs).';
