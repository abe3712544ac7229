// Policy evaluation: pure. `selectPolicies` picks the policies that select one workload and
// normalizes them into CompiledPolicy (plain JSON: this is what the controller streams to a
// proxy); `createAuthorizer` turns those into per-port rule buckets so a decision only walks
// the rules that can apply to the destination port.
//
// Semantics (Istio AuthorizationPolicy; see docs/policy.md):
// - a matching DENY rule denies; DENY wins over ALLOW;
// - if any ALLOW policy selects the workload, a request must match one of its rules;
// - otherwise the workload's default-inbound policy decides;
// - only inbound traffic is subject to policy;
// - methods/paths apply to HTTP only: for an L4 decision (no `http` in the request: opaque
//   TCP) an operation with HTTP fields never matches, for ALLOW and DENY alike (issue 7;
//   Istio instead widens such a DENY to all TCP). To deny a port at L4, write a rule without
//   HTTP fields (docs/policy.md).
import type { Policy, PolicyRule } from '../api/policy.js';
import { cidrContains, parseCidr, parseIp, type Cidr, type ParsedIp } from './cidr.js';
import { normalizePath, type NormalizedPath } from './path.js';
import type { AuthzDecision, AuthzRequest, Authorizer } from './types.js';

export interface PeerIdentity {
  namespace: string;
  serviceAccount: string;
}

/** Who is at a peer address (the caller knows the pods: the controller, or the file's `peers:`). */
export type PeerResolver = (address: string) => PeerIdentity | undefined;

export type DefaultInbound = 'allow' | 'deny';

export interface WorkloadSelf {
  namespace: string;
  name?: string;
  labels: Record<string, string>;
  defaultInbound: DefaultInbound;
}

/** A policy normalized for one workload: `ref` is namespace/name, service accounts are
 * always "namespace/name". JSON-serializable (sent on the policy stream). */
export interface CompiledPolicy {
  ref: string;
  action: 'ALLOW' | 'DENY';
  rules: PolicyRule[];
}

export function selects(p: Policy, self: Pick<WorkloadSelf, 'namespace' | 'labels'>): boolean {
  if (p.namespace !== self.namespace) return false;
  const want = p.spec.selector?.matchLabels ?? {};
  return Object.entries(want).every(([k, v]) => self.labels[k] === v);
}

export function selectPolicies(policies: readonly Policy[], self: Pick<WorkloadSelf, 'namespace' | 'labels'>): CompiledPolicy[] {
  return policies
    .filter((p) => selects(p, self))
    .map((p) => ({ ref: `${p.namespace}/${p.name}`, action: p.spec.action, rules: (p.spec.rules ?? []).map((r) => normalizeRule(r, p.namespace)) }))
    .sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
}

function normalizeRule(r: PolicyRule, ns: string): PolicyRule {
  const qualify = (l?: string[]) => l?.map((s) => (s.includes('/') ? s : `${ns}/${s}`));
  if (!r.from) return r;
  return {
    ...r,
    from: r.from.map(({ source: s }) => {
      const out = { ...s };
      const sa = qualify(s.serviceAccounts);
      const notSa = qualify(s.notServiceAccounts);
      if (sa) out.serviceAccounts = sa;
      if (notSa) out.notServiceAccounts = notSa;
      return { source: out };
    }),
  };
}

export type Pattern = (s: string) => boolean;

/** exact, `prefix*`, `*suffix` or `*` (validated by the schema) → a matcher. */
export function pattern(p: string): Pattern {
  if (p === '*') return () => true;
  if (p.startsWith('*')) {
    const suffix = p.slice(1);
    return (s) => s.endsWith(suffix);
  }
  if (p.endsWith('*')) {
    const prefix = p.slice(0, -1);
    return (s) => s.startsWith(prefix);
  }
  return (s) => s === p;
}

const anyOf = (l: string[] | undefined): Pattern | undefined => {
  if (!l) return undefined;
  const ps = l.map(pattern);
  return (s) => ps.some((m) => m(s));
};

function serviceAccounts(l: string[] | undefined): ((id: PeerIdentity) => boolean) | undefined {
  if (!l) return undefined;
  const ps = l.map((s) => {
    const [ns = '', name = ''] = s.split('/');
    return [pattern(ns), pattern(name)] as const;
  });
  return (id) => ps.some(([n, a]) => n(id.namespace) && a(id.serviceAccount));
}

const blocks = (l: string[] | undefined): Cidr[] | undefined => l?.map((c) => parseCidr(c)).filter((c): c is Cidr => c !== undefined);

interface SourceMatch {
  ns?: Pattern | undefined;
  notNs?: Pattern | undefined;
  sa?: ((id: PeerIdentity) => boolean) | undefined;
  notSa?: ((id: PeerIdentity) => boolean) | undefined;
  ip?: Cidr[] | undefined;
  notIp?: Cidr[] | undefined;
}

interface OpMatch {
  methods?: Pattern | undefined;
  notMethods?: Pattern | undefined;
  paths?: Pattern | undefined;
  notPaths?: Pattern | undefined;
  http: boolean;
}

interface RuleMatch {
  policy: string;
  index: number;
  from: SourceMatch[] | undefined;
  /** undefined: any operation. */
  to: OpMatch[] | undefined;
}

interface Bucket {
  allow: RuleMatch[];
  deny: RuleMatch[];
  http: boolean;
}

interface Peer {
  ip: ParsedIp | undefined;
  id: PeerIdentity | undefined;
}

// An unknown peer (not resolvable) matches no positive namespace/service-account list and
// every negative one, like Envoy matching an absent principal as "".
function sourceMatches(s: SourceMatch, peer: Peer): boolean {
  const inBlocks = (l: Cidr[]) => peer.ip !== undefined && l.some((c) => cidrContains(c, peer.ip as ParsedIp));
  if (s.ip && !inBlocks(s.ip)) return false;
  if (s.notIp && inBlocks(s.notIp)) return false;
  if (s.ns && !(peer.id && s.ns(peer.id.namespace))) return false;
  if (s.notNs && peer.id && s.notNs(peer.id.namespace)) return false;
  if (s.sa && !(peer.id && s.sa(peer.id))) return false;
  if (s.notSa && peer.id && s.notSa(peer.id)) return false;
  return true;
}

/** An HTTP request as rules see it: the path normalized once per decision (path.ts). */
interface HttpView {
  method: string;
  path: NormalizedPath;
}

function opMatches(o: OpMatch, http: HttpView | undefined, action: 'ALLOW' | 'DENY'): boolean {
  if (!http) return !o.http;
  if (o.methods && !o.methods(http.method)) return false;
  if (o.notMethods && o.notMethods(http.method)) return false;
  if (o.paths || o.notPaths) {
    // A path that cannot be matched safely fails closed: it meets a DENY rule's path
    // conditions and none of an ALLOW rule's.
    if (http.path.ambiguous) return action === 'DENY';
    if (o.paths && !o.paths(http.path.path)) return false;
    if (o.notPaths && o.notPaths(http.path.path)) return false;
  }
  return true;
}

function ruleMatches(r: RuleMatch, peer: Peer, http: HttpView | undefined, action: 'ALLOW' | 'DENY'): boolean {
  if (r.from && !r.from.some((s) => sourceMatches(s, peer))) return false;
  if (r.to && !r.to.some((o) => opMatches(o, http, action))) return false;
  return true;
}

interface RawOp {
  ports?: number[] | undefined;
  notPorts?: number[] | undefined;
  op: OpMatch;
}

const portOk = (o: RawOp, port: number | undefined) =>
  (o.ports === undefined || (port !== undefined && o.ports.includes(port))) && !(port !== undefined && o.notPorts?.includes(port));

function bucketFor(rules: { action: 'ALLOW' | 'DENY'; rule: RuleMatch; ops: RawOp[] | undefined }[], port: number | undefined): Bucket {
  const b: Bucket = { allow: [], deny: [], http: false };
  for (const { action, rule, ops } of rules) {
    let to: OpMatch[] | undefined;
    if (ops) {
      to = ops.filter((o) => portOk(o, port)).map((o) => o.op);
      if (to.length === 0) continue;
    }
    (action === 'ALLOW' ? b.allow : b.deny).push({ ...rule, to });
    if (to?.some((o) => o.http)) b.http = true;
  }
  return b;
}

export interface AuthorizerOptions {
  defaultInbound: DefaultInbound;
  peers?: PeerResolver;
}

export interface CompiledAuthorizer extends Authorizer {
  readonly policies: readonly CompiledPolicy[];
}

/** Build the fast structure: one bucket per port named in any rule, one for all others. */
export function createAuthorizer(policies: readonly CompiledPolicy[], opts: AuthorizerOptions): CompiledAuthorizer {
  const resolve = opts.peers ?? (() => undefined);
  const hasAllow = policies.some((p) => p.action === 'ALLOW');
  const rules: { action: 'ALLOW' | 'DENY'; rule: RuleMatch; ops: RawOp[] | undefined }[] = [];
  const ports = new Set<number>();
  for (const p of policies) {
    p.rules.forEach((r, index) => {
      const from = r.from?.length
        ? r.from.map(({ source: s }) => ({
            ns: anyOf(s.namespaces),
            notNs: anyOf(s.notNamespaces),
            sa: serviceAccounts(s.serviceAccounts),
            notSa: serviceAccounts(s.notServiceAccounts),
            ip: blocks(s.ipBlocks),
            notIp: blocks(s.notIpBlocks),
          }))
        : undefined;
      const ops = r.to?.length
        ? r.to.map(({ operation: o }) => {
            for (const x of [...(o.ports ?? []), ...(o.notPorts ?? [])]) ports.add(x);
            const http = [o.methods, o.notMethods, o.paths, o.notPaths].some((l) => l !== undefined);
            return { ports: o.ports, notPorts: o.notPorts, op: { methods: anyOf(o.methods), notMethods: anyOf(o.notMethods), paths: anyOf(o.paths), notPaths: anyOf(o.notPaths), http } };
          })
        : undefined;
      rules.push({ action: p.action, rule: { policy: p.ref, index, from, to: undefined }, ops });
    });
  }
  const byPort = new Map<number, Bucket>();
  for (const port of ports) byPort.set(port, bucketFor(rules, port));
  const other = bucketFor(rules, undefined);
  const fallback: AuthzDecision = opts.defaultInbound === 'deny' ? { allow: false, reason: 'default-deny' } : { allow: true, reason: 'default-allow' };
  const outbound: AuthzDecision = { allow: true, reason: 'default-allow' };

  return {
    policies,
    decide(req: AuthzRequest): AuthzDecision {
      if (req.direction !== 'inbound') return outbound;
      const b = byPort.get(req.destination.port) ?? other;
      const peer: Peer = { ip: parseIp(req.source.address), id: resolve(req.source.address) };
      const http = req.http && { method: req.http.method, path: normalizePath(req.http.path) };
      for (const r of b.deny) if (ruleMatches(r, peer, http, 'DENY')) return { allow: false, reason: 'deny-policy', policy: r.policy, rule: r.index };
      if (!hasAllow) return fallback;
      for (const r of b.allow) if (ruleMatches(r, peer, http, 'ALLOW')) return { allow: true, reason: 'allow-policy', policy: r.policy, rule: r.index };
      return { allow: false, reason: 'no-allow-match' };
    },
    needsHttp(direction, port) {
      return direction === 'inbound' && (byPort.get(port) ?? other).http;
    },
  };
}

/** Peers as a plain map (`{ "10.0.0.5": {namespace, serviceAccount} }`) → a resolver that
 * also finds IPv4 peers reported as IPv4-mapped IPv6 addresses. */
export function mapResolver(peers: Readonly<Record<string, PeerIdentity>>): PeerResolver {
  const m = new Map<string, PeerIdentity>();
  for (const [ip, id] of Object.entries(peers)) m.set(canonicalIp(ip), id);
  return (addr) => m.get(canonicalIp(addr));
}

function canonicalIp(s: string): string {
  const ip = parseIp(s);
  return ip ? `${ip.family}:${ip.value.toString(16)}` : s;
}

/** Convenience: select + compile in one step. */
export function authorizerFor(policies: readonly Policy[], self: WorkloadSelf, peers?: PeerResolver): CompiledAuthorizer {
  return createAuthorizer(selectPolicies(policies, self), peers ? { defaultInbound: self.defaultInbound, peers } : { defaultInbound: self.defaultInbound });
}
