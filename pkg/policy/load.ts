// Policy files: multi-document YAML holding AuthorizationPolicy documents (or `kind: List`
// of them) and, for standalone use, an optional document with a top-level `peers:` map that
// tells who is at an address (no cluster to ask):
//
//   peers:
//     10.0.0.5: web/frontend        # namespace/serviceAccount
//
// Parsing is pure (text in, data out); reading the file happens in file-source.ts and cmd/.
import { parseAllDocuments } from 'yaml';
import { POLICY_KIND, parsePolicy, type Policy } from '../api/policy.js';
import { ErrorCodes, WeftError } from '../errors/index.js';
import { parseIp } from './cidr.js';
import type { PeerIdentity } from './eval.js';

export interface PolicyFile {
  policies: Policy[];
  peers: Record<string, PeerIdentity>;
}

export function parsePolicyFile(text: string, source = 'policy file', defaultNamespace = 'default'): PolicyFile {
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const out: PolicyFile = { policies: [], peers: {} };
  const seen = new Set<string>();
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, i) => {
    const where = `${source} document ${i + 1}`;
    const err = doc.errors[0];
    if (err) throw new WeftError(ErrorCodes.BAD_INPUT, `${where}: invalid YAML: ${err.message}`, { field: where });
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    if (typeof value !== 'object' || Array.isArray(value)) throw new WeftError(ErrorCodes.BAD_INPUT, `${where}: must be a mapping (an AuthorizationPolicy, a List, or {peers: …})`, { field: where });
    const v = value as Record<string, unknown>;
    if (v.kind === undefined && 'peers' in v) {
      Object.assign(out.peers, parsePeers(v.peers, where));
      return;
    }
    const items = v.kind === 'List' ? (Array.isArray(v.items) ? (v.items as unknown[]) : []) : [v];
    items.forEach((item, j) => {
      const at = v.kind === 'List' ? `${where} items[${j}]` : where;
      const kind = (item as { kind?: unknown } | null)?.kind;
      if (kind !== POLICY_KIND) throw new WeftError(ErrorCodes.BAD_POLICY, `${at}: kind: must be "${POLICY_KIND}" (got ${JSON.stringify(kind)})`, { field: 'kind' });
      const p = parsePolicy(item, defaultNamespace, `${at} (AuthorizationPolicy ${nameOf(item)})`);
      const key = `${p.namespace}/${p.name}`;
      if (seen.has(key)) throw new WeftError(ErrorCodes.BAD_POLICY, `${at}: metadata.name: AuthorizationPolicy ${key} is defined twice`, { field: 'metadata.name' });
      seen.add(key);
      out.policies.push(p);
    });
  });
  return out;
}

function nameOf(doc: unknown): string {
  const m = (doc as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
  return `${typeof m?.namespace === 'string' ? m.namespace : 'default'}/${typeof m?.name === 'string' ? m.name : '(unnamed)'}`;
}

function parsePeers(raw: unknown, where: string): Record<string, PeerIdentity> {
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new WeftError(ErrorCodes.BAD_INPUT, `${where}: peers: must be a map of IP address → "namespace/serviceAccount"`, { field: 'peers' });
  const out: Record<string, PeerIdentity> = {};
  for (const [ip, id] of Object.entries(raw as Record<string, unknown>)) {
    if (!parseIp(ip)) throw new WeftError(ErrorCodes.BAD_INPUT, `${where}: peers.${ip}: must be an IPv4 or IPv6 address`, { field: `peers.${ip}` });
    const parts = typeof id === 'string' ? id.split('/') : [];
    const [namespace, serviceAccount] = parts;
    if (parts.length !== 2 || !namespace || !serviceAccount) {
      throw new WeftError(ErrorCodes.BAD_INPUT, `${where}: peers.${ip}: must be "namespace/serviceAccount" (got ${JSON.stringify(id)})`, { field: `peers.${ip}` });
    }
    out[ip] = { namespace, serviceAccount };
  }
  return out;
}
