// The `weft init` configuration shared by both interception modes: one zod schema over the
// flags of docs/flags.md (and their WEFT_* env), validated once in cmd/init and handed,
// frozen, to `runTproxyInit(config)` or `runEbpfInit(config)`. The zod-free pieces (names,
// flag specs, CIDR text) live in init-flags.ts, which the init container's fast path uses.
import { z } from 'zod';
import { flag } from '../cli/flags.js';
import { ALWAYS_EXCLUDED_INBOUND_PORTS, INIT_MODES, IPTABLES_BACKENDS, IPV6_SETTINGS, normalizeCidr } from './init-flags.js';

export * from './init-flags.js';

/** Lists arrive as "a,b,c" (flag or env); blanks are dropped. */
const splitList = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.flatMap((x) => String(x).split(','));
  if (typeof v === 'string') return v.split(',');
  return v;
};
const trimmed = (xs: unknown): unknown => (Array.isArray(xs) ? xs.map((x) => String(x).trim()).filter((x) => x !== '') : xs);

const portList = () =>
  z.preprocess((v) => trimmed(splitList(v)), z.array(flag.port())).transform((ps) => [...new Set(ps)].sort((a, b) => a - b));

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
    skMsg: z.enum(['on', 'off'], { error: (i) => `"${String(i.input)}" is not allowed; allowed: on, off` }).default('off'),
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

