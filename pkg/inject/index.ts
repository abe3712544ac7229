// The injector: one pure function, (pod, namespace, config) → the patch and the injected pod,
// or a skip with a reason. Used by the webhook (`weft controller`) and `weft inject`.
// A bad annotation value throws a WeftError (BAD_ANNOTATION): the pod is refused.
import { Annotations as A, parseInjectChoice, type InjectChoice } from '../api/annotations.js';
import type { Container, Pod } from '../api/k8s-types.js';
import type { Values } from '../api/values.js';
import { buildInitContainer, buildProxyContainer, buildVolumes, INIT_NAME, PROXY_NAME, podLabelsJson } from './containers.js';
import { contentHash, objectHash } from './hash.js';
import { diff, type JsonPatchOp } from './patch.js';
import { rewriteProbes, type AppProbes } from './probes.js';
import { resolveSettings, type Settings } from './settings.js';
import { skip, SkipReasons, type Skip } from './skip.js';

export { SkipReasons, SKIP_SENTENCES, skipEvent, type Skip, type SkipReason } from './skip.js';
export type { JsonPatchOp } from './patch.js';

export const SYSTEM_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease'];
/** Kubernetes' default terminationGracePeriodSeconds. */
export const DEFAULT_POD_GRACE_SECONDS = 30;

export interface NamespaceInfo {
  name: string;
  /** The namespace labels; undefined when unknown (the webhook's namespaceSelector already chose). */
  labels?: Record<string, string> | undefined;
}

export interface InjectConfig {
  values: Values;
  /** weft's version: the image tag default and part of weft.dev/injected. */
  version: string;
  /** The controller's own namespace: never injected. */
  controllerNamespace?: string | undefined;
}

export interface Injected {
  patch: JsonPatchOp[];
  injectedPod: Pod;
  /** The weft.dev/injected value. */
  marker: string;
  settings: Settings;
}

export type InjectResult = Injected | Skip;

export const isSkip = (r: InjectResult): r is Skip => 'skip' in r;

/** `label` is the opt-in label key of the chart's webhook selectors
 * (values.webhook.namespaceSelectorLabel, default weft.dev/inject), so the code and the
 * selectors read the same label; the annotation is always weft.dev/inject. */
function podChoice(pod: Pod, label: string): InjectChoice | undefined {
  const ann = pod.metadata?.annotations?.[A.inject];
  if (ann !== undefined) return parseInjectChoice(`annotation ${A.inject}`, ann);
  const value = pod.metadata?.labels?.[label];
  if (value !== undefined) return parseInjectChoice(`label ${label}`, value);
  return undefined;
}

function optIn(pod: Pod, ns: NamespaceInfo, label: string): Skip | undefined {
  const choice = podChoice(pod, label);
  if (choice === 'disabled') return skip(SkipReasons.OPTED_OUT, 'the pod says disabled');
  if (choice === 'enabled' || ns.labels === undefined) return undefined;
  const nsChoice = ns.labels[label];
  if (nsChoice === 'enabled') return undefined;
  if (nsChoice === 'disabled') return skip(SkipReasons.OPTED_OUT, `namespace ${ns.name} says disabled`);
  return skip(SkipReasons.NOT_OPTED_IN);
}

/**
 * Where offline injection and a cluster part ways. The chart's webhook selectors read only
 * labels (an objectSelector cannot match annotations): a pod labelled `weft.dev/inject:
 * disabled` never reaches the webhook, one labelled `enabled` always does, an unlabelled one
 * only in an enabled namespace; the annotation is read only once the pod has reached it.
 * `label` is values.webhook.namespaceSelectorLabel, the key those selectors use. Returns
 * why a pod that opts in by annotation would not be injected in a cluster, if so.
 */
export function clusterOptInGap(pod: Pod, ns: NamespaceInfo, label: string): string | undefined {
  if (pod.metadata?.annotations?.[A.inject]?.trim() !== 'enabled') return undefined;
  const value = pod.metadata.labels?.[label];
  if (value === 'enabled') return undefined;
  if (value === 'disabled') {
    return `the pod is labelled ${label}: disabled; in a cluster that label keeps it from the webhook, so the annotation ${A.inject}: enabled is never read and the pod is not injected`;
  }
  if (ns.labels === undefined || ns.labels[label] === 'enabled') return undefined;
  return `the pod opts in with the annotation ${A.inject}: enabled only; in a cluster the webhook sees a pod outside an enabled namespace only by the label, so it would not be injected: label the pod (or its namespace) ${label}: enabled`;
}

const allContainers = (pod: Pod): Container[] => [...(pod.spec.initContainers ?? []), ...(pod.spec.containers ?? [])];

function conflicts(pod: Pod, v: Values): Skip | undefined {
  const p = v.proxy.ports;
  const reserved = new Set([p.inbound, p.outbound, p.tunnel, p.admin, p.health]);
  for (const c of allContainers(pod)) {
    for (const cp of c.ports ?? []) {
      if (reserved.has(cp.containerPort)) {
        return skip(SkipReasons.PORT_CONFLICT, `container ${c.name} uses port ${cp.containerPort} (the proxy's ports: ${[...reserved].sort((a, b) => a - b).join(', ')})`);
      }
    }
  }
  const podSc = pod.spec.securityContext;
  for (const c of allContainers(pod)) {
    const uid = c.securityContext?.runAsUser ?? podSc?.runAsUser;
    const gid = c.securityContext?.runAsGroup ?? podSc?.runAsGroup;
    if (uid === v.proxy.uid) return skip(SkipReasons.UID_CONFLICT, `container ${c.name} runs as uid ${uid} (the proxy's uid)`);
    if (gid === v.proxy.gid) return skip(SkipReasons.UID_CONFLICT, `container ${c.name} runs as gid ${gid} (the proxy's gid)`);
  }
  return undefined;
}

/** Cheap checks first: they decide most admissions without looking at annotations' values. */
export function decideSkip(pod: Pod, ns: NamespaceInfo, config: InjectConfig): Skip | undefined {
  if (SYSTEM_NAMESPACES.includes(ns.name)) return skip(SkipReasons.SYSTEM_NAMESPACE, ns.name);
  if (config.controllerNamespace !== undefined && ns.name === config.controllerNamespace) return skip(SkipReasons.CONTROLLER_NAMESPACE, ns.name);
  if (pod.spec.hostNetwork === true) return skip(SkipReasons.HOST_NETWORK);
  if (pod.metadata?.annotations?.[A.injected] !== undefined) return skip(SkipReasons.ALREADY_INJECTED, pod.metadata.annotations[A.injected]);
  if (allContainers(pod).some((c) => c.name === PROXY_NAME || c.name === INIT_NAME)) return skip(SkipReasons.ALREADY_INJECTED, `a container is named ${PROXY_NAME} or ${INIT_NAME}`);
  return optIn(pod, ns, config.values.webhook.namespaceSelectorLabel) ?? conflicts(pod, config.values);
}

function drainGrace(pod: Pod, v: Values): number {
  const graceMs = (pod.spec.terminationGracePeriodSeconds ?? DEFAULT_POD_GRACE_SECONDS) * 1000;
  // Leave the kubelet a margin after the drain before it sends SIGKILL.
  return Math.min(v.proxy.drainGraceMs, Math.max(0, graceMs - 2000));
}

/**
 * The app containers' probes, and those of the pod's own native sidecars (init containers
 * with restartPolicy Always), go through the proxy. The sidecars' only when the proxy is a
 * native sidecar too: it then starts before them. A classic proxy starts after every init
 * container, so a sidecar's startup probe sent to it could never pass.
 */
function podProbes(apps: Container[], inits: Container[], s: Settings, v: Values): { containers: Container[]; initContainers: Container[]; appProbes: AppProbes } {
  if (!v.proxy.rewriteAppProbes) return { containers: apps, initContainers: inits, appProbes: {} };
  const a = rewriteProbes(apps, v.proxy.ports.admin);
  if (!s.nativeSidecar) return { containers: a.containers, initContainers: inits, appProbes: a.appProbes };
  const i = rewriteProbes(inits, v.proxy.ports.admin, (c) => c.restartPolicy === 'Always');
  return { containers: a.containers, initContainers: i.containers, appProbes: { ...a.appProbes, ...i.appProbes } };
}

export function injectPod(pod: Pod, ns: NamespaceInfo, config: InjectConfig): InjectResult {
  const skipped = decideSkip(pod, ns, config);
  if (skipped) return skipped;
  const v = config.values;
  const settings = resolveSettings(pod.metadata?.annotations, v);

  const apps = pod.spec.containers ?? [];
  const existingInit = pod.spec.initContainers ?? [];
  const { containers: rewritten, initContainers: initRewritten, appProbes } = podProbes(apps, existingInit, settings, v);
  const init = buildInitContainer(settings, v, config.version);
  const drain = drainGrace(pod, v);
  const labels = podLabelsJson(pod.metadata?.labels);
  const proxy = buildProxyContainer(settings, v, config.version, appProbes, drain, labels);
  const volumes = buildVolumes(settings, v);
  // The injected containers are a pure function of these inputs (and weft's version), so
  // hashing the inputs identifies what was injected at a fraction of the cost.
  const marker = `${config.version}/sha256:${contentHash([objectHash(v), settings, appProbes, drain, ...(labels === undefined ? [] : [labels])])}`;

  // Shallow copies along the changed paths only: unchanged parts are shared with the input
  // (never mutated), which keeps both the copy and the diff cheap.
  const meta = pod.metadata ?? {};
  const annotations: Record<string, string> = { ...(meta.annotations ?? {}), [A.injected]: marker };
  const firstApp = apps[0]?.name;
  if (!settings.nativeSidecar && firstApp !== undefined && annotations['kubectl.kubernetes.io/default-container'] === undefined) {
    // The proxy is the first container: keep `kubectl logs/exec` pointing at the app.
    annotations['kubectl.kubernetes.io/default-container'] = firstApp;
  }
  const out: Pod = {
    ...pod,
    metadata: { ...meta, annotations },
    spec: {
      ...pod.spec,
      initContainers: settings.nativeSidecar ? [init, proxy, ...initRewritten] : [init, ...initRewritten],
      containers: settings.nativeSidecar ? rewritten : [proxy, ...rewritten],
      volumes: [...(pod.spec.volumes ?? []), ...volumes],
    },
  };
  return { patch: diff(pod, out), injectedPod: out, marker, settings };
}
