// Why a pod was not injected: one const enum, each with a readable sentence, used alike in
// logs, the `reason` metric label and the Kubernetes Event the controller emits. The
// sentences name no port or uid: those are configurable, so the detail carries the values
// in force.
import type { KubeEvent, Pod } from '../api/k8s-types.js';

export const SkipReasons = {
  HOST_NETWORK: 'host-network',
  SYSTEM_NAMESPACE: 'system-namespace',
  CONTROLLER_NAMESPACE: 'controller-namespace',
  ALREADY_INJECTED: 'already-injected',
  OPTED_OUT: 'opted-out',
  NOT_OPTED_IN: 'not-opted-in',
  PORT_CONFLICT: 'port-conflict',
  UID_CONFLICT: 'uid-conflict',
} as const;
export type SkipReason = (typeof SkipReasons)[keyof typeof SkipReasons];

export const SKIP_SENTENCES: Readonly<Record<SkipReason, string>> = {
  'host-network': 'the pod uses the host network, so intercepting its traffic would intercept the node',
  'system-namespace': 'the pod is in a Kubernetes system namespace (kube-system, kube-public, kube-node-lease)',
  'controller-namespace': "the pod is in weft's own namespace",
  'already-injected': 'the pod already has the weft proxy (annotation weft.dev/injected or a weft-proxy container)',
  'opted-out': 'the pod or its namespace says weft.dev/inject: disabled',
  'not-opted-in': 'neither the pod nor its namespace says weft.dev/inject: enabled',
  'port-conflict': 'a container uses a port the proxy needs',
  'uid-conflict': "a container runs as the proxy's uid or gid, whose traffic is never intercepted",
};

export interface Skip {
  skip: SkipReason;
  /** The sentence, plus the specific detail (which port, which container). */
  message: string;
}

export function skip(reason: SkipReason, detail?: string): Skip {
  return { skip: reason, message: detail ? `${SKIP_SENTENCES[reason]}: ${detail}` : SKIP_SENTENCES[reason] };
}

const WARNING_FREE: readonly SkipReason[] = ['opted-out', 'not-opted-in', 'already-injected'];

/**
 * What the Event is about. A pod created from a template has no name at admission (only
 * generateName) and no uid yet, so an Event naming it would point at nothing: it goes to the
 * pod's first owner (the ReplicaSet, Job, …), where `kubectl describe` shows it.
 */
function involvedObject(pod: Pod, namespace: string): KubeEvent['involvedObject'] {
  const meta = pod.metadata ?? {};
  const owner = meta.ownerReferences?.[0];
  if (!meta.name && owner?.name) {
    return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, namespace, ...(owner.uid ? { uid: owner.uid } : {}) };
  }
  return { apiVersion: 'v1', kind: 'Pod', ...(meta.name ? { name: meta.name } : {}), namespace, ...(meta.uid ? { uid: meta.uid } : {}) };
}

/** The Event a controller records on a skipped pod (sent if it has a client, else logged). */
export function skipEvent(pod: Pod, namespace: string, s: Skip): KubeEvent {
  const meta = pod.metadata ?? {};
  const target = involvedObject(pod, namespace);
  const gen = meta.generateName ? ` ${meta.generateName}…` : '';
  const which = meta.name ? '' : target.kind !== 'Pod' ? ` into a new pod${gen} of ${target.kind} ${target.name}` : ` into a new pod${gen}`;
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${target.name ?? meta.generateName ?? 'pod'}.weft-`, namespace },
    involvedObject: target,
    type: WARNING_FREE.includes(s.skip) ? 'Normal' : 'Warning',
    reason: 'WeftInjectionSkipped',
    message: `weft did not inject the proxy${which} (${s.skip}): ${s.message}`,
    source: { component: 'weft-controller' },
    reportingComponent: 'weft.dev/controller',
    action: 'Inject',
  };
}
