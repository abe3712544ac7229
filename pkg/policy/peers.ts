// Which peer identities a pod's policies can tell apart. The controller streams an address →
// identity map with each snapshot; sending every pod of the cluster to every proxy is O(pods)
// per stream per change. A peer whose (namespace, service account) matches none of the
// policies' patterns, positive or `not…`, is decided exactly as an unknown peer is (eval.ts:
// it fails every positive list and passes every `not…` list either way), so it is left out.
import type { CompiledPolicy, PeerIdentity } from './eval.js';
import { pattern, type Pattern } from './eval.js';

export interface IdentityFilter {
  /** Equal for policy sets that need the same peers: the cache key. */
  key: string;
  matches(id: PeerIdentity): boolean;
}

/** undefined: no policy names namespaces or service accounts, so no peer map is needed. */
export function identityFilter(policies: readonly CompiledPolicy[]): IdentityFilter | undefined {
  const ns = new Set<string>();
  const sa = new Set<string>();
  for (const p of policies) {
    for (const r of p.rules) {
      for (const { source: s } of r.from ?? []) {
        for (const x of [...(s.namespaces ?? []), ...(s.notNamespaces ?? [])]) ns.add(x);
        // Qualified "namespace/name" by selectPolicies.
        for (const x of [...(s.serviceAccounts ?? []), ...(s.notServiceAccounts ?? [])]) sa.add(x);
      }
    }
  }
  if (ns.size === 0 && sa.size === 0) return undefined;
  const nsList = [...ns].sort();
  const saList = [...sa].sort();
  const nsMatch: Pattern[] = nsList.map(pattern);
  const saMatch = saList.map((x) => {
    const [n = '', a = ''] = x.split('/');
    return [pattern(n), pattern(a)] as const;
  });
  return {
    key: JSON.stringify([nsList, saList]),
    matches: (id) => nsMatch.some((m) => m(id.namespace)) || saMatch.some(([n, a]) => n(id.namespace) && a(id.serviceAccount)),
  };
}
