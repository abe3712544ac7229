// `weft proxy` configuration: the flags of docs/flags.md (each also a WEFT_* env var), the
// downward-API env the injector sets, validated once with zod and frozen. Errors name the flag.
import { z } from 'zod';
import { flag, parseFlags, type FlagSpecs } from '../cli/flags.js';
import { ErrorCodes, WeftError, describeZodError } from '../errors/index.js';
import { LOG_LEVELS } from '../log/index.js';

export const DEFAULT_OPAQUE_PORTS = [25, 587, 3306, 4444, 5432, 6379, 9300, 11211] as const;
export const PROBE_KINDS = ['livez', 'readyz', 'startupz'] as const;
export type ProbeKind = (typeof PROBE_KINDS)[number];
/** Where the injector mounts the projected token (audience "weft") the controller stream needs. */
export const DEFAULT_TOKEN_DIR = '/var/run/secrets/weft.dev/serviceaccount';
export const DEFAULT_TOKEN_FILE = `${DEFAULT_TOKEN_DIR}/token`;

export const proxyFlagSpecs: FlagSpecs = {
  mode: { type: 'string', help: 'tproxy|ebpf|none: tproxy listeners get IP_TRANSPARENT; none: no interception' },
  'inbound-port': { type: 'string', help: 'inbound listener port (15006)' },
  'outbound-port': { type: 'string', help: 'outbound listener port (15001)' },
  'admin-port': { type: 'string', help: 'admin port: /ready /live /metrics /config /shutdown /app-health (15020)' },
  'proxy-mark': { type: 'string', help: 'SO_MARK on upstream sockets, 0 = none (0)' },
  'connect-timeout-ms': { type: 'string', help: 'upstream connect timeout (5000)' },
  'idle-timeout-ms': { type: 'string', help: 'close a relayed connection idle this long, 0 = never (3600000)' },
  'detect-timeout-ms': { type: 'string', help: 'protocol detection peek timeout (100)' },
  'opaque-ports': { type: 'string', help: `ports relayed as opaque TCP without detection (${DEFAULT_OPAQUE_PORTS.join(',')})` },
  'default-inbound-policy': { type: 'string', help: 'allow|deny when no policy selects the pod (allow)' },
  'policy-file': { type: 'string', help: 'AuthorizationPolicy YAML file, watched' },
  controller: { type: 'string', help: 'policy stream URL of weft controller (http:// or https://)' },
  'controller-ca': { type: 'string', help: 'PEM CA bundle that signed the --controller certificate, re-read at each connect (default: the system CAs)' },
  'controller-ca-pem': { type: 'string', help: 'the same CA bundle as PEM text; the injector sets it (env WEFT_CONTROLLER_CA_PEM)' },
  'token-file': { type: 'string', help: `bearer token for --controller, re-read at each connect (${DEFAULT_TOKEN_FILE})` },
  'log-level': { type: 'string', help: `${LOG_LEVELS.join('|')} (info)` },
  'access-log': { type: 'boolean', help: 'one JSON line per connection/request on stdout' },
  'drain-grace-ms': { type: 'string', help: 'on SIGTERM, wait this long for in-flight work (20000)' },
  relay: { type: 'string', help: 'native|js opaque TCP relay (native)' },
  'app-probes': { type: 'string', help: 'JSON {"<container>/<livez|readyz|startupz>": {httpGet|tcpSocket|grpc}}' },
  'pod-labels': { type: 'string', help: 'JSON {"<label>": "<value>"}: the pod labels policy files select on (set by the injector)' },
};

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

export interface PodInfo {
  name: string | undefined;
  namespace: string | undefined;
  uid: string | undefined;
  /** Pod IPs from WEFT_POD_IPS (comma-separated) or WEFT_POD_IP. */
  ips: string[];
  serviceAccount: string | undefined;
}

export interface ProxyConfig extends ProxyFlags {
  opaquePortSet: ReadonlySet<number>;
  pod: PodInfo;
}

/** WEFT_APP_PROBES is the documented env of --app-probes; parseFlags already maps it. */
export function podInfoFromEnv(env: NodeJS.ProcessEnv): PodInfo {
  const ips = (env.WEFT_POD_IPS ?? env.WEFT_POD_IP ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return { name: env.WEFT_POD_NAME || undefined, namespace: env.WEFT_POD_NAMESPACE || undefined, uid: env.WEFT_POD_UID || undefined, ips, serviceAccount: env.WEFT_SERVICE_ACCOUNT || undefined };
}

/** Flags (argv) + env → frozen config; `null` when --help was printed. */
export function parseProxyConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): Readonly<ProxyConfig> | null {
  const flags = parseFlags('proxy', 'The sidecar proxy: accepts intercepted connections, applies policy, records metrics, relays bytes.', proxyFlagSpecs, proxyFlagsSchema, argv, env);
  if (!flags) return null;
  return buildProxyConfig(flags, podInfoFromEnv(env));
}

export function buildProxyConfig(flags: ProxyFlags, pod: PodInfo): Readonly<ProxyConfig> {
  const cfg: ProxyConfig = { ...flags, opaquePortSet: new Set(flags.opaquePorts), pod: Object.freeze({ ...pod, ips: Object.freeze([...pod.ips]) as string[] }) };
  return Object.freeze(cfg);
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

/** The effective config without anything secret-like, for GET /config and the startup log. */
export function publicConfig(cfg: Readonly<ProxyConfig>): Record<string, unknown> {
  const { opaquePortSet: _set, appProbes, controller, controllerCaPem, ...rest } = cfg;
  let controllerShown: string | undefined;
  if (controller) {
    const u = new URL(controller);
    u.username = '';
    u.password = '';
    u.search = '';
    controllerShown = u.toString();
  }
  const probes: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(appProbes)) {
    // Probe headers may carry tokens: show their names only.
    probes[k] = 'httpGet' in p ? { httpGet: { ...p.httpGet, httpHeaders: p.httpGet.httpHeaders.map((h) => ({ name: h.name, value: '[redacted]' })) } } : p;
  }
  const caShown = controllerCaPem === undefined ? {} : { controllerCaPem: `(PEM, ${controllerCaPem.split('-----BEGIN CERTIFICATE-----').length - 1} certificate(s))` };
  return { ...rest, controller: controllerShown, ...caShown, appProbes: probes };
}
