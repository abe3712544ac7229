// The logic behind `weft policy check`: turn --from/--to/--labels into a request and a
// workload, then decide with the same evaluation code the proxy runs. Pure.
import { ErrorCodes, WeftError } from '../errors/index.js';
import { parseIp } from './cidr.js';
import { authorizerFor, mapResolver, type DefaultInbound, type PeerIdentity } from './eval.js';
import type { PolicyFile } from './load.js';
import { normalizePath } from './path.js';
import type { AuthzDecision } from './types.js';

export interface CheckInput {
  from: string;
  to: string;
  http?: { method: string; path: string };
  labels: string;
  defaultInbound: DefaultInbound;
}

export interface CheckResult {
  decision: AuthzDecision;
  from: { address: string; identity?: PeerIdentity };
  to: { namespace: string; pod: string; port: number; labels: Record<string, string> };
  http?: { method: string; path: string };
}

/** `IP`, `ns/sa` or `ns/sa@IP`. A bare `ns/sa` takes its address from the file's peers
 * when one is listed there; otherwise the address is unknown: no ipBlocks match it. */
export function parseFrom(from: string, peers: Record<string, PeerIdentity>): { address: string; identity?: PeerIdentity } {
  const [idPart = '', ipPart] = from.split('@');
  if (!idPart.includes('/')) {
    if (!parseIp(from)) throw new WeftError(ErrorCodes.BAD_FLAG, `--from: "${from}" is not an IP address; allowed: IP, namespace/serviceAccount, namespace/serviceAccount@IP`, { field: '--from' });
    const id = mapResolver(peers)(from);
    return id ? { address: from, identity: id } : { address: from };
  }
  const [namespace, serviceAccount, extra] = idPart.split('/');
  if (!namespace || !serviceAccount || extra !== undefined) throw new WeftError(ErrorCodes.BAD_FLAG, `--from: "${from}" must be namespace/serviceAccount`, { field: '--from' });
  const identity = { namespace, serviceAccount };
  if (ipPart !== undefined) {
    if (!parseIp(ipPart)) throw new WeftError(ErrorCodes.BAD_FLAG, `--from: "${ipPart}" after "@" is not an IP address`, { field: '--from' });
    return { address: ipPart, identity };
  }
  const known = Object.entries(peers).find(([, id]) => id.namespace === namespace && id.serviceAccount === serviceAccount);
  return { address: known?.[0] ?? '', identity };
}

export function parseLabels(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of s.split(',').filter(Boolean)) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new WeftError(ErrorCodes.BAD_FLAG, `--labels: "${kv}" must be key=value`, { field: '--labels' });
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

export function checkRequest(file: PolicyFile, input: CheckInput): CheckResult {
  const m = /^([^/]+)\/([^:]+):(\d+)$/.exec(input.to);
  const port = Number(m?.[3]);
  if (!m || !(port >= 1 && port <= 65535)) throw new WeftError(ErrorCodes.BAD_FLAG, `--to: "${input.to}" must be namespace/pod:port with a port 1-65535`, { field: '--to' });
  const [, namespace = '', pod = ''] = m;
  const labels = parseLabels(input.labels);
  const from = parseFrom(input.from, file.peers);
  const known = mapResolver(file.peers);
  const resolver = (addr: string) => (addr === from.address && from.identity ? from.identity : known(addr));
  const authz = authorizerFor(file.policies, { namespace, name: pod, labels, defaultInbound: input.defaultInbound }, resolver);
  const decision = authz.decide({
    direction: 'inbound',
    source: { address: from.address, port: 0 },
    destination: { address: '', port },
    ...(input.http ? { http: input.http } : {}),
  });
  return { decision, from, to: { namespace, pod, port, labels }, ...(input.http ? { http: input.http } : {}) };
}

const REASONS: Record<AuthzDecision['reason'], string> = {
  'default-allow': 'no policy decided; the pod default is allow',
  'default-deny': 'no policy decided; the pod default is deny',
  'deny-policy': 'a DENY rule matched',
  'allow-policy': 'an ALLOW rule matched',
  'no-allow-match': 'ALLOW policies select this pod and none of their rules matched',
};

export function formatDecision(r: CheckResult): string {
  const d = r.decision;
  const who = r.from.identity ? `${r.from.identity.namespace}/${r.from.identity.serviceAccount}${r.from.address ? ` (${r.from.address})` : ''}` : r.from.address;
  const what = r.http ? `${r.http.method} ${r.http.path}${pathNote(r.http.path)}` : 'TCP';
  const by = d.policy !== undefined ? `\n  policy: ${d.policy}  rule: ${d.rule ?? '-'}` : '';
  return `${d.allow ? 'ALLOW' : 'DENY'} ${who} -> ${r.to.namespace}/${r.to.pod}:${r.to.port} ${what}\n  reason: ${d.reason}: ${REASONS[d.reason]}${by}`;
}

/** How the rules saw the path, when that is not what was typed. */
function pathNote(path: string): string {
  const n = normalizePath(path);
  if (n.ambiguous) return ` (ambiguous path: DENY path rules match it, ALLOW path rules do not)`;
  return n.path === path ? '' : ` (matched as ${n.path})`;
}
