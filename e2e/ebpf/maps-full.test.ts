// What weft does when a connection map cannot take another entry, and that entries cannot
// leak (docs/ebpf.md, "Maps and what happens when one is full"):
// - orig_dst is socket storage: no storage (the socket's optmem limit) fails open;
// - pairs is an LRU hand-over emptied as soon as the proxy's end is established, so even a
//   one-entry map serves many connections held open at once, and nothing stays in it;
// - local_socks full: the connection takes the normal TCP path, counted.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { createLogger } from '../../pkg/log/index.js';
import { bpfMapInfo, bpfMapLookup, bpfQuery } from '../../pkg/native/bpf.js';
import { nativeAvailable } from '../../pkg/native/index.js';
import { initSchema, type InitConfig } from '../../pkg/intercept/common.js';
import { runEbpfInit, type EbpfInitOptions } from '../../pkg/intercept/ebpf/index.js';
import { encodeCounterKey, sumPerCpu, type CounterName } from '../../pkg/intercept/ebpf/maps.js';
import { PEER_IP, PYTHON, Pod, SCRIPTS, missingPrerequisite } from './harness.js';

const skip = missingPrerequisite() ?? (nativeAvailable() ? null : 'native addon not built');
const log = createLogger('init', 'silent');
const PROXY = { uid: 1337, gid: 1337 };

async function interceptedPod(t: Test, opts: EbpfInitOptions = {}): Promise<{ pod: Pod; mapId: (name: string) => number; counter: (name: CounterName) => number }> {
  const pod = new Pod().create();
  t.teardown(() => pod.destroy());
  const config: InitConfig = initSchema.parse({ mode: 'ebpf', cgroup: pod.cgroup, podUid: `wfeb-${pod.id}`, bpffs: pod.bpffs, ipv6: 'off' });
  t.equal(await runEbpfInit(config, { netnsPath: pod.podNsPath, log, ...opts }), 0, 'weft attached');
  const sockops = bpfQuery(pod.cgroup).find((p) => p.name === 'weft_sockops');
  const mapId = (name: string): number => sockops?.mapIds.find((id) => bpfMapInfo(id)?.name === name) ?? 0;
  const counter = (name: CounterName): number => sumPerCpu(bpfMapLookup(mapId('counters'), encodeCounterKey(name)) ?? Buffer.alloc(0));
  await pod.startInPeer([PYTHON, `${SCRIPTS}/peer-server.py`, 'peer', '0.0.0.0@80']);
  await pod.startInPod([PYTHON, `${SCRIPTS}/standin-proxy.py`, '15001', '15006'], PROXY);
  return { pod, mapId, counter };
}

function entries(mapId: number): number {
  const r = spawnSync('bpftool', ['-j', 'map', 'dump', 'id', String(mapId)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bpftool map dump: ${r.stderr}`);
  return (JSON.parse(r.stdout) as unknown[]).length;
}

// Five connections established one after the other and held open, then used.
const HOLD_OPEN = `import socket
cs = [socket.create_connection(('${PEER_IP}', 80), timeout=5) for _ in range(5)]
for c in cs: c.sendall(b'hello')
print(' '.join(c.recv(100).decode() for c in cs))`;

t.test('pairs: a one-entry hand-over serves connections held open at once, and keeps nothing', { skip: skip ?? false }, async (t) => {
  const { pod, mapId, counter } = await interceptedPod(t, { maxEntries: { pairs: 1 } });
  const out = pod.runInPod([PYTHON, '-c', HOLD_OPEN]).out.trim();
  t.equal(out, Array(5).fill('via-proxy:peer:80:hello').join(' '), 'every connection reached the proxy with its original destination');
  t.equal(counter('origDstAnswered'), 5, 'five SO_ORIGINAL_DST answered');
  t.equal(counter('origDstUnknown'), 0, 'none unknown');
  t.equal(entries(mapId('pairs')), 0, 'pairs is empty: every entry moved into the socket it belongs to');
});

// A second socket bound to the same local port connects to the same (rewritten) place:
// connect fails with EADDRNOTAVAIL after connect4 ran, before any TCP callback (the first
// socket stays open, so its 4-tuple stays taken).
const FAILING_CONNECTS = `import socket
a = socket.socket(); a.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); a.bind(('0.0.0.0', 40123))
a.connect(('${PEER_IP}', 80)); a.sendall(b'hello'); a.recv(100)  # served: the proxy is free again
errs = []
for _ in range(20):
    b = socket.socket(); b.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); b.bind(('0.0.0.0', 40123))
    try: b.connect(('${PEER_IP}', 80))
    except OSError as e: errs.append(e.errno)
    b.close()
c = socket.create_connection(('${PEER_IP}', 80), timeout=5); c.sendall(b'hello')
print(len(errs), sorted(set(errs)), c.recv(100).decode())`;

t.test('orig_dst: connects that fail half-way leave nothing behind', { skip: skip ?? false }, async (t) => {
  const { pod, counter } = await interceptedPod(t);
  const r = pod.runInPod([PYTHON, '-c', FAILING_CONNECTS]);
  t.equal(r.out.trim(), '20 [99] via-proxy:peer:80:hello', `twenty connects failed with EADDRNOTAVAIL, then one went through the proxy ${r.err}`);
  t.equal(counter('origDstFull'), 0, 'nothing ran out');
});

t.test('orig_dst: no socket storage fails open, counted', { skip: skip ?? false }, async (t) => {
  const { pod, counter } = await interceptedPod(t);
  // The socket storage is charged to the socket's optmem; this pod's netns allows none.
  const set = spawnSync('nsenter', [`--net=${pod.podNsPath}`, 'sysctl', '-qw', 'net.core.optmem_max=0'], { encoding: 'utf8' });
  if (set.status !== 0) {
    t.comment(`skipped: net.core.optmem_max is not per network namespace here: ${set.stderr}`);
    return;
  }
  t.equal(pod.request(PEER_IP, 80), 'peer:80:hello', 'the connection went straight to the peer');
  t.equal(counter('origDstFull'), 1, 'counted in origDstFull');
  t.equal(counter('redirected'), 0, 'not redirected');
});

t.test('local_socks full: the connection takes the TCP path, counted', { skip: skip ?? false }, async (t) => {
  const { pod, counter } = await interceptedPod(t, { skMsg: true, maxEntries: { local_socks: 1 } });
  t.equal(pod.request(PEER_IP, 80), 'via-proxy:peer:80:hello', 'the request went through the proxy and back');
  t.equal(counter('sockhashFull'), 1, "the proxy's end did not fit: counted in sockhashFull");
  t.equal(counter('msgRedirected'), 0, 'nothing was redirected by sk_msg');
});
