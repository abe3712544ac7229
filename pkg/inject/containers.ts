// The containers and volumes weft adds. Args and env follow docs/flags.md exactly; the
// privileges per mode are explained in docs/injection.md.
import type { Container, EnvVar, Probe, SecurityContext, Volume } from '../api/k8s-types.js';
import { DEFAULT_TOKEN_DIR, DEFAULT_TOKEN_FILE } from '../api/proxy-flags.js';
import type { Values } from '../api/values.js';
import type { AppProbes } from './probes.js';
import { resourceList, type Settings } from './settings.js';

export const INIT_NAME = 'weft-init';
export const PROXY_NAME = 'weft-proxy';
export const XTABLES_VOLUME = 'weft-xtables-lock';
export const HOST_CGROUP_VOLUME = 'weft-host-cgroup';
export const HOST_BPFFS_VOLUME = 'weft-host-bpffs';
export const IN_CONTAINER_CGROUP = '/host/sys/fs/cgroup';
export const IN_CONTAINER_BPFFS = '/host/sys/fs/bpf';
export const TOKEN_VOLUME = 'weft-token';
/** The audience the controller's TokenReview asks for (docs/policy.md). */
export const TOKEN_AUDIENCE = 'weft';
export const TOKEN_EXPIRATION_SECONDS = 3600;
/** The proxy's --controller-ca-pem, as env. */
export const CONTROLLER_CA_ENV = 'WEFT_CONTROLLER_CA_PEM';

const fieldEnv = (name: string, fieldPath: string): EnvVar => ({ name, valueFrom: { fieldRef: { fieldPath } } });

export function imageRef(v: Values, version: string): string {
  return `${v.image.repository}:${v.image.tag || version}`;
}

function initSecurityContext(mode: Settings['mode'], v: Values): SecurityContext {
  const base = { runAsUser: 0, runAsGroup: 0, runAsNonRoot: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false };
  const add = mode === 'tproxy' ? ['NET_ADMIN', 'NET_RAW'] : [...v.init.ebpf.capabilities];
  return { ...base, capabilities: { drop: ['ALL'], add }, seccompProfile: { type: 'RuntimeDefault' } };
}

function proxySecurityContext(mode: Settings['mode'], v: Values): SecurityContext {
  const base = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, seccompProfile: { type: 'RuntimeDefault' } };
  if (mode === 'tproxy') {
    // IP_TRANSPARENT needs an effective CAP_NET_ADMIN, which only a uid-0 container gets;
    // the rules exempt the proxy by its gid.
    return { runAsUser: 0, runAsGroup: v.proxy.gid, runAsNonRoot: false, ...base, capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] } };
  }
  return { runAsUser: v.proxy.uid, runAsGroup: v.proxy.gid, runAsNonRoot: true, ...base, capabilities: { drop: ['ALL'] } };
}

const list = (xs: readonly (number | string)[]) => xs.join(',');

export function initArgs(s: Settings, v: Values): string[] {
  const p = v.proxy.ports;
  const args = ['init', '--mode', s.mode, '--proxy-uid', String(v.proxy.uid), '--proxy-gid', String(v.proxy.gid)];
  args.push('--inbound-port', String(p.inbound), '--outbound-port', String(p.outbound));
  // The admin and health ports are always excluded; listing them keeps a custom admin port right.
  args.push('--exclude-inbound-ports', list([...new Set([p.admin, p.health, ...s.excludeInboundPorts])]));
  if (s.excludeOutboundPorts.length) args.push('--exclude-outbound-ports', list(s.excludeOutboundPorts));
  if (s.excludeOutboundCidrs.length) args.push('--exclude-outbound-cidrs', list(s.excludeOutboundCidrs));
  if (s.includeOutboundCidrs.length) args.push('--include-outbound-cidrs', list(s.includeOutboundCidrs));
  args.push('--ipv6', v.init.ipv6);
  if (s.mode === 'tproxy') args.push('--mark', String(v.init.tproxy.mark), '--route-table', String(v.init.tproxy.routeTable));
  else args.push('--cgroup-root', IN_CONTAINER_CGROUP, '--bpffs', IN_CONTAINER_BPFFS);
  return args;
}

export function buildInitContainer(s: Settings, v: Values, version: string): Container {
  const ebpf = s.mode === 'ebpf';
  return {
    name: INIT_NAME,
    image: imageRef(v, version),
    imagePullPolicy: v.image.pullPolicy,
    command: ['weft'],
    args: initArgs(s, v),
    ...(ebpf ? { env: [fieldEnv('WEFT_POD_UID', 'metadata.uid')] } : {}),
    resources: { requests: resourceList(v.init.resources.requests), limits: resourceList(v.init.resources.limits) },
    securityContext: initSecurityContext(s.mode, v),
    volumeMounts: ebpf
      ? [
          { name: HOST_CGROUP_VOLUME, mountPath: IN_CONTAINER_CGROUP, readOnly: true },
          { name: HOST_BPFFS_VOLUME, mountPath: IN_CONTAINER_BPFFS },
        ]
      : // iptables-restore takes /run/xtables.lock; the root filesystem stays read-only.
        [{ name: XTABLES_VOLUME, mountPath: '/run' }],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

export function buildVolumes(s: Settings, v: Values): Volume[] {
  const out: Volume[] =
    s.mode === 'tproxy'
      ? [{ name: XTABLES_VOLUME, emptyDir: {} }]
      : [
          { name: HOST_CGROUP_VOLUME, hostPath: { path: v.init.ebpf.hostCgroupRoot, type: 'Directory' } },
          { name: HOST_BPFFS_VOLUME, hostPath: { path: v.init.ebpf.hostBpffs, type: 'Directory' } },
        ];
  if (v.policy.controllerUrl) {
    // The controller's TokenReview binds the stream to this pod: a token for audience "weft"
    // only, short-lived and rotated by the kubelet, so it is useless against the API server.
    const token = { audience: TOKEN_AUDIENCE, expirationSeconds: TOKEN_EXPIRATION_SECONDS, path: DEFAULT_TOKEN_FILE.slice(DEFAULT_TOKEN_DIR.length + 1) };
    out.push({ name: TOKEN_VOLUME, projected: { sources: [{ serviceAccountToken: token }] } });
  }
  return out;
}

export function proxyArgs(s: Settings, v: Values, drainGraceMs: number): string[] {
  const p = v.proxy.ports;
  const args = ['proxy', '--mode', s.mode, '--inbound-port', String(p.inbound), '--outbound-port', String(p.outbound), '--admin-port', String(p.admin)];
  args.push('--log-level', s.logLevel, '--default-inbound-policy', s.defaultInboundPolicy, '--drain-grace-ms', String(drainGraceMs));
  if (s.opaquePorts.length) args.push('--opaque-ports', list(s.opaquePorts));
  if (v.proxy.accessLog) args.push('--access-log');
  if (v.policy.controllerUrl) args.push('--controller', v.policy.controllerUrl, '--token-file', DEFAULT_TOKEN_FILE);
  return args;
}

function adminProbe(path: string, adminPort: number, extra: Partial<Probe>): Probe {
  return { httpGet: { path, port: adminPort, scheme: 'HTTP' }, ...extra };
}

/**
 * The pod's labels as the policy file source needs them (`--pod-labels`): sorted keys, so the
 * same labels always give the same env and the same injected marker. They are the labels at
 * admission; an edit after creation is not seen in file mode (the controller stream selects
 * with live labels).
 */
export function podLabelsJson(labels: Readonly<Record<string, string>> | undefined): string | undefined {
  const keys = Object.keys(labels ?? {}).sort();
  if (!labels || keys.length === 0) return undefined;
  return JSON.stringify(Object.fromEntries(keys.map((k) => [k, labels[k]])));
}

export function buildProxyContainer(s: Settings, v: Values, version: string, appProbes: AppProbes, drainGraceMs: number, podLabels?: string): Container {
  const admin = v.proxy.ports.admin;
  const env: EnvVar[] = [
    fieldEnv('WEFT_POD_NAME', 'metadata.name'),
    fieldEnv('WEFT_POD_NAMESPACE', 'metadata.namespace'),
    fieldEnv('WEFT_POD_UID', 'metadata.uid'),
    fieldEnv('WEFT_POD_IP', 'status.podIP'),
    fieldEnv('WEFT_POD_IPS', 'status.podIPs'),
    fieldEnv('WEFT_SERVICE_ACCOUNT', 'spec.serviceAccountName'),
  ];
  if (Object.keys(appProbes).length) env.push({ name: 'WEFT_APP_PROBES', value: JSON.stringify(appProbes) });
  if (podLabels !== undefined) env.push({ name: 'WEFT_POD_LABELS', value: podLabels });
  // The CA that verifies --controller: public data, so an env var (the proxy never sees the key).
  if (v.policy.controllerUrl && v.policy.controllerCa) env.push({ name: CONTROLLER_CA_ENV, value: v.policy.controllerCa });
  const c: Container = {
    name: PROXY_NAME,
    image: imageRef(v, version),
    imagePullPolicy: v.image.pullPolicy,
    command: ['weft'],
    args: proxyArgs(s, v, drainGraceMs),
    env,
    ports: [{ name: 'weft-admin', containerPort: admin, protocol: 'TCP' }],
    resources: s.proxyResources,
    securityContext: proxySecurityContext(s.mode, v),
    // The startup probe gates the app: for a native sidecar the kubelet starts the next
    // container only once it passes.
    startupProbe: adminProbe('/ready', admin, { periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 120 }),
    readinessProbe: adminProbe('/ready', admin, { periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 3 }),
    livenessProbe: adminProbe('/live', admin, { periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3 }),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
  if (v.policy.controllerUrl) c.volumeMounts = [{ name: TOKEN_VOLUME, mountPath: DEFAULT_TOKEN_DIR, readOnly: true }];
  if (s.nativeSidecar) c.restartPolicy = 'Always';
  else {
    // Classic sidecar: the kubelet runs the next container only after this hook returns,
    // so the app starts with the proxy ready.
    c.lifecycle = {
      postStart: { exec: { command: ['weft', 'wait-ready', '--admin-port', String(admin), '--timeout-ms', String(v.proxy.waitReadyTimeoutMs)] } },
    };
  }
  return c;
}
