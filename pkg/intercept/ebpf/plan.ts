// The eBPF interception plan as data: which objects, where they attach, the runtime config
// and the map entries. Pure: discovery and the loader live in index.ts.
import { ErrorCodes, WeftError } from '../../errors/index.js';
import type { BpfLoadSpec } from '../../native/bpf.js';
import type { InitConfig } from '../common.js';
import { cidrFamily } from '../common.js';
import { DIR_INBOUND, DIR_OUTBOUND, MAPS, encodeConfig, encodeLpmKey, encodePortKey, type BpfRuntimeConfig, type MapName } from './maps.js';

/** One object per attach point, in bpf/build; the program in each is `weft_<name>`. The
 * order is the attach order, which the loader follows as given: consumers of a map before
 * its producers (sk_msg before sockops fills local_socks, getsockopt before sockops hands
 * destinations over, sk_lookup once sockops can fill listeners), connect4/6 last so that
 * no connection is redirected before the rest of the path is in place. */
export const BPF_OBJECTS = ['sk_msg', 'getsockopt', 'sockops', 'sk_lookup', 'connect4', 'connect6'] as const;
export type BpfObjectName = (typeof BPF_OBJECTS)[number];
/** Programs attached to the pod cgroup (the rest: sk_lookup → netns link, sk_msg → map). */
export const CGROUP_PROGRAMS = ['weft_connect4', 'weft_connect6', 'weft_sockops', 'weft_getsockopt'] as const;

export interface EbpfPlan {
  cgroupPath: string;
  netnsPath: string;
  /** `<bpffs>/weft/<pod>` */
  pinDir: string;
  linkPinPath: string;
  /** Pin of local_socks, only with sk_msg (which it keeps attached). */
  sockhashPinPath: string | null;
  objects: string[];
  runtime: BpfRuntimeConfig;
  excludeInboundPorts: readonly number[];
  excludeOutboundPorts: readonly number[];
  excludeOutboundCidrs: readonly string[];
  /** null: every destination. */
  includeOutboundCidrs: readonly string[] | null;
  /** Test hook: smaller maps (map name → max entries). */
  maxEntries: Readonly<Record<string, number>>;
}

export interface PlanInputs {
  cgroupPath: string;
  netnsPath: string;
  bpffs: string;
  /** Directory name under <bpffs>/weft/: the pod UID (or a name derived from --cgroup). */
  podKey: string;
  objDir: string;
  ipv6: boolean;
  skMsg: boolean;
  maxEntries?: Readonly<Record<string, number>>;
}

export function pinDirOf(bpffs: string, podKey: string): string {
  return `${bpffs.replace(/\/+$/, '')}/weft/${podKey}`;
}

/** Every pin weft may make in a pod's directory, whatever the current run's options: the
 * sk_lookup link and the sk_msg sockhash. Cleanup and the sweep remove exactly these. */
export function podPins(pinDir: string): string[] {
  return [`${pinDir}/sk_lookup`, `${pinDir}/local_socks`];
}

/** The exclusion maps hold a fixed number of entries: a longer list is a flag error, found
 * before anything is loaded (not an E2BIG half-way through filling a map). */
function checkMapLimits(config: InitConfig, cidrs: { exclude: readonly string[]; include: readonly string[] | null }, maxEntries: Readonly<Record<string, number>>): void {
  const limit = (map: MapName): number => maxEntries[map] ?? MAPS[map].maxEntries;
  const ports = config.excludeInboundPorts.length + config.excludeOutboundPorts.length;
  if (ports > limit('excluded_ports')) {
    throw new WeftError(
      ErrorCodes.BAD_FLAG,
      `--exclude-inbound-ports and --exclude-outbound-ports: ${ports} ports together (15020 and 15021 included), at most ${limit('excluded_ports')} in ebpf mode (map excluded_ports)`,
      { field: '--exclude-outbound-ports' },
    );
  }
  for (const [flag, map, list] of [['--exclude-outbound-cidrs', 'excluded_cidrs', cidrs.exclude], ['--include-outbound-cidrs', 'included_cidrs', cidrs.include ?? []]] as const) {
    if (list.length > limit(map)) {
      throw new WeftError(ErrorCodes.BAD_FLAG, `${flag}: ${list.length} CIDRs, at most ${limit(map)} in ebpf mode (map ${map})`, { field: flag });
    }
  }
}

export function planEbpf(config: InitConfig, inputs: PlanInputs): EbpfPlan {
  const pinDir = pinDirOf(inputs.bpffs, inputs.podKey);
  const cidrsFor = (xs: readonly string[]): string[] => xs.filter((c) => inputs.ipv6 || cidrFamily(c) === 4);
  const exclude = cidrsFor(config.excludeOutboundCidrs);
  const include = config.includeOutboundCidrs === null ? null : cidrsFor(config.includeOutboundCidrs);
  checkMapLimits(config, { exclude, include }, inputs.maxEntries ?? {});
  return {
    cgroupPath: inputs.cgroupPath,
    netnsPath: inputs.netnsPath,
    pinDir,
    linkPinPath: `${pinDir}/sk_lookup`,
    sockhashPinPath: inputs.skMsg ? `${pinDir}/local_socks` : null,
    objects: BPF_OBJECTS.filter((o) => inputs.skMsg || o !== 'sk_msg').map((o) => `${inputs.objDir}/${o}.bpf.o`),
    runtime: {
      proxyUid: config.proxyUid,
      proxyGid: config.proxyGid,
      outboundPort: config.outboundPort,
      inboundPort: config.inboundPort,
      ipv6: inputs.ipv6,
      includeAll: config.includeOutboundCidrs === null,
      skMsg: inputs.skMsg,
    },
    excludeInboundPorts: config.excludeInboundPorts,
    excludeOutboundPorts: config.excludeOutboundPorts,
    excludeOutboundCidrs: exclude,
    includeOutboundCidrs: include,
    // Without sk_msg nothing enters local_socks; sockops still names it, so it exists, but
    // with one entry instead of 65536 (1 MiB of hash buckets saved per pod).
    maxEntries: { ...(inputs.skMsg ? {} : { local_socks: 1 }), ...inputs.maxEntries },
  };
}

const ONE = Buffer.from([1]);

export function toLoadSpec(plan: EbpfPlan): BpfLoadSpec {
  return {
    objects: plan.objects,
    cgroupPath: plan.cgroupPath,
    netnsPath: plan.netnsPath,
    linkPinPath: plan.linkPinPath,
    sockhashPinPath: plan.sockhashPinPath,
    rodata: encodeConfig(plan.runtime),
    maxEntries: { ...plan.maxEntries },
    mapEntries: [
      ...plan.excludeInboundPorts.map((p) => ({ map: 'excluded_ports', key: encodePortKey(p, DIR_INBOUND), value: ONE })),
      ...plan.excludeOutboundPorts.map((p) => ({ map: 'excluded_ports', key: encodePortKey(p, DIR_OUTBOUND), value: ONE })),
      ...plan.excludeOutboundCidrs.map((c) => ({ map: 'excluded_cidrs', key: encodeLpmKey(c), value: ONE })),
      ...(plan.includeOutboundCidrs ?? []).map((c) => ({ map: 'included_cidrs', key: encodeLpmKey(c), value: ONE })),
    ],
  };
}

/** The plan as the lines `--dry-run` prints. */
export function describePlan(plan: EbpfPlan): string[] {
  const r = plan.runtime;
  const list = (xs: readonly (string | number)[] | null, none: string): string => (xs === null ? none : xs.length ? xs.join(',') : 'none');
  const lines = [
    `config: proxy uid ${r.proxyUid} gid ${r.proxyGid} exempt; outbound -> 127.0.0.1:${r.outboundPort}${r.ipv6 ? ` and [::1]:${r.outboundPort}` : ' (IPv6 off)'}; inbound -> listener on :${r.inboundPort}`,
    `exclude inbound ports: ${list(plan.excludeInboundPorts, 'none')}`,
    `exclude outbound ports: ${list(plan.excludeOutboundPorts, 'none')}`,
    `exclude outbound cidrs: ${list(plan.excludeOutboundCidrs, 'none')} (+ loopback)`,
    `include outbound cidrs: ${list(plan.includeOutboundCidrs, 'all')}`,
  ];
  lines.push(`load ${plan.objects.length} objects (maps shared), fill the exclusion maps, then attach in this order:`);
  plan.objects.forEach((o, i) => {
    const name = o.slice(o.lastIndexOf('/') + 1, -'.bpf.o'.length);
    const step = `${i + 1}. attach weft_${name} (${o})`;
    if (name === 'sk_lookup') lines.push(`${step} to netns ${plan.netnsPath} as a link pinned at ${plan.linkPinPath}`);
    else if (name === 'sk_msg') lines.push(`${step} to map local_socks, pinned at ${plan.sockhashPinPath ?? '?'}`);
    else lines.push(`${step} to cgroup ${plan.cgroupPath} (BPF_F_ALLOW_MULTI)`);
  });
  return lines;
}

/** What `--cleanup` does, as `--dry-run --cleanup` prints it. */
export function describeCleanup(plan: Pick<EbpfPlan, 'cgroupPath' | 'pinDir'>): string[] {
  return [`detach weft_* programs from cgroup ${plan.cgroupPath}`, ...podPins(plan.pinDir).map((p) => `unpin ${p} (if present)`), `remove ${plan.pinDir} (if empty)`];
}
