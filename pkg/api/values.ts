// The chart values (values.yaml) as one zod schema: the Helm chart generates
// values.schema.json (additionalProperties:false) from it, and `weft controller --values`
// and `weft inject --values` read the same YAML. Every field is described, every object is
// strict, so a typo fails with the field named.
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { ErrorCodes, WeftError, fromZod } from '../errors/index.js';

/** A Kubernetes resource quantity such as `100m`, `64Mi`, `1.5`, `1e3`. */
export const QUANTITY_RE = /^(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$/;
export const quantity = () => z.string().regex(QUANTITY_RE, 'must be a Kubernetes quantity such as 100m, 0.5, 64Mi or 1Gi');

// An IPv4 or IPv6 address with an optional prefix length, as one regular expression (no
// lookaround) so values.schema.json carries it as a `pattern` and `helm install` rejects a bad
// CIDR too; pkg/api/values.test.ts checks it against node:net's isIPv4/isIPv6.
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const V4 = `(${OCTET}\\.){3}${OCTET}`;
const H = '[0-9a-fA-F]{1,4}';
const V6 = [
  `(${H}:){7}${H}`,
  `(${H}:){1,7}:`,
  `(${H}:){1,6}:${H}`,
  `(${H}:){1,5}(:${H}){1,2}`,
  `(${H}:){1,4}(:${H}){1,3}`,
  `(${H}:){1,3}(:${H}){1,4}`,
  `(${H}:){1,2}(:${H}){1,5}`,
  `${H}:(:${H}){1,6}`,
  `:((:${H}){1,7}|:)`,
  `(${H}:){6}${V4}`,
  `(${H}:){1,5}:${V4}`,
  `::(${H}:){0,5}${V4}`,
].join('|');
export const CIDR_RE = new RegExp(`^(${V4}(/(3[0-2]|[12]?[0-9]))?|(${V6})(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)$`);
export const CIDR_HINT = 'an IPv4/IPv6 CIDR or address such as 10.0.0.0/8, 10.1.2.3 or fd00::/8';
export const isCidr = (s: string): boolean => CIDR_RE.test(s);
const cidr = () => z.string().regex(CIDR_RE, `must be ${CIDR_HINT}`);

export const INTERCEPT_MODES = ['tproxy', 'ebpf'] as const;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;
export const INBOUND_POLICIES = ['allow', 'deny'] as const;
export const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;

const port = () => z.number().int().min(1).max(65535);
const id = () => z.number().int().min(0).max(4294967294);

const resourceList = () =>
  z
    .strictObject({
      cpu: quantity().optional().describe('CPU, e.g. 100m (unset: none)'),
      memory: quantity().optional().describe('memory, e.g. 64Mi (unset: none)'),
    })
    .describe('a resource list (cpu, memory)');

const resources = (requests: { cpu?: string; memory?: string }, limits: { cpu?: string; memory?: string }) =>
  z
    .strictObject({
      requests: resourceList().prefault(requests).describe('resource requests'),
      limits: resourceList().prefault(limits).describe('resource limits'),
    })
    .prefault({})
    .describe('container resources');

const ImageSchema = z
  .strictObject({
    repository: z.string().min(1).default('ghcr.io/weft-dev/weft').describe('image repository of the weft image (init, proxy and controller)'),
    tag: z.string().default('').describe('image tag; empty means the weft version (the chart appVersion)'),
    pullPolicy: z.enum(PULL_POLICIES).default('IfNotPresent').describe('imagePullPolicy of the injected containers'),
  })
  .prefault({})
  .describe('the weft container image');

const ProxySchema = z
  .strictObject({
    resources: resources({ cpu: '100m', memory: '64Mi' }, { memory: '256Mi' }).describe(
      'proxy resources; annotations weft.dev/proxy-cpu and weft.dev/proxy-memory set the request (and the limit when one is configured), weft.dev/proxy-cpu-limit and weft.dev/proxy-memory-limit the limit',
    ),
    logLevel: z.enum(LOG_LEVELS).default('info').describe('proxy log level (annotation weft.dev/log-level)'),
    ports: z
      .strictObject({
        inbound: port().default(15006).describe('inbound listener'),
        outbound: port().default(15001).describe('outbound listener'),
        admin: port().default(15020).describe('admin listener: /ready, /live, /metrics, /app-health'),
        tunnel: port().default(15008).describe('mesh tunnel (mTLS, reserved)'),
        health: port().default(15021).describe('reserved health port, never intercepted'),
      })
      .prefault({})
      .describe('proxy ports; pods using any of them are not injected'),
    uid: id().default(1337).describe('proxy uid (eBPF mode runs as it; TPROXY mode runs as uid 0 and is exempted by gid); pods running as it are not injected'),
    gid: id().default(1337).describe('proxy gid; its traffic is never intercepted'),
    nativeSidecar: z.boolean().default(true).describe('run the proxy as a native sidecar (init container with restartPolicy Always); false: a classic first container (annotation weft.dev/native-sidecar)'),
    opaquePorts: z.array(port()).default([]).describe('ports relayed as opaque TCP without protocol detection; empty: the proxy default (annotation weft.dev/opaque-ports)'),
    drainGraceMs: z.number().int().min(0).default(20000).describe('on SIGTERM the proxy drains in-flight work this long (capped below the pod terminationGracePeriodSeconds)'),
    accessLog: z.boolean().default(false).describe('one JSON log line per connection/request'),
    waitReadyTimeoutMs: z.number().int().min(1000).default(120000).describe('classic sidecar only: how long the postStart hook holds the app containers until the proxy is ready'),
    rewriteAppProbes: z.boolean().default(true).describe("rewrite the app's (and its native sidecars') httpGet/tcpSocket/grpc probes to the proxy admin port (/app-health/...)"),
  })
  .prefault({})
  .describe('the sidecar proxy (weft proxy)');

const InitSchema = z
  .strictObject({
    resources: resources({ cpu: '10m', memory: '16Mi' }, { memory: '64Mi' }).describe('weft-init resources'),
    ipv6: z.enum(['auto', 'on', 'off']).default('auto').describe('program IPv6 interception too (auto: when the pod has an IPv6 address)'),
    excludeInboundPorts: z.array(port()).default([]).describe('inbound ports never intercepted (annotation weft.dev/exclude-inbound-ports replaces)'),
    excludeOutboundPorts: z.array(port()).default([]).describe('outbound ports never intercepted (annotation weft.dev/exclude-outbound-ports replaces)'),
    excludeOutboundCidrs: z.array(cidr()).default([]).describe('outbound CIDRs never intercepted (annotation weft.dev/exclude-outbound-cidrs replaces)'),
    includeOutboundCidrs: z
      .array(z.string().regex(new RegExp(`^(\\*|${CIDR_RE.source.slice(1, -1)})$`), `must be ${CIDR_HINT}, or *`))
      .refine((l) => l.length <= 1 || !l.includes('*'), '"*" (all) must be the only entry')
      .default([])
      .describe('only these outbound CIDRs are intercepted; empty or ["*"]: all (annotation weft.dev/include-outbound-cidrs replaces)'),
    tproxy: z
      .strictObject({
        mark: z.number().int().min(1).max(0xffffffff).default(0x539).describe('fwmark of diverted packets'),
        routeTable: z.number().int().min(1).max(0xfffffffe).default(133).describe('policy routing table for diverted packets'),
      })
      .prefault({})
      .describe('TPROXY mode settings'),
    ebpf: z
      .strictObject({
        hostCgroupRoot: z.string().startsWith('/').default('/sys/fs/cgroup').describe("the node's cgroup2 mount, mounted into weft-init at /host/sys/fs/cgroup"),
        hostBpffs: z.string().startsWith('/').default('/sys/fs/bpf').describe("the node's bpffs, mounted into weft-init at /host/sys/fs/bpf (pins under weft/)"),
        capabilities: z
          .array(z.string().regex(/^[A-Z_]+$/, 'must be a capability name without CAP_, e.g. NET_ADMIN'))
          .min(1)
          .default(['BPF', 'NET_ADMIN'])
          .describe('capabilities of weft-init in eBPF mode (all others dropped); add SYS_ADMIN on runtimes whose RuntimeDefault seccomp profile admits bpf(2) only with it (CRI-O, containerd 1.6 before late 2022, Docker before 23; docs/injection.md)'),
      })
      .prefault({})
      .describe('eBPF mode settings'),
  })
  .prefault({})
  .describe('the init container (weft init)');

const ControllerSchema = z
  .strictObject({
    replicas: z.number().int().min(1).default(2).describe('webhook replicas'),
    port: port().default(9443).describe('HTTPS webhook port'),
    adminPort: port().default(9090).describe('admin port: /healthz, /readyz, /metrics'),
    logLevel: z.enum(LOG_LEVELS).default('info').describe('controller log level'),
    resources: resources({ cpu: '50m', memory: '96Mi' }, { memory: '256Mi' }).describe('controller resources'),
    nodeSelector: z.record(z.string(), z.string()).default({}).describe('controller pod nodeSelector'),
    tolerations: z.array(z.record(z.string(), z.unknown())).default([]).describe('controller pod tolerations'),
    affinity: z.record(z.string(), z.unknown()).default({}).describe('controller pod affinity'),
    podAnnotations: z.record(z.string(), z.string()).default({}).describe('extra annotations on the controller pods'),
    podLabels: z.record(z.string(), z.string()).default({}).describe('extra labels on the controller pods'),
    priorityClassName: z.string().default('').describe('controller pod priorityClassName (empty: none)'),
  })
  .prefault({})
  .describe('the controller Deployment (weft controller)');

const WebhookSchema = z
  .strictObject({
    failurePolicy: z.enum(['Fail', 'Ignore']).default('Fail').describe('what the API server does when the webhook cannot be reached'),
    timeoutSeconds: z.number().int().min(1).max(30).default(10).describe('admission call timeout'),
    reinvocationPolicy: z.enum(['Never', 'IfNeeded']).default('IfNeeded').describe('re-run after other mutating webhooks (safe: injection is idempotent)'),
    namespaceSelectorLabel: z.string().default('weft.dev/inject').describe('the opt-in label, on namespaces and pods (enabled|disabled; the pod wins), read alike by the webhook selectors and the injector'),
  })
  .prefault({})
  .describe('the MutatingWebhookConfiguration');

const PolicySchema = z
  .strictObject({
    defaultInboundPolicy: z.enum(INBOUND_POLICIES).default('allow').describe('inbound decision when no policy selects the pod (annotation weft.dev/default-inbound-policy)'),
    controllerUrl: z
      .string()
      .refine((s) => s === '' || /^https?:\/\/[^/]/.test(s), 'must be empty or an http:// or https:// URL')
      .default('')
      .describe('policy stream URL given to proxies as --controller; empty: the chart fills in its controller Service, https://<fullname>-controller.<namespace>.svc:443, e.g. https://weft-controller.weft-system.svc:443 (weft inject without the chart: no stream)'),
    controllerCa: z
      .string()
      .refine((s) => s === '' || s.includes('-----BEGIN CERTIFICATE-----'), 'must be empty or PEM text with a "-----BEGIN CERTIFICATE-----" block')
      .default('')
      .describe('PEM CA bundle the proxies trust for controllerUrl (env WEFT_CONTROLLER_CA_PEM); empty: weft controller uses the ca.crt next to its --tls-cert, the CA that signed its serving certificate'),
  })
  .prefault({})
  .describe('policy defaults');

/** Keys only the chart uses; accepted here so one values file serves helm and weft inject --values. */
const ChartOnly = {
  certManager: z
    .strictObject({
      enabled: z.boolean().default(false).describe('issue the webhook certificate with cert-manager (its cainjector fills caBundle) instead of Helm-generated certificates'),
      issuerRef: z
        .strictObject({
          name: z.string().default('').describe('an existing issuer; empty: the chart creates a self-signed Issuer'),
          kind: z.enum(['Issuer', 'ClusterIssuer']).default('Issuer').describe('kind of issuerRef.name'),
        })
        .prefault({})
        .describe('issuer of the webhook certificate'),
    })
    .prefault({})
    .describe('cert-manager integration'),
  tls: z
    .strictObject({
      validityDays: z.number().int().min(1).max(36500).default(3650).describe('validity of the webhook CA and certificate, in days (kept across helm upgrade)'),
    })
    .prefault({})
    .describe('the webhook serving certificate'),
  monitoring: z
    .strictObject({
      enabled: z.boolean().default(false).describe('create Prometheus Operator monitors (needs the monitoring.coreos.com CRDs)'),
      serviceMonitor: z.boolean().default(true).describe('a ServiceMonitor for the controller /metrics'),
      podMonitor: z.boolean().default(true).describe('a PodMonitor for every injected proxy /metrics (admin port)'),
      interval: z.string().regex(/^([0-9]+(ms|s|m|h))+$/, 'must be a Prometheus duration such as 30s').default('30s').describe('scrape interval'),
      labels: z.record(z.string(), z.string()).default({}).describe('extra labels on the monitors, e.g. the release label your Prometheus selects'),
    })
    .prefault({})
    .describe('Prometheus Operator monitors'),
};

export const ValuesSchema = z
  .strictObject({
    image: ImageSchema,
    imagePullSecrets: z.array(z.strictObject({ name: z.string().describe('secret name') })).default([]).describe('pull secrets of the controller pods'),
    proxy: ProxySchema,
    init: InitSchema,
    interception: z
      .strictObject({ defaultMode: z.enum(INTERCEPT_MODES).default('tproxy').describe('interception mode when the pod does not choose one (annotation intercept or weft.dev/intercept)') })
      .prefault({})
      .describe('interception defaults'),
    webhook: WebhookSchema,
    controller: ControllerSchema,
    policy: PolicySchema,
    ...ChartOnly,
  })
  .describe('weft chart values');

export type Values = z.output<typeof ValuesSchema>;
export type ValuesInput = z.input<typeof ValuesSchema>;
export type InterceptMode = (typeof INTERCEPT_MODES)[number];

export function defaultValues(): Values {
  return ValuesSchema.parse({});
}

/** Validate values (already parsed YAML); errors name the field as `values.<path>`. */
export function parseValues(raw: unknown, source = 'values'): Values {
  const r = ValuesSchema.safeParse(raw ?? {});
  if (!r.success) throw fromZod(ErrorCodes.BAD_CONFIG, r.error, `${source}: `);
  return r.data;
}

/** Validate values YAML text (the content of a values file). */
export function parseValuesYaml(text: string, source = 'values'): Values {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new WeftError(ErrorCodes.BAD_CONFIG, `${source}: not valid YAML: ${(e as Error).message}`, { field: source });
  }
  return parseValues(raw, source);
}
