// The probes behind `weft check`. Netfilter and routing features are tried for real in a
// throwaway network namespace (deleted afterwards, also on failure); bpf features come from
// `bpftool feature probe kernel`; bpffs is mounted once in a temp dir and unmounted. Every
// command is bounded by a timeout.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { FeatureId, ProbeResult } from './features.js';

const PROBE_TIMEOUT_MS = 5_000;
const BPFTOOL_TIMEOUT_MS = 20_000;

interface Ran {
  ok: boolean;
  out: string;
  err: string;
}

function run(argv: readonly string[], input = '', timeout = PROBE_TIMEOUT_MS): Ran {
  const [cmd, ...args] = argv;
  const r = spawnSync(cmd ?? '', args, { input, encoding: 'utf8', timeout });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    const err = code === 'ENOENT' ? `${cmd}: not found on PATH` : code === 'ETIMEDOUT' ? `${cmd}: timed out after ${timeout} ms` : `${cmd}: ${r.error.message}`;
    return { ok: false, out: '', err };
  }
  return { ok: r.status === 0, out: r.stdout, err: (r.stderr || r.stdout).trim().split('\n')[0] ?? '' };
}

type Backend = 'nft' | 'legacy';
type Results = Partial<Record<FeatureId, ProbeResult>>;

const NETFILTER_PROBES: [FeatureId, string, string][] = [
  ['tproxy-target', 'PREROUTING', '-p tcp -j TPROXY --on-port 1 --tproxy-mark 0x1/0x1'],
  ['socket-match', 'PREROUTING', '-p tcp -m socket --transparent -j RETURN'],
  ['owner-match', 'OUTPUT', '-m owner --uid-owner 1 -m owner --gid-owner 1 -j RETURN'],
  ['mark', 'OUTPUT', '-m mark --mark 0x1/0x1 -j MARK --set-xmark 0x1/0x1'],
  ['conntrack', 'OUTPUT', '-m conntrack --ctdir REPLY -j RETURN'],
  ['connmark', 'PREROUTING', '-j CONNMARK --set-xmark 0x1/0x1'],
];

/** Try a rule in `ns` with both families; ok when both load. */
function tryRule(ns: string, backend: Backend, chain: string, rule: string): ProbeResult {
  const failures: string[] = [];
  for (const bin of [`iptables-${backend}-restore`, `ip6tables-${backend}-restore`]) {
    const r = run(['ip', 'netns', 'exec', ns, bin, '--noflush'], `*mangle\n-A ${chain} ${rule}\nCOMMIT\n`);
    // `ip netns exec` reports a missing tool in its own words.
    const err = /exec of ".*" failed: No such file or directory/.test(r.err) ? `${bin}: not found on PATH` : r.err;
    if (!r.ok) failures.push(`${bin.startsWith('ip6') ? 'IPv6' : 'IPv4'}: ${err}`);
  }
  return failures.length ? { ok: false, detail: failures.join('; ') } : { ok: true, detail: `loaded with iptables-${backend} (IPv4, IPv6)` };
}

function tryBackend(ns: string, backend: Backend): ProbeResult {
  return tryRule(ns, backend, 'OUTPUT', '-j RETURN');
}

function tryPolicyRouting(ns: string): ProbeResult {
  for (const f of ['-4', '-6']) {
    const dflt = f === '-4' ? '0.0.0.0/0' : '::/0';
    for (const argv of [
      ['ip', '-n', ns, f, 'rule', 'add', 'fwmark', '0x1/0x1', 'lookup', '100'],
      ['ip', '-n', ns, f, 'route', 'add', 'local', dflt, 'dev', 'lo', 'table', '100'],
    ]) {
      const r = run(argv);
      if (!r.ok) return { ok: false, detail: `${argv.slice(3).join(' ')}: ${r.err}` };
    }
  }
  return { ok: true, detail: 'fwmark rule and local route table (IPv4, IPv6)' };
}

/** Everything netfilter/routing, in one throwaway namespace. */
export function probeNetfilter(nsName: string, preferred: Backend | null): Results {
  const add = run(['ip', 'netns', 'add', nsName]);
  const out: Results = {};
  if (!add.ok) {
    const detail = `cannot create a scratch network namespace: ${add.err}`;
    for (const id of ['iptables', 'iptables-nft', 'iptables-legacy', 'policy-routing', ...NETFILTER_PROBES.map((p) => p[0])] as FeatureId[]) out[id] = { ok: false, detail };
    return out;
  }
  try {
    run(['ip', '-n', nsName, 'link', 'set', 'lo', 'up']);
    out['iptables-nft'] = tryBackend(nsName, 'nft');
    out['iptables-legacy'] = tryBackend(nsName, 'legacy');
    const usable: Backend[] = (['nft', 'legacy'] as const).filter((b) => out[`iptables-${b}`]?.ok);
    const backend = preferred && usable.includes(preferred) ? preferred : usable[0];
    out.iptables = backend
      ? { ok: true, detail: `${backend}${usable.length > 1 ? ` (also ${usable.filter((b) => b !== backend).join()})` : ''}` }
      : { ok: false, detail: `no backend works: nft: ${out['iptables-nft']?.detail}; legacy: ${out['iptables-legacy']?.detail}` };
    for (const [id, chain, rule] of NETFILTER_PROBES) {
      out[id] = backend ? tryRule(nsName, backend, chain, rule) : { ok: false, detail: 'no iptables backend to try it with' };
    }
    out['policy-routing'] = tryPolicyRouting(nsName);
  } finally {
    run(['ip', 'netns', 'del', nsName]);
  }
  return out;
}

const BPFTOOL_KEYS: [FeatureId, (d: BpftoolProbe) => boolean | undefined, string][] = [
  ['bpf-syscall', (d) => d.syscall_config?.have_bpf_syscall, 'have_bpf_syscall'],
  ['cgroup-sock-addr', (d) => d.program_types?.have_cgroup_sock_addr_prog_type, 'cgroup_sock_addr programs'],
  ['cgroup-sockopt', (d) => d.program_types?.have_cgroup_sockopt_prog_type, 'cgroup_sockopt programs'],
  ['sock-ops', (d) => d.program_types?.have_sock_ops_prog_type, 'sock_ops programs'],
  ['sk-msg', (d) => d.program_types?.have_sk_msg_prog_type, 'sk_msg programs'],
  ['sk-lookup', (d) => d.program_types?.have_sk_lookup_prog_type, 'sk_lookup programs'],
  ['sockmap', (d) => (d.map_types?.have_sockmap_map_type ?? false) && d.map_types?.have_sockhash_map_type, 'sockmap + sockhash maps'],
];

interface BpftoolProbe {
  syscall_config?: Record<string, boolean>;
  program_types?: Record<string, boolean>;
  map_types?: Record<string, boolean>;
}

export function probeBpf(): Results {
  const out: Results = {};
  const r = run(['bpftool', 'feature', 'probe', 'kernel', '-j'], '', BPFTOOL_TIMEOUT_MS);
  let data: BpftoolProbe | null = null;
  let why = r.err;
  if (r.ok) {
    try {
      data = JSON.parse(r.out) as BpftoolProbe;
    } catch (e) {
      why = `bpftool output is not JSON: ${(e as Error).message}`;
    }
  }
  for (const [id, get, what] of BPFTOOL_KEYS) {
    if (!data) out[id] = { ok: false, detail: `bpftool feature probe failed: ${why}` };
    else out[id] = get(data) ? { ok: true, detail: `${what} (bpftool feature probe)` } : { ok: false, detail: `kernel lacks ${what}` };
  }
  return out;
}

export function probeCgroup2(mounts = '/proc/mounts'): ProbeResult {
  try {
    const line = readFileSync(mounts, 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[2] === 'cgroup2');
    return line ? { ok: true, detail: line.split(' ')[1] ?? '' } : { ok: false, detail: `no cgroup2 entry in ${mounts}` };
  } catch (e) {
    return { ok: false, detail: `cannot read ${mounts}: ${(e as Error).message}` };
  }
}

export function probeBtf(path = '/sys/kernel/btf/vmlinux'): ProbeResult {
  return existsSync(path) ? { ok: true, detail: path } : { ok: false, detail: `${path} does not exist` };
}

/** Mount a fresh bpffs instance in a temp dir, then unmount and remove it. */
export function probeBpffs(prefix: string): ProbeResult {
  let dir: string;
  try {
    dir = mkdtempSync(`${tmpdir()}/${prefix}-bpffs-`);
  } catch (e) {
    return { ok: false, detail: `cannot make a temp dir: ${(e as Error).message}` };
  }
  try {
    const m = run(['mount', '-t', 'bpf', 'bpf', dir]);
    if (!m.ok) return { ok: false, detail: `mount -t bpf: ${m.err}` };
    const u = run(['umount', dir]);
    return u.ok ? { ok: true, detail: 'mounted and unmounted a bpffs instance' } : { ok: false, detail: `umount: ${u.err}` };
  } finally {
    try {
      rmdirSync(dir);
    } catch {
      /* still mounted: leave the dir rather than fail the report */
    }
  }
}
