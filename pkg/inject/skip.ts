// Why a pod was not injected: one const enum, each with a readable sentence, used alike in
// logs, the `reason` metric label and the Kubernetes Event the controller emits.
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
  'port-conflict': 'a container uses a port the proxy needs (15001, 15006, 15008, 15020, 15021)',
  'uid-conflict': "a container runs as the proxy's uid or gid (1337), whose traffic is never intercepted",
};

export interface Skip {
  skip: SkipReason;
  /** The sentence, plus the specific detail (which port, which container). */
  message: string;
}

export function skip(reason: SkipReason, detail?: string): Skip {
  return { skip: reason, message: detail ? `${SKIP_SENTENCES[reason]}: ${detail}` : SKIP_SENTENCES[reason] };
}

/** The Event a controller records on a skipped pod (sent if it has a client, else logged). */
export function skipEvent(pod: Pod, namespace: string, s: Skip): KubeEvent {
  const name = pod.metadata?.name ?? pod.metadata?.generateName;
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${name ?? 'pod'}.weft-`, namespace },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'Pod',
      ...(name !== undefined ? { name } : {}),
      namespace,
      ...(pod.metadata?.uid ? { uid: pod.metadata.uid } : {}),
    },
    type: s.skip === 'opted-out' || s.skip === 'not-opted-in' || s.skip === 'already-injected' ? 'Normal' : 'Warning',
    reason: 'WeftInjectionSkipped',
    message: `weft did not inject the proxy (${s.skip}): ${s.message}`,
    source: { component: 'weft-controller' },
    reportingComponent: 'weft.dev/controller',
    action: 'Inject',
  };
}
