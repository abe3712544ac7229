// Status and Events writes: the controller's only writes to the API.
import { statusMessage, type KubeHttp } from './client.js';

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export type StatusWrite = 'updated' | 'conflict';

/** Replace `status.conditions` of a namespaced custom resource through its status
 * subresource (PUT, the `update` verb, with the object's resourceVersion). A 409 Conflict
 * means the object changed since it was read: the caller sees that change as a watch event
 * and decides again, so it is returned, not thrown. */
export async function updateStatusConditions(
  http: KubeHttp,
  group: string,
  version: string,
  plural: string,
  obj: { metadata: { name: string; namespace?: string; resourceVersion?: string }; status?: object },
  conditions: Condition[],
): Promise<StatusWrite> {
  const { name, namespace = 'default' } = obj.metadata;
  const path = `/apis/${group}/${version}/namespaces/${encodeURIComponent(namespace)}/${plural}/${encodeURIComponent(name)}/status`;
  const r = await http.request('PUT', path, { body: { ...obj, status: { ...(obj.status ?? {}), conditions } } });
  if (r.status === 409) return 'conflict';
  if (r.status !== 200) throw new Error(`update ${path}: ${statusMessage(r)}`);
  return 'updated';
}

export interface EventTarget {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
}

/** A core/v1 Event about `target` (what `kubectl describe` shows). */
export async function recordEvent(http: KubeHttp, target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string, component = 'weft-controller'): Promise<void> {
  const now = new Date().toISOString();
  const body = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${target.name}.`, namespace: target.namespace },
    involvedObject: { apiVersion: target.apiVersion, kind: target.kind, namespace: target.namespace, name: target.name, ...(target.uid ? { uid: target.uid } : {}) },
    type,
    reason,
    message: message.slice(0, 1024),
    source: { component },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
  const r = await http.request('POST', `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/events`, { body });
  if (r.status !== 201 && r.status !== 200) throw new Error(`create event: ${statusMessage(r)}`);
}
