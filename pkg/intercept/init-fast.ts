// The init container's fast path to its config, without loading zod. Importing zod (about a
// hundred modules) costs the init ~60 ms of its 100 ms budget, yet the injector's arguments are
// plain: numbers, lists, CIDRs, enums. This parser takes only that plain form, and returns the
// very object initSchema would; anything else — --help, an odd spelling, any error — returns
// null, and cmd/init asks the zod schema, which stays the source of truth (its errors, its
// help). init-fast.test.ts checks both agree on a corpus that includes the injector's args.
import { parseArgs } from 'node:util';
import type { InitConfig } from './common.js';
import { ALWAYS_EXCLUDED_INBOUND_PORTS, INIT_MODES, IPTABLES_BACKENDS, IPV6_SETTINGS, initFlagSpecs, normalizeCidr } from './init-flags.js';

/** Thrown inside the parser: this input is for zod to judge. */
class NotPlain extends Error {}
const notPlain = (): never => {
  throw new NotPlain();
};

const envName = (flag: string): string => `WEFT_${flag.toUpperCase().replaceAll('-', '_')}`;
const camel = (flag: string): string => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

const int = (s: string, min: number, max: number): number => {
  const n = /^\d{1,10}$/.test(s) ? Number(s) : Number.NaN;
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : notPlain();
};
const u32 = (s: string, min: number, reserved: readonly number[] = []): number => {
  const t = s.trim();
  const n = /^0x[0-9a-f]{1,8}$/i.test(t) ? Number.parseInt(t, 16) : /^\d{1,10}$/.test(t) ? Number(t) : Number.NaN;
  return Number.isSafeInteger(n) && n >= min && n <= 0xffffffff && !reserved.includes(n) ? n : notPlain();
};
const items = (s: string): string[] => s.split(',').map((x) => x.trim()).filter((x) => x !== '');
const ports = (s: string, always: readonly number[] = []): number[] => [...new Set([...items(s).map((p) => int(p, 1, 65535)), ...always])].sort((a, b) => a - b);
const cidrs = (s: string): string[] => items(s).map((c) => normalizeCidr(c) ?? notPlain());
const oneOf = <T extends string>(s: string, allowed: readonly T[]): T => (allowed as readonly string[]).includes(s) ? (s as T) : notPlain();
const bool = (v: string | boolean): boolean => (typeof v === 'boolean' ? v : /^(1|true|yes)$/i.test(v) ? true : /^(0|false|no)$/i.test(v) ? false : notPlain());

/** The config initSchema would give for these flags and env, or null when zod must decide. */
export function fastInitConfig(argv: readonly string[], env: NodeJS.ProcessEnv): InitConfig | null {
  try {
    const options = Object.fromEntries(Object.entries(initFlagSpecs).map(([k, v]) => [k, { type: v.type }]));
    const { values } = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false });
    if (values.help) return null;
    // Flags win over env; an empty env var is unset (as pkg/cli/flags.ts reads them).
    const raw: Record<string, string | boolean | undefined> = {};
    for (const name of Object.keys(initFlagSpecs)) {
      const v = (values as Record<string, string | boolean | undefined>)[name];
      const e = env[envName(name)];
      raw[camel(name)] = v !== undefined ? v : e !== undefined && e !== '' ? e : undefined;
    }
    const str = (k: string): string | undefined => {
      const v = raw[k];
      return typeof v === 'string' ? v : v === undefined ? undefined : notPlain();
    };
    const get = <T>(k: string, parse: (s: string) => T, dflt: T): T => {
      const v = str(k);
      return v === undefined ? dflt : parse(v);
    };
    const nonEmpty = (k: string): string | undefined => {
      const v = str(k);
      return v === undefined ? undefined : v.length > 0 ? v : notPlain();
    };
    const include = get('includeOutboundCidrs', (s) => (items(s).length === 0 || (items(s).length === 1 && items(s)[0] === '*') ? null : cidrs(s)), null);
    const c = {
      mode: get('mode', (s) => oneOf(s, INIT_MODES), 'tproxy' as const),
      proxyUid: get('proxyUid', (s) => int(s, 0, 4294967294), 1337),
      proxyGid: get('proxyGid', (s) => int(s, 0, 4294967294), 1337),
      inboundPort: get('inboundPort', (s) => int(s, 1, 65535), 15006),
      outboundPort: get('outboundPort', (s) => int(s, 1, 65535), 15001),
      excludeInboundPorts: get('excludeInboundPorts', (s) => ports(s, ALWAYS_EXCLUDED_INBOUND_PORTS), [...ALWAYS_EXCLUDED_INBOUND_PORTS]),
      excludeOutboundPorts: get('excludeOutboundPorts', (s) => ports(s), []),
      excludeOutboundCidrs: get('excludeOutboundCidrs', cidrs, []),
      includeOutboundCidrs: include,
      ipv6: get('ipv6', (s) => oneOf(s, IPV6_SETTINGS), 'auto' as const),
      dryRun: raw.dryRun === undefined ? false : bool(raw.dryRun),
      cleanup: raw.cleanup === undefined ? false : bool(raw.cleanup),
      mark: get('mark', (s) => u32(s, 1), 0x539),
      routeTable: get('routeTable', (s) => u32(s, 1, [253, 254, 255]), 133),
      proxyMark: get('proxyMark', (s) => u32(s, 0), 0),
      iptablesBackend: get('iptablesBackend', (s) => oneOf(s, IPTABLES_BACKENDS), 'auto' as const),
      podUid: nonEmpty('podUid'),
      cgroup: nonEmpty('cgroup'),
      cgroupRoot: nonEmpty('cgroupRoot'),
      bpffs: nonEmpty('bpffs') ?? '/sys/fs/bpf',
      skMsg: get('skMsg', (s) => oneOf(s, ['on', 'off'] as const), 'off' as const),
    };
    if (c.inboundPort === c.outboundPort || (c.proxyMark !== 0 && c.proxyMark === c.mark)) return null;
    // Optional fields zod leaves out when absent.
    for (const k of ['podUid', 'cgroup', 'cgroupRoot'] as const) if (c[k] === undefined) delete c[k];
    return Object.freeze(c) as InitConfig;
  } catch (e) {
    if (e instanceof NotPlain || (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) return null;
    throw e;
  }
}
