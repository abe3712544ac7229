// Kernel e2e of `weft init --mode ebpf` against a throwaway pod (netns + cgroup + bpffs):
// outbound connects land on a stand-in proxy (uid 1337) that gets the original destination
// with SO_ORIGINAL_DST, inbound connections land on its 15006 listener through sk_lookup,
// exclusions pass, no netfilter rule exists, re-running attaches nothing twice, and after
// cleanup and deleting the pod nothing of weft's is left in the kernel.
import t from 'tap';
import { createLogger } from '../../pkg/log/index.js';
import { bpfLinkInfo, bpfMapInfo, bpfMapLookup, bpfProgInfo, bpfQuery } from '../../pkg/native/bpf.js';
import { nativeAvailable } from '../../pkg/native/index.js';
import { initSchema, type InitConfig } from '../../pkg/intercept/common.js';
import { runEbpfInit } from '../../pkg/intercept/ebpf/index.js';
import { MAPS, encodeCounterKey, sumPerCpu, type MapName } from '../../pkg/intercept/ebpf/maps.js';
import { PEER_IP, PEER_IP2, PEER_IP6, POD_IP, PYTHON, Pod, SCRIPTS, liveBpfObjects, missingPrerequisite, sh } from './harness.js';

const skip = missingPrerequisite() ?? (nativeAvailable() ? null : 'native addon not built');
const PROXY = { uid: 1337, gid: 1337 };
const log = createLogger('init', 'silent');

t.test('eBPF interception in a pod', { skip: skip ?? false }, async (t) => {
  const pod = new Pod().create();
  t.teardown(() => pod.destroy());
  const config: InitConfig = Object.freeze(
    initSchema.parse({
      mode: 'ebpf',
      cgroup: pod.cgroup,
      podUid: `wfeb-${pod.id}`,
      bpffs: pod.bpffs,
      ipv6: 'on',
      excludeOutboundPorts: '5432',
      excludeOutboundCidrs: `${PEER_IP2}/32`,
    }),
  );
  const pin = `${pod.bpffs}/weft/wfeb-${pod.id}/sk_lookup`;
  const init = (over: Partial<InitConfig> = {}) => runEbpfInit({ ...config, ...over }, { netnsPath: pod.podNsPath, log });

  t.equal(await init(), 0, 'weft init --mode ebpf attaches');
  const attached = bpfQuery(pod.cgroup).filter((p) => p.name.startsWith('weft_'));
  t.same(attached.map((p) => p.name).sort(), ['weft_connect4', 'weft_connect6', 'weft_getsockopt', 'weft_sockops'], 'four cgroup programs');
  const link = bpfLinkInfo(pin);
  t.ok(link && link.netnsIno > 0, 'sk_lookup link pinned on the pod netns');
  if (!link) return;
  const lookupProg = bpfProgInfo(link.progId);
  t.equal(lookupProg?.name, 'weft_sk_lookup');

  const ids = {
    progs: [...attached.map((p) => p.id), link.progId],
    maps: [...new Set([...attached.flatMap((p) => p.mapIds), ...(lookupProg?.mapIds ?? [])])],
    links: [link.id],
  };
  const maps = new Map(ids.maps.map((id) => [bpfMapInfo(id)?.name ?? '', id]));
  t.test('maps in the kernel have the shapes pkg/intercept/ebpf/maps.ts mirrors', async (t) => {
    for (const [name, want] of Object.entries(MAPS)) {
      const id = maps.get(name);
      t.ok(id, `${name} exists`);
      if (id === undefined) continue;
      const got = bpfMapInfo(id);
      // Without sk_msg (this test), local_socks is created with one entry (plan.ts).
      t.match(got, { type: want.type, keySize: want.keySize, valueSize: want.valueSize, maxEntries: name === 'local_socks' ? 1 : want.maxEntries }, name);
    }
    const shared = new Set([...attached.flatMap((p) => p.mapIds), ...(lookupProg?.mapIds ?? [])].filter((id) => (bpfMapInfo(id)?.name ?? '') in MAPS));
    t.equal(shared.size, Object.keys(MAPS).length, 'programs share one set of maps (one per name)');
  });

  // The peer: a server on :80 for both peer addresses, :5432, and IPv6 :80.
  await pod.startInPeer([PYTHON, `${SCRIPTS}/peer-server.py`, 'peer', '0.0.0.0@80', '0.0.0.0@5432', `${PEER_IP6}@80`]);
  // In the pod: the app's own servers (excluded inbound port 15020, a loopback-only port).
  await pod.startInPod([PYTHON, `${SCRIPTS}/peer-server.py`, 'pod', '0.0.0.0@15020', '127.0.0.1@7000', '0.0.0.0@8081']);
  // No proxy yet: inbound fails closed (the SYN is dropped) instead of reaching the app.
  t.match(pod.requestFromPeer(POD_IP, 8081), /^error: /, 'proxy down: an intercepted inbound port is not reachable, although the app listens');
  t.equal(pod.requestFromPeer(POD_IP, 15020), 'pod:15020:hello', 'proxy down: an excluded inbound port is');
  const proxy = await pod.startInPod([PYTHON, `${SCRIPTS}/standin-proxy.py`, '15001', '15006'], PROXY);
  const outbound = () => proxy.events().filter((e) => e.event === 'outbound');
  const inbound = () => proxy.events().filter((e) => e.event === 'inbound');

  t.equal(pod.request(PEER_IP, 80), 'via-proxy:peer:80:hello', 'app → 10.240.0.1:80 goes through the proxy and on to the peer');
  await proxy.settle();
  t.same(outbound(), [{ event: 'outbound', peer: outbound()[0]?.peer, orig: [PEER_IP, 80] }], 'the proxy got SO_ORIGINAL_DST, and its own upstream connect was not redirected again');
  t.match(outbound()[0]?.peer, ['127.0.0.1'], 'the app connected over loopback');

  t.equal(pod.request(`${PEER_IP6}`, 80), 'via-proxy:peer:80:hello', 'IPv6 app → [fd00:240::1]:80 goes through the proxy');
  await proxy.settle();
  t.same(outbound()[1]?.orig, [PEER_IP6, 80], 'IP6T_SO_ORIGINAL_DST answered');

  t.equal(pod.request(PEER_IP, 5432), 'peer:5432:hello', 'excluded outbound port goes direct');
  t.equal(pod.request(PEER_IP2, 80), 'peer:80:hello', 'excluded outbound CIDR goes direct');
  t.equal(pod.request('127.0.0.1', 7000), 'pod:7000:hello', 'loopback is untouched');
  const asProxy = pod.runInPod([PYTHON, `${SCRIPTS}/client.py`, PEER_IP, '80'], PROXY).out.trim();
  t.equal(asProxy, 'peer:80:hello', "the proxy uid's connections are not intercepted");
  await proxy.settle();
  t.equal(outbound().length, 2, 'no other connection reached the outbound listener');

  t.equal(pod.requestFromPeer(POD_IP, 8080), 'proxy-inbound', 'inbound to :8080 lands on the proxy');
  await proxy.settle();
  t.same(inbound()[0]?.local, [POD_IP, 8080], 'getsockname on the accepted socket is the original destination');
  t.equal(pod.requestFromPeer(POD_IP, 15020), 'pod:15020:hello', 'excluded inbound port 15020 reaches the app');
  await proxy.settle();
  t.equal(inbound().length, 1, 'the excluded port did not reach the proxy');

  const counter = (name: Parameters<typeof encodeCounterKey>[0]) => sumPerCpu(bpfMapLookup(maps.get('counters' satisfies MapName) ?? 0, encodeCounterKey(name)) ?? Buffer.alloc(0));
  t.equal(counter('redirected'), 2, 'counters: two connects redirected');
  t.equal(counter('origDstAnswered'), 2, 'counters: two SO_ORIGINAL_DST answered');
  t.equal(counter('steered'), 1, 'counters: one inbound steered');
  t.ok(counter('noListener') >= 1, 'counters: the inbound SYN(s) dropped while the proxy was down');

  const nft = sh('nsenter', [`--net=${pod.podNsPath}`, 'nft', 'list', 'ruleset']);
  t.equal(nft.code === 0 ? nft.out.trim() : 'nft failed: ' + nft.err, '', 'no netfilter rule in the pod netns');

  t.equal(await init(), 0, 're-running init succeeds');
  const again = bpfQuery(pod.cgroup).filter((p) => p.name.startsWith('weft_'));
  t.same(again.map((p) => p.id).sort(), attached.map((p) => p.id).sort(), 're-running attaches nothing twice');
  t.equal(bpfLinkInfo(pin)?.id, link.id, 'and keeps the same sk_lookup link');

  t.equal(await init({ cleanup: true }), 0, '--cleanup succeeds');
  t.same(bpfQuery(pod.cgroup).filter((p) => p.name.startsWith('weft_')), [], 'no weft program on the cgroup after cleanup');
  t.equal(bpfLinkInfo(pin), null, 'the pin is gone');
  t.equal(pod.request(PEER_IP, 80), 'peer:80:hello', 'after cleanup the app goes direct');
  t.equal(pod.requestFromPeer(POD_IP, 8080).startsWith('error'), true, 'after cleanup inbound :8080 is no longer steered (nothing listens)');
  t.equal(sh('find', [pod.bpffs, '-mindepth', '2']).out.trim(), '', 'no pin remains in bpffs');

  await pod.destroy();
  let alive: string[] = [];
  for (let i = 0; i < 50; i++) {
    alive = liveBpfObjects(ids);
    if (alive.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.same(alive, [], 'after cleanup and deleting the pod no program, link or map of weft remains');
});
