// `weft proxy` configuration, the zod-free half: the flag specs of docs/flags.md, defaults,
// the downward-API pod info, the config shape and what GET /config shows. The zod schema in
// proxy-config.ts stays the source of truth; this half lets the proxy's fast path
// (proxy-fast.ts) run without importing zod, which costs every sidecar ~16 MiB of RSS.
import type { FlagSpecs } from '../cli/flag-specs.js';
import { LOG_LEVELS } from '../log/levels.js';
import type { ProxyFlags } from './proxy-config.js';

export const DEFAULT_OPAQUE_PORTS = [25, 587, 3306, 4444, 5432, 6379, 9300, 11211] as const;
export const PROBE_KINDS = ['livez', 'readyz', 'startupz'] as const;
export type ProbeKind = (typeof PROBE_KINDS)[number];
/** Where the injector mounts the projected token (audience "weft") the controller stream needs. */
export const DEFAULT_TOKEN_DIR = '/var/run/secrets/weft.dev/serviceaccount';
export const DEFAULT_TOKEN_FILE = `${DEFAULT_TOKEN_DIR}/token`;

export const proxyFlagSpecs = {
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
} satisfies FlagSpecs;

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

export function buildProxyConfig(flags: ProxyFlags, pod: PodInfo): Readonly<ProxyConfig> {
  const cfg: ProxyConfig = { ...flags, opaquePortSet: new Set(flags.opaquePorts), pod: Object.freeze({ ...pod, ips: Object.freeze([...pod.ips]) as string[] }) };
  return Object.freeze(cfg);
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
