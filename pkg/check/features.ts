// What `weft check` looks for: every kernel feature and tool a mode needs, with the mode(s)
// that need it. Pure data plus the pure verdict over probe results.

export const MODES = ['tproxy', 'ebpf'] as const;
export type Mode = (typeof MODES)[number];

export interface Feature {
  id: string;
  what: string;
  /** Modes that cannot work without it; empty: nice to have. */
  neededBy: readonly Mode[];
}

export const FEATURES = [
  { id: 'iptables', what: 'an iptables backend that programs this kernel (nft or legacy)', neededBy: ['tproxy'] },
  { id: 'iptables-nft', what: 'iptables-nft tools and nf_tables', neededBy: [] },
  { id: 'iptables-legacy', what: 'iptables-legacy tools and x_tables', neededBy: [] },
  { id: 'tproxy-target', what: 'TPROXY target (IPv4 and IPv6)', neededBy: ['tproxy'] },
  { id: 'socket-match', what: 'socket match with --transparent', neededBy: ['tproxy'] },
  { id: 'owner-match', what: 'owner match (--uid-owner, --gid-owner)', neededBy: ['tproxy'] },
  { id: 'mark', what: 'MARK target and mark match', neededBy: ['tproxy'] },
  { id: 'conntrack', what: 'conntrack match (--ctdir REPLY): replies are never diverted', neededBy: ['tproxy'] },
  { id: 'connmark', what: 'CONNMARK target (not used yet)', neededBy: [] },
  { id: 'policy-routing', what: 'ip rule fwmark + local route table (IPv4 and IPv6)', neededBy: ['tproxy'] },
  { id: 'cgroup2', what: 'cgroup v2 mounted', neededBy: ['ebpf'] },
  { id: 'bpf-syscall', what: 'bpf() system call', neededBy: ['ebpf'] },
  { id: 'btf', what: 'kernel BTF (/sys/kernel/btf/vmlinux)', neededBy: ['ebpf'] },
  { id: 'cgroup-sock-addr', what: 'cgroup/connect4,connect6 programs', neededBy: ['ebpf'] },
  { id: 'cgroup-sockopt', what: 'cgroup/getsockopt programs', neededBy: ['ebpf'] },
  { id: 'sock-ops', what: 'sockops programs', neededBy: ['ebpf'] },
  { id: 'sk-msg', what: 'sk_msg programs', neededBy: ['ebpf'] },
  { id: 'sockmap', what: 'sockmap and sockhash maps', neededBy: ['ebpf'] },
  { id: 'sk-lookup', what: 'sk_lookup programs', neededBy: ['ebpf'] },
  { id: 'bpffs', what: 'a bpf filesystem can be mounted', neededBy: ['ebpf'] },
] as const satisfies readonly Feature[];

export type FeatureId = (typeof FEATURES)[number]['id'];
export const FEATURE_IDS: readonly FeatureId[] = FEATURES.map((f) => f.id);

export interface ProbeResult {
  ok: boolean;
  /** What was found (a path, a backend) or why it is missing. */
  detail: string;
}

export interface FeatureReport extends ProbeResult {
  id: FeatureId;
  what: string;
  neededBy: readonly Mode[];
}

export interface CheckReport {
  /** Every mode asked for has what it needs. */
  ok: boolean;
  modes: readonly Mode[];
  /** Features missing that an asked-for mode needs. */
  missing: FeatureId[];
  features: FeatureReport[];
}

/** Combine probe results into the verdict; simulated-missing features are reported absent. */
export function verdict(results: Readonly<Record<FeatureId, ProbeResult>>, modes: readonly Mode[], simulateMissing: readonly FeatureId[] = []): CheckReport {
  const features: FeatureReport[] = FEATURES.map((f) => {
    const r = simulateMissing.includes(f.id) ? { ok: false, detail: 'simulated missing (--simulate-missing)' } : results[f.id];
    return { id: f.id, what: f.what, neededBy: f.neededBy, ...r };
  });
  const missing = features.filter((f) => !f.ok && f.neededBy.some((m) => modes.includes(m))).map((f) => f.id);
  return { ok: missing.length === 0, modes, missing, features };
}

export function renderTable(r: CheckReport): string {
  const rows = r.features.map((f) => [f.id, f.ok ? 'ok' : f.neededBy.some((m) => r.modes.includes(m)) ? 'MISSING' : 'absent', f.neededBy.join(',') || '-', f.detail]);
  const head = ['FEATURE', 'STATUS', 'NEEDED BY', 'DETAIL'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  const out = [line(head), ...rows.map(line)];
  out.push('');
  out.push(r.ok ? `ok: this host has everything ${r.modes.join(' and ')} mode needs` : `missing for ${r.modes.join('/')}: ${r.missing.join(', ')}`);
  return out.join('\n') + '\n';
}
