// The controller side of policy: watch AuthorizationPolicies, Pods and Namespaces into a
// PolicyStore, and report on each policy with a status condition `Accepted` (True/Accepted
// or False/Invalid with the field-naming message) plus a Warning Event when one is invalid.
import { POLICY_API_VERSION, POLICY_GROUP, POLICY_KIND, POLICY_PLURAL, POLICY_VERSION } from '../api/policy.js';
import type { KubeHttp } from '../k8s/client.js';
import { recordEvent, updateStatusConditions, type Condition } from '../k8s/status.js';
import { ListWatch, type KubeObject, type ListWatchOptions } from '../k8s/watch.js';
import type { Logger } from '../log/index.js';
import type { PolicyControllerMetrics } from '../metrics/policy.js';
import type { PolicyStore } from './store.js';

export const POLICIES_PATH = `/apis/${POLICY_GROUP}/${POLICY_VERSION}/${POLICY_PLURAL}`;
export const PODS_PATH = '/api/v1/pods';
export const NAMESPACES_PATH = '/api/v1/namespaces';

export interface PolicyControllerOptions {
  http: KubeHttp;
  store: PolicyStore;
  log: Logger;
  metrics?: PolicyControllerMetrics;
  /** Write status conditions and Events (default true). */
  writeStatus?: boolean;
  watchTimeoutSeconds?: number;
}

export interface PolicyController {
  /** Resolves when all three resources have been listed once. */
  synced: Promise<void>;
  stop(): Promise<void>;
}

type PolicyObject = KubeObject & { status?: { conditions?: Condition[] } };

export function startPolicyController(o: PolicyControllerOptions): PolicyController {
  const { store, log } = o;
  const lwOpts = (resource: string): ListWatchOptions => ({
    log,
    ...(o.watchTimeoutSeconds ? { timeoutSeconds: o.watchTimeoutSeconds } : {}),
    onRestart: (reason) => o.metrics?.watchRestart(resource, reason),
  });
  // Status writes run one at a time so a burst of updates cannot reorder them.
  let writes: Promise<void> = Promise.resolve();
  const report = (obj: PolicyObject, accepted: boolean, message: string) => {
    if (o.writeStatus === false) return;
    const generation = obj.metadata.generation;
    const old = obj.status?.conditions?.find((c) => c.type === 'Accepted');
    const status = accepted ? 'True' : 'False';
    const reason = accepted ? 'Accepted' : 'Invalid';
    if (old && old.status === status && old.reason === reason && old.message === message && old.observedGeneration === generation) return;
    const cond: Condition = { type: 'Accepted', status, reason, message, lastTransitionTime: old?.status === status ? old.lastTransitionTime : new Date().toISOString() };
    if (generation !== undefined) cond.observedGeneration = generation;
    const conditions = [...(obj.status?.conditions ?? []).filter((c) => c.type !== 'Accepted'), cond];
    const { name, namespace = 'default', uid } = obj.metadata;
    writes = writes.then(async () => {
      try {
        const r = await updateStatusConditions(o.http, POLICY_GROUP, POLICY_VERSION, POLICY_PLURAL, obj, conditions);
        if (r === 'conflict') return; // a newer version is on its way as a watch event
        if (!accepted) await recordEvent(o.http, { apiVersion: POLICY_API_VERSION, kind: POLICY_KIND, namespace, name, ...(uid ? { uid } : {}) }, 'Warning', 'InvalidPolicy', message);
      } catch (e) {
        log.warn({ ns: namespace, policy: name, err: (e as Error).message }, 'cannot write AuthorizationPolicy status');
      }
    });
  };

  const policies = new ListWatch<PolicyObject>(o.http, POLICIES_PATH, {
    event(type, obj) {
      const { namespace = 'default', name } = obj.metadata;
      if (type === 'DELETED') return store.deletePolicy(namespace, name);
      const v = store.upsertPolicy(obj);
      if (!v.accepted) log.warn({ ns: namespace, policy: name, code: 'WEFT_ERR_BAD_POLICY' }, v.message);
      report(obj, v.accepted, v.message);
    },
  }, lwOpts('authorizationpolicies'));
  const pods = new ListWatch<KubeObject>(o.http, PODS_PATH, {
    event: (type, obj) => (type === 'DELETED' ? store.deletePod(obj.metadata.namespace ?? 'default', obj.metadata.name) : store.upsertPod(obj)),
  }, lwOpts('pods'));
  const namespaces = new ListWatch<KubeObject>(o.http, NAMESPACES_PATH, {
    event: (type, obj) => (type === 'DELETED' ? store.deleteNamespace(obj.metadata.name) : store.upsertNamespace(obj)),
  }, lwOpts('namespaces'));

  const synced = Promise.all([namespaces.start(), pods.start(), policies.start()]).then(() => log.info({ policies: store.policies().length }, 'policy controller synced'));
  return {
    synced,
    async stop() {
      await Promise.all([policies.stop(), pods.stop(), namespaces.stop()]);
      await writes;
    },
  };
}
