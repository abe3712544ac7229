// The `weft init` configuration shared by both interception modes: one zod schema over the
// flags of docs/flags.md (and their WEFT_* env), validated once in cmd/init and handed,
// frozen, to `runTproxyInit(config)` or `runEbpfInit(config)`.
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { flag, type FlagSpecs } from '../cli/flags.js';

/** Ports never intercepted inbound: the proxy admin port and the app-probe port. */
export const ALWAYS_EXCLUDED_INBOUND_PORTS: readonly number[] = [15020, 15021];

export const INIT_MODES = ['tproxy', 'ebpf'] as const;
export type InitMode = (typeof INIT_MODES)[number];
export const IPV6_SETTINGS = ['auto', 'on', 'off'] as const;
export const IPTABLES_BACKENDS = ['auto', 'nft', 'legacy'] as const;
export type IptablesBackendSetting = (typeof IPTABLES_BACKENDS)[number];

/** Lists arrive as "a,b,c" (flag or env); blanks are dropped. */
const splitList = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.flatMap((x) => String(x).split(','));
  if (typeof v === 'string') return v.split(',');
  return v;
};
const trimmed = (xs: unknown): unknown => (Array.isArray(xs) ? xs.map((x) => String(x).trim()).filter((x) => x !== '') : xs);

const portList = () =>
  z.preprocess((v) => trimmed(splitList(v)), z.array(flag.port())).transform((ps) => [...new Set(ps)].sort((a, b) => a - b));

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

const cidrList = () =>
  z.preprocess(
    (v) => trimmed(splitList(v)),
    z.array(
      z.string().transform((s, ctx) => {
        const c = normalizeCidr(s);
        if (c === null) {
          ctx.addIssue({ code: 'custom', message: `"${s}" is not a CIDR; allowed: IPv4 a.b.c.d/0-32 or IPv6 x::y/0-128 (bare address = host)` });
          return z.NEVER;
        }
        return c;
      }),
    ),
  );

/**
 * `*` (the default) and an empty list both mean every destination: null — as the chart value
 * (`init.includeOutboundCidrs: []`) and the injector (which passes nothing then) mean it. To
 * intercept no outbound destination, exclude them: `--exclude-outbound-cidrs 0.0.0.0/0,::/0`.
 */
const includeCidrs = () =>
  z.preprocess((v, ctx) => {
    const list = trimmed(splitList(v));
    if (!Array.isArray(list)) return list;
    if (list.length === 0 || (list.length === 1 && list[0] === '*')) return null;
    if (list.includes('*')) ctx.addIssue({ code: 'custom', message: `"*" (every destination) must be alone, not in a list; got "${list.join(',')}"` });
    return list.filter((c) => c !== '*');
  }, cidrList().nullable());

/** Decimal or 0x-hex unsigned 32-bit number, >= min (1 unless said). */
const u32 = (what: string, reserved: readonly number[] = [], min = 1) =>
  z
    .union([z.number(), z.string()])
    .transform((v, ctx) => {
      const s = String(v).trim();
      const n = /^0x[0-9a-f]+$/i.test(s) ? Number.parseInt(s, 16) : /^\d+$/.test(s) ? Number(s) : Number.NaN;
      if (!Number.isSafeInteger(n) || n < min || n > 0xffffffff || reserved.includes(n)) {
        const res = reserved.length ? ` except ${reserved.join(', ')}` : '';
        ctx.addIssue({ code: 'custom', message: `"${s}" is not a valid ${what}; allowed: ${min}-4294967295 (decimal or 0x hex)${res}` });
        return z.NEVER;
      }
      return n;
    });

export const initSchema = z
  .object({
    mode: z.enum(INIT_MODES, { error: (i) => `"${String(i.input)}" is not a mode; allowed: ${INIT_MODES.join(', ')}` }).default('tproxy'),
    proxyUid: flag.id().default(1337),
    proxyGid: flag.id().default(1337),
    inboundPort: flag.port().default(15006),
    outboundPort: flag.port().default(15001),
    excludeInboundPorts: portList()
      .default([])
      .transform((ps) => [...new Set([...ps, ...ALWAYS_EXCLUDED_INBOUND_PORTS])].sort((a, b) => a - b)),
    excludeOutboundPorts: portList().default([]),
    excludeOutboundCidrs: cidrList().default([]),
    includeOutboundCidrs: includeCidrs().default(null),
    ipv6: z.enum(IPV6_SETTINGS, { error: (i) => `"${String(i.input)}" is not allowed; allowed: ${IPV6_SETTINGS.join(', ')}` }).default('auto'),
    dryRun: z.boolean().default(false),
    cleanup: z.boolean().default(false),
    // tproxy only
    mark: u32('fwmark').default(0x539),
    routeTable: u32('route table', [253, 254, 255]).default(133),
    proxyMark: u32('fwmark', [], 0).default(0),
    iptablesBackend: z
      .enum(IPTABLES_BACKENDS, { error: (i) => `"${String(i.input)}" is not allowed; allowed: ${IPTABLES_BACKENDS.join(', ')}` })
      .default('auto'),
    // ebpf only
    podUid: z.string().min(1).optional(),
    cgroup: z.string().min(1).optional(),
    cgroupRoot: z.string().min(1).optional(),
    bpffs: z.string().min(1).default('/sys/fs/bpf'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.inboundPort === c.outboundPort) {
      ctx.addIssue({ code: 'custom', path: ['outboundPort'], message: `must differ from --inbound-port (${c.inboundPort})` });
    }
    if (c.proxyMark !== 0 && c.proxyMark === c.mark) {
      const m = `0x${c.mark.toString(16)}`;
      ctx.addIssue({ code: 'custom', path: ['proxyMark'], message: `must differ from --mark (${m}): the policy route would send the proxy's own upstream packets back to it` });
    }
  });

/** The validated, frozen `weft init` configuration both modes receive. */
export type InitConfig = Readonly<z.output<typeof initSchema>>;

/** Flags only one mode reads (flag names of initFlagSpecs). Given with the other mode they
 * would do nothing, so `weft init` refuses them (their WEFT_* env vars are ambient: ignored). */
export const MODE_ONLY_FLAGS: Readonly<Record<InitMode, readonly string[]>> = {
  tproxy: ['mark', 'route-table', 'iptables-backend', 'proxy-mark'],
  ebpf: ['pod-uid', 'cgroup', 'cgroup-root', 'bpffs'],
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
} satisfies FlagSpecs;

export const INIT_SUMMARY = 'Program traffic interception inside the pod (tproxy: netfilter TPROXY rules; ebpf: cgroup and sk_lookup programs).';
