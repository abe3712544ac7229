// `weft proxy` configuration: the flags of docs/flags.md (each also a WEFT_* env var), the
// downward-API env the injector sets, validated once with zod and frozen. Errors name the flag.
import { z } from 'zod';
import { flag, parseFlags } from '../cli/flags.js';
import { ErrorCodes, WeftError, describeZodError } from '../errors/index.js';
import { LOG_LEVELS } from '../log/levels.js';
import { DEFAULT_OPAQUE_PORTS, DEFAULT_TOKEN_FILE, PROBE_KINDS, buildProxyConfig, podInfoFromEnv, proxyFlagSpecs, type PodInfo, type ProxyConfig } from './proxy-flags.js';

export * from './proxy-flags.js';

const portList = z
  .string()
  .transform((s, ctx) => {
    const out: number[] = [];
    for (const part of s.split(',')) {
      const p = part.trim();
      if (p === '') continue;
      const n = Number(p);
      if (!/^\d+$/.test(p) || n < 1 || n > 65535) {
        ctx.addIssue({ code: 'custom', message: `"${p}" is not a port; allowed: comma-separated numbers 1-65535` });
        return z.NEVER;
      }
      out.push(n);
    }
    return out;
  });

const httpGetProbe = z
  .object({
    port: z.number().int().min(1).max(65535),
    path: z.string().startsWith('/', 'must start with /').default('/'),
    scheme: z.enum(['HTTP', 'HTTPS']).default('HTTP'),
    host: z.string().optional(),
    httpHeaders: z.array(z.object({ name: z.string().min(1), value: z.string() }).strict()).default([]),
  })
  .strict();
const tcpProbe = z.object({ port: z.number().int().min(1).max(65535), host: z.string().optional() }).strict();
/** grpc.health.v1 Health/Check over plaintext HTTP/2, as the kubelet does; service "" is the server's overall health. */
const grpcProbe = z.object({ port: z.number().int().min(1).max(65535), service: z.string().default('') }).strict();
const timeoutSeconds = z.number().positive().optional();
export const appProbeSchema = z.union([
  z.object({ httpGet: httpGetProbe, timeoutSeconds }).strict(),
  z.object({ tcpSocket: tcpProbe, timeoutSeconds }).strict(),
  z.object({ grpc: grpcProbe, timeoutSeconds }).strict(),
]);
export type AppProbe = z.output<typeof appProbeSchema>;
const probeKey = z.string().regex(new RegExp(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?/(${PROBE_KINDS.join('|')})$`), `keys must be "<container>/<${PROBE_KINDS.join('|')}>"`);
export const appProbesSchema = z.record(probeKey, appProbeSchema);

const appProbesJson = z.string().transform((s, ctx) => {
  let raw: unknown;
  try {
    raw = JSON.parse(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `not JSON (${(e as Error).message})` });
    return z.NEVER;
  }
  const r = appProbesSchema.safeParse(raw);
  if (!r.success) {
    ctx.addIssue({ code: 'custom', message: describeZodError(r.error) });
    return z.NEVER;
  }
  return r.data;
});

// The labels at admission: the file source selects `spec.selector.matchLabels` with them.
const podLabelsJson = z.string().transform((s, ctx) => {
  let raw: unknown;
  try {
    raw = JSON.parse(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `not JSON (${(e as Error).message}); allowed: an object of label name to string value` });
    return z.NEVER;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    ctx.addIssue({ code: 'custom', message: 'must be a JSON object of label name to string value, e.g. {"app":"web"}' });
    return z.NEVER;
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k === '' || typeof v !== 'string') {
      ctx.addIssue({ code: 'custom', message: k === '' ? 'a label name is empty' : `label "${k}": value must be a string, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    out[k] = v;
  }
  return Object.freeze(out);
});

export const proxyFlagsSchema = z
  .object({
    mode: z.enum(['tproxy', 'ebpf', 'none'], { error: 'allowed: tproxy, ebpf, none' }).default('tproxy'),
    inboundPort: flag.port().default(15006),
    outboundPort: flag.port().default(15001),
    adminPort: flag.port().default(15020),
    proxyMark: flag.id().default(0),
    connectTimeoutMs: flag.durationMs().min(1, 'must be >= 1').default(5000),
    idleTimeoutMs: flag.durationMs().default(3_600_000),
    detectTimeoutMs: flag.durationMs().default(100),
    opaquePorts: portList.default([...DEFAULT_OPAQUE_PORTS]),
    defaultInboundPolicy: z.enum(['allow', 'deny'], { error: 'allowed: allow, deny' }).default('allow'),
    policyFile: z.string().min(1).optional(),
    controller: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
    controllerCa: z.string().min(1, 'must be a file path').optional(),
    controllerCaPem: z.string().includes('-----BEGIN CERTIFICATE-----', { error: 'must be PEM text with at least one "-----BEGIN CERTIFICATE-----" block' }).optional(),
    tokenFile: z.string().min(1, 'must be a file path').default(DEFAULT_TOKEN_FILE),
    logLevel: z.enum(LOG_LEVELS, { error: `allowed: ${LOG_LEVELS.join(', ')}` }).default('info'),
    accessLog: z.boolean().default(false),
    drainGraceMs: flag.durationMs().default(20_000),
    relay: z.enum(['native', 'js'], { error: 'allowed: native, js' }).default('native'),
    appProbes: appProbesJson.default({}),
    podLabels: podLabelsJson.default({}),
  })
  .strict()
  .superRefine((v, ctx) => {
    const ports = [v.inboundPort, v.outboundPort, v.adminPort];
    if (new Set(ports).size !== ports.length) ctx.addIssue({ code: 'custom', path: ['adminPort'], message: 'inbound, outbound and admin ports must differ' });
    for (const key of ['controllerCa', 'controllerCaPem'] as const) {
      if (v[key] === undefined) continue;
      if (!v.controller?.startsWith('https:')) ctx.addIssue({ code: 'custom', path: [key], message: 'needs an https:// --controller URL (it is the CA that verifies the controller)' });
    }
    if (v.controllerCa !== undefined && v.controllerCaPem !== undefined) ctx.addIssue({ code: 'custom', path: ['controllerCaPem'], message: 'give the CA once: --controller-ca FILE or --controller-ca-pem PEM, not both' });
  });

export type ProxyFlags = z.output<typeof proxyFlagsSchema>;

/** Flags (argv) + env → frozen config; `null` when --help was printed. */
export function parseProxyConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): Readonly<ProxyConfig> | null {
  const flags = parseFlags('proxy', 'The sidecar proxy: accepts intercepted connections, applies policy, records metrics, relays bytes.', proxyFlagSpecs, proxyFlagsSchema, argv, env);
  if (!flags) return null;
  return buildProxyConfig(flags, podInfoFromEnv(env));
}

/** A config for tests and programmatic use: defaults + overrides, validated like flags. */
export function proxyConfigFrom(overrides: Partial<Record<keyof ProxyFlags, unknown>>, pod: Partial<PodInfo> = {}): Readonly<ProxyConfig> {
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) continue;
    raw[k] = (k === 'appProbes' || k === 'podLabels') && typeof v !== 'string' ? JSON.stringify(v) : k === 'opaquePorts' && Array.isArray(v) ? v.join(',') : v;
  }
  const r = proxyFlagsSchema.safeParse(raw);
  if (!r.success) throw new WeftError(ErrorCodes.BAD_CONFIG, describeZodError(r.error, 'proxy.'), { field: `proxy.${String(r.error.issues[0]?.path[0] ?? '')}` });
  return buildProxyConfig(r.data, { name: undefined, namespace: undefined, uid: undefined, ips: [], serviceAccount: undefined, ...pod });
}

