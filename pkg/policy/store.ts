// The controller's view of the cluster for policy: valid AuthorizationPolicies, pods (for
// selectors and peer identities) and namespace annotations. Fed by the Kubernetes watches
// (controller.ts) or directly by tests; no I/O here. `snapshotFor` is what one proxy gets.
import { parsePolicy, type Policy } from '../api/policy.js';
import { isWeftError } from '../errors/index.js';
import { selectPolicies, type CompiledPolicy, type DefaultInbound, type PeerIdentity } from './eval.js';
import { identityFilter, type IdentityFilter } from './peers.js';

export const DEFAULT_INBOUND_ANNOTATION = 'weft.dev/default-inbound-policy';

export interface PodRecord {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  serviceAccount: string;
  ips: string[];
}

/** One NDJSON line of GET /v1/policy/watch. */
export interface Snapshot {
  version: number;
  policies: CompiledPolicy[];
  /** Peer address → identity, for the policies' namespaces/serviceAccounts fields. */
  peers: Record<string, PeerIdentity>;
  /** From the pod's (or else its namespace's) weft.dev/default-inbound-policy annotation. */
  defaultInbound?: DefaultInbound;
}

export interface PolicyVerdict {
  accepted: boolean;
  message: string;
}

interface RawPod {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { serviceAccountName?: string; hostNetwork?: boolean };
  status?: { phase?: string; podIP?: string; podIPs?: { ip: string }[] };
}

export class PolicyStore {
  #policies = new Map<string, Policy>();
  #pods = new Map<string, PodRecord>();
  #namespaces = new Map<string, Record<string, string>>();
  /** Bumped when a pod's identity or addresses change: invalidates #peerCache. */
  #peersVersion = 0;
  #peerCache = new Map<string, { version: number; peers: Record<string, PeerIdentity> }>();
  #version = 0;
  #listeners = new Set<() => void>();
  #notifyQueued = false;

  get version(): number {
    return this.#version;
  }

  /** Validate and keep a policy object; an invalid one is not applied. */
  upsertPolicy(obj: unknown): PolicyVerdict {
    const m = (obj as { metadata?: { namespace?: string; name?: string } })?.metadata;
    const key = `${m?.namespace ?? 'default'}/${m?.name ?? ''}`;
    try {
      const p = parsePolicy(obj);
      const old = this.#policies.get(key);
      this.#policies.set(key, p);
      // The controller's own status writes come back as MODIFIED events: only a spec change
      // is a change for the proxies.
      if (!old || JSON.stringify(old.spec) !== JSON.stringify(p.spec)) this.#changed();
      return { accepted: true, message: `valid ${p.spec.action} policy with ${p.spec.rules?.length ?? 0} rule(s)` };
    } catch (e) {
      if (!isWeftError(e)) throw e;
      // An invalid update (the validating webhook was bypassed or off) must not silently
      // lift the policy: the last accepted version of this object stays in force.
      const kept = this.#policies.has(key);
      return { accepted: false, message: kept ? `${e.message} (the last accepted version stays in force)` : e.message };
    }
  }

  deletePolicy(namespace: string, name: string): void {
    if (this.#policies.delete(`${namespace}/${name}`)) this.#changed();
  }

  upsertPod(raw: unknown): void {
    const p = raw as RawPod;
    const namespace = p.metadata?.namespace ?? 'default';
    const name = p.metadata?.name ?? '';
    const done = p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';
    // Host-network pods share the node's address: it says nothing about who is calling.
    const ips = done || p.spec?.hostNetwork ? [] : (p.status?.podIPs?.map((x) => x.ip) ?? (p.status?.podIP ? [p.status.podIP] : []));
    const rec: PodRecord = { namespace, name, labels: p.metadata?.labels ?? {}, annotations: p.metadata?.annotations ?? {}, serviceAccount: p.spec?.serviceAccountName ?? 'default', ips };
    const key = `${namespace}/${name}`;
    const old = this.#pods.get(key);
    this.#pods.set(key, rec);
    // Pod status churns (conditions, container states); only what policy reads matters.
    if (old && JSON.stringify(old) === JSON.stringify(rec)) return;
    if (!old || old.serviceAccount !== rec.serviceAccount || old.ips.join() !== rec.ips.join()) this.#peersVersion++;
    this.#changed();
  }

  deletePod(namespace: string, name: string): void {
    if (this.#pods.delete(`${namespace}/${name}`)) {
      this.#peersVersion++;
      this.#changed();
    }
  }

  upsertNamespace(raw: unknown): void {
    const m = (raw as { metadata?: { name?: string; annotations?: Record<string, string> } }).metadata;
    if (!m?.name) return;
    const annotations = m.annotations ?? {};
    const old = this.#namespaces.get(m.name);
    this.#namespaces.set(m.name, annotations);
    if (!old || JSON.stringify(old) !== JSON.stringify(annotations)) this.#changed();
  }

  deleteNamespace(name: string): void {
    if (this.#namespaces.delete(name)) this.#changed();
  }

  pod(namespace: string, name: string): PodRecord | undefined {
    return this.#pods.get(`${namespace}/${name}`);
  }

  policies(): Policy[] {
    return [...this.#policies.values()];
  }

  /** The pod's policy view, or undefined while the pod is not known yet. */
  snapshotFor(namespace: string, name: string): Snapshot | undefined {
    const pod = this.pod(namespace, name);
    if (!pod) return undefined;
    const policies = selectPolicies(this.policies(), pod);
    const filter = identityFilter(policies);
    const snap: Snapshot = { version: this.#version, policies, peers: filter ? this.#peersFor(filter) : {} };
    const d = parseDefault(pod.annotations[DEFAULT_INBOUND_ANNOTATION]) ?? parseDefault(this.#namespaces.get(namespace)?.[DEFAULT_INBOUND_ANNOTATION]);
    if (d) snap.defaultInbound = d;
    return snap;
  }

  /** Called (once per burst of changes) after the store changed. */
  subscribe(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** The peers `filter` can tell apart, sorted by address; one computation per distinct
   * policy set per pod change, however many streams share it. */
  #peersFor(filter: IdentityFilter): Record<string, PeerIdentity> {
    const hit = this.#peerCache.get(filter.key);
    if (hit && hit.version === this.#peersVersion) return hit.peers;
    const found: [string, PeerIdentity][] = [];
    for (const p of this.#pods.values()) {
      const id = { namespace: p.namespace, serviceAccount: p.serviceAccount };
      if (p.ips.length && filter.matches(id)) for (const ip of p.ips) found.push([ip, id]);
    }
    const peers = Object.fromEntries(found.sort(([a], [b]) => a.localeCompare(b)));
    if (this.#peerCache.size >= 1024) this.#peerCache.clear();
    this.#peerCache.set(filter.key, { version: this.#peersVersion, peers });
    return peers;
  }

  #changed(): void {
    this.#version++;
    if (this.#notifyQueued) return;
    this.#notifyQueued = true;
    queueMicrotask(() => {
      this.#notifyQueued = false;
      for (const fn of this.#listeners) fn();
    });
  }
}

function parseDefault(v: string | undefined): DefaultInbound | undefined {
  return v === 'allow' || v === 'deny' ? v : undefined;
}

