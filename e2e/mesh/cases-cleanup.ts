// Cases 7 and 8: what a mode leaves in the pod and on the node. eBPF: no netfilter rule in
// the pods, and every bpf program, link, map and pin the pods got is gone after deletion.
// TPROXY: re-running weft init in a live pod with traffic flowing breaks nothing and changes
// no rule, --cleanup then restores the pod's rules exactly (8a); after deletion and node
// teardown, nothing of the prefix remains.
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { isEmpty, leftovers, type Pod, type SandboxPod } from '../sandbox/index.js';
import { clientPod, host, inject, PORTS, PYTHON, sleep } from './helpers.js';
import { PREFIX, run, type World } from './world.js';

export async function noNetfilter(t: Test, w: World): Promise<void> {
  for (const pod of [w.web, w.client, w.clientX]) {
    const inNs = (argv: string[]) => host(['nsenter', `--net=${pod.netnsPath}`, ...argv]);
    const nft = await inNs(['nft', 'list', 'ruleset']);
    t.equal(nft.code, 0, `${pod.name}: nft list ruleset ran (${nft.stderr})`);
    t.equal(nft.stdout.trim(), '', `${pod.name}: nft list ruleset is empty`);
    for (const tool of ['iptables-save', 'ip6tables-save', 'iptables-legacy-save', 'ip6tables-legacy-save']) {
      const r = await inNs([tool]);
      const rules = r.stdout.split('\n').filter((l) => l.startsWith('-A'));
      t.same(rules, [], `${pod.name}: ${tool} shows no rule`);
    }
  }
}

export interface BpfObjects {
  progs: Set<number>;
  links: Set<number>;
  maps: Set<number>;
  pins: string[];
  /** Programs attached to the pods' cgroups (they live exactly as long as the cgroup). */
  cgroupProgs: number[];
}

/** bpffs creates these iterator files on every mount (CONFIG_BPF_PRELOAD); they are not pins. */
const BPFFS_BUILTIN = new Set(['maps.debug', 'progs.debug']);

function files(dir: string | undefined, top = true): string[] {
  if (!dir || !existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (top && BPFFS_BUILTIN.has(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p, false));
    else out.push(p);
  }
  return out;
}

async function json<T>(argv: string[]): Promise<T> {
  const r = await host(argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout || '[]') as T;
}

/** The bpf objects the running pods hold: programs on their cgroups, links on their cgroups or netns, their maps, the node's pins. */
export async function bpfObjects(w: World, pods: SandboxPod[]): Promise<BpfObjects> {
  const progs = new Set<number>();
  const links = new Set<number>();
  const maps = new Set<number>();
  const cgroupIds = new Set(pods.map((p) => statSync(p.cgroupPath).ino));
  const netnsInos = new Set(pods.map((p) => statSync(p.netnsPath).ino));
  const cgroupProgsOf = new Set<number>();
  for (const p of pods) {
    for (const a of await json<{ id: number }[]>(['bpftool', 'cgroup', 'show', p.cgroupPath, '-j'])) {
      progs.add(a.id);
      cgroupProgsOf.add(a.id);
    }
  }
  for (const l of await json<{ id: number; prog_id: number; cgroup_id?: number; netns_ino?: number }[]>(['bpftool', 'link', 'show', '-j'])) {
    if ((l.cgroup_id !== undefined && cgroupIds.has(l.cgroup_id)) || (l.netns_ino !== undefined && netnsInos.has(l.netns_ino))) {
      links.add(l.id);
      progs.add(l.prog_id);
    }
  }
  for (const id of progs) {
    const p = await json<{ map_ids?: number[] }>(['bpftool', 'prog', 'show', 'id', String(id), '-j']);
    for (const m of p.map_ids ?? []) maps.add(m);
  }
  return { progs, links, maps, pins: files(w.node.bpffs), cgroupProgs: [...cgroupProgsOf] };
}

async function remaining(w: World, seen: BpfObjects): Promise<{ progs: number[]; links: number[]; maps: number[]; pins: string[] }> {
  const progs = new Set((await json<{ id: number }[]>(['bpftool', 'prog', 'show', '-j'])).map((p) => p.id));
  const links = new Set((await json<{ id: number }[]>(['bpftool', 'link', 'show', '-j'])).map((p) => p.id));
  const maps = new Set((await json<{ id: number }[]>(['bpftool', 'map', 'show', '-j'])).map((p) => p.id));
  return {
    progs: [...seen.progs].filter((id) => progs.has(id)),
    links: [...seen.links].filter((id) => links.has(id)),
    maps: [...seen.maps].filter((id) => maps.has(id)),
    pins: files(w.node.bpffs),
  };
}

export async function bpfGone(t: Test, w: World, seen: BpfObjects): Promise<void> {
  t.ok(seen.progs.size > 0, `while the pods ran, bpf programs were attached to them (${[...seen.progs].join(',')}; links ${[...seen.links].join(',')}; pins ${seen.pins.length})`);
  for (const p of [w.web, w.client, w.clientX]) await p.delete();
  // The kernel releases a removed cgroup's programs (and their maps) asynchronously: wait, bounded.
  let left = await remaining(w, seen);
  for (let i = 0; i < 50 && left.progs.length + left.links.length + left.maps.length + left.pins.length > 0; i++) {
    await sleep(200);
    left = await remaining(w, seen);
  }
  // What lives exactly as long as the pod: every program attached to its cgroup.
  const cgroupProgs = new Set(seen.cgroupProgs);
  t.same(left.progs.filter((id) => cgroupProgs.has(id)), [], 'after pod deletion: none of the programs on the pods’ cgroups remains (bpftool prog show)');
  // The sk_lookup link is pinned (a link dies with its last fd, and the init container that
  // made it exits), so by design it outlives the pod as a defunct link until the next
  // `weft init` on the node sweeps it (docs/ebpf.md). Check both halves of that contract.
  const linkInfo = await json<{ id: number; netns_ino?: number }[]>(['bpftool', 'link', 'show', '-j']);
  const live = linkInfo.filter((l) => left.links.includes(l.id) && (l.netns_ino ?? 0) !== 0);
  t.same(live, [], 'after pod deletion: the pods’ sk_lookup links that remain are defunct (netns_ino 0), steering nothing');
  const next = await w.node.runPod(inject(clientPod('sweeper', 'ebpf')), { timeoutMs: 60000 });
  const swept = await remaining(w, seen);
  await next.delete();
  t.same(swept.pins.filter((f) => left.pins.includes(f)), [], "a later pod's weft init swept the deleted pods' pins");
  t.same(swept.progs, [], "after the sweep: none of the deleted pods' bpf programs remains (bpftool prog show)");
  t.same(swept.links, [], "after the sweep: none of the deleted pods' bpf links remains (bpftool link show)");
  t.same(swept.maps, [], "after the sweep: none of the deleted pods' bpf maps remains (bpftool map show)");
}

export async function nothingLeft(t: Test, w: World, deleted: boolean): Promise<void> {
  const pods = [w.web, w.client, w.clientX];
  if (!deleted) for (const p of pods) await p.delete();
  const netns = (await host(['ip', 'netns', 'list'])).stdout;
  for (const p of pods) {
    t.notOk(netns.includes(p.netns), `${p.name}: its network namespace is gone`);
    t.notOk(existsSync(p.cgroupPath), `${p.name}: its cgroup is gone`);
  }
  await w.node.teardown();
  const left = leftovers(PREFIX);
  t.ok(isEmpty(left), `after pod deletion and node teardown, leftovers('${PREFIX}') is empty: ${JSON.stringify(left)}`);
}

// Case 8a (TPROXY): re-run in a live pod, then --cleanup, against a snapshot taken before weft-init.
const SNAP = 'wfms-snap';
const CUT = '=====';

/** What --cleanup must restore, for both iptables backends and both families. */
const TOOLS = [
  'iptables-nft-save',
  'ip6tables-nft-save',
  'iptables-legacy-save',
  'ip6tables-legacy-save',
  'nft list ruleset',
  'ip -4 rule show',
  'ip -6 rule show',
  'ip -4 route show table all',
  'ip -6 route show table all',
];
const SNAPSHOT_SCRIPT = TOOLS.map((c) => `echo '${CUT} ${c}'; ${c} 2>&1`).join('; ');

/**
 * Counters and the save tools' comment lines move with traffic and time; so does the kernel's
 * `local fe80::… table local` route of the pod's own link-local address, added once its
 * duplicate address detection ends (seconds after the pod starts). Nothing else may.
 */
const normalize = (s: string): string =>
  s
    .split('\n')
    .filter((l) => !l.startsWith('#') && !/^local fe80::\S+ dev \S+ table local proto kernel /.test(l))
    .join('\n')
    .replace(/\[\d+:\d+\]/g, '[0:0]')
    .replace(/packets \d+ bytes \d+/g, 'packets 0 bytes 0')
    .trim();

/** The snapshot part of a log (the snapshot container's stdout). */
const section = (log: string): string => normalize(log.slice(log.indexOf(`${CUT} `)));

/** The injected pod, with a first init container that records the netns before weft-init. */
function podWithSnapshot(): Pod {
  const pod = inject(clientPod('rerun', 'tproxy'));
  const snap = { name: SNAP, image: 'mesh/snap:1', command: ['/bin/sh', '-c', SNAPSHOT_SCRIPT], securityContext: { runAsUser: 0, runAsGroup: 0, capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } } };
  pod.spec.initContainers = [snap, ...(pod.spec.initContainers ?? [])];
  return pod;
}

// One keep-alive connection asking every 50 ms, and fresh connections beside it, for `secs`.
const TRAFFIC = `
import json, socket, sys, threading, time
host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.time() + secs
res = {'kept': 0, 'kept_failed': None, 'fresh': 0, 'fresh_failed': 0}
def ask(f, s, close):
    s.sendall(('GET / HTTP/1.1\\r\\nHost: web\\r\\n%s\\r\\n' % ('Connection: close\\r\\n' if close else '')).encode())
    status = f.readline()
    length = 0
    while True:
        h = f.readline()
        if h in (b'\\r\\n', b''):
            break
        if h.lower().startswith(b'content-length:'):
            length = int(h.split(b':')[1])
    body = f.read(length)
    if not status.startswith(b'HTTP/1.1 200') or not body.startswith(b'hello from web'):
        raise OSError('bad answer %r %r' % (status, body))
def fresh():
    while time.time() < end:
        try:
            c = socket.create_connection((host, port), timeout=5)
            ask(c.makefile('rb'), c, True)
            c.close()
            res['fresh'] += 1
        except OSError:
            res['fresh_failed'] += 1
        time.sleep(0.02)
th = threading.Thread(target=fresh)
th.start()
s = socket.create_connection((host, port), timeout=5)
f = s.makefile('rb')
while time.time() < end:
    try:
        ask(f, s, False)
        res['kept'] += 1
    except OSError as e:
        res['kept_failed'] = str(e)
        break
    time.sleep(0.05)
th.join()
print(json.dumps(res))
`;

export async function rerunInLivePod(t: Test, w: World): Promise<void> {
  const pod = await w.node.runPod(podWithSnapshot(), { timeoutMs: 60000 });
  try {
    const before = section(pod.logs(SNAP));
    t.match(before, new RegExp(`${CUT} ip -4 rule show`), 'the pre-init snapshot was taken');
    const init = pod.manifest.spec.initContainers?.find((c) => c.name === 'weft-init');
    if (!init?.args) throw new Error('the injected pod has no weft-init args');
    const inPod = (argv: string[]) => host(['nsenter', `--net=${pod.netnsPath}`, ...argv], 30000);
    const state = async () => normalize((await inPod(['/bin/sh', '-c', SNAPSHOT_SCRIPT])).stdout);
    const applied = await state();
    t.not(applied, before, 'weft init changed the pod’s rules');

    // Traffic for 4 s; the re-run lands in the middle of it.
    const traffic = run(pod, [PYTHON, '-c', TRAFFIC, w.web.ipv4, String(PORTS.nginx), '4'], 30000);
    await new Promise((r) => setTimeout(r, 1500));
    const again = await inPod([w.node.nodeBinary, w.node.weftBinary, ...init.args]);
    t.equal(again.code, 0, `re-run of weft init ${init.args.join(' ')}: ${again.stderr.trim().slice(-500)}`);
    const flowed = await traffic;
    t.equal(flowed.code, 0, `traffic ran: ${flowed.err}`);
    const r = JSON.parse(flowed.out || '{}') as { kept?: number; kept_failed?: string | null; fresh?: number; fresh_failed?: number };
    t.equal(r.kept_failed ?? null, null, 'the keep-alive connection through both proxies survived the re-run');
    t.ok((r.kept ?? 0) > 20, `it kept answering (${r.kept} requests)`);
    t.equal(r.fresh_failed, 0, `no new connection failed during the re-run (${r.fresh} made)`);
    t.equal(await state(), applied, 'the re-run left iptables-save, ip rule and ip route show table all identical');

    const clean = await inPod([w.node.nodeBinary, w.node.weftBinary, ...init.args, '--cleanup']);
    t.equal(clean.code, 0, `weft init --cleanup: ${clean.stderr.trim().slice(-500)}`);
    t.equal(await state(), before, '--cleanup left iptables-save, nft, ip rule and ip route show table all exactly as before weft-init');
  } finally {
    await pod.delete();
  }
}
