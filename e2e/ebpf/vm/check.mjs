// Runs inside the VM of run.sh (argv[2]: the compiled passthru.bpf.c): an 8 KiB getsockopt
// under a pass-through program that leaves optlen alone (EFAULT on kernels without
// 29ebbba7d461) and under weft's, then weft init for real, sk_msg off and on (every object
// through this kernel's verifier), with bigopt.py and a request through a stand-in proxy.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { Pod, PYTHON, PEER_IP, SCRIPTS } from '../../../dist/e2e/ebpf/harness.js';
import { initSchema } from '../../../dist/pkg/intercept/common.js';
import { runEbpfInit } from '../../../dist/pkg/intercept/ebpf/index.js';
import { bpfQuery } from '../../../dist/pkg/native/bpf.js';
import { createLogger } from '../../../dist/pkg/log/index.js';
const ctl = process.argv[2];
const log = createLogger('init', 'silent');
const say = (...a) => console.log('CHECK', ...a);
const expect = (label, got, want) => say(got === want ? 'ok' : 'FAILED', `${label}: ${got}${got === want ? '' : ` (want ${want})`}`);
const BIG = `import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
import socket
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)
buf = ctypes.create_string_buffer(8192); n = ctypes.c_uint32(8192)
r = libc.getsockopt(s.fileno(), 6, 250, buf, ctypes.byref(n))
print('ok' if r == 0 else errno.errorcode[ctypes.get_errno()])`;

// 1. control: a program that leaves optlen alone
const cg = '/sys/fs/cgroup/ctl';
mkdirSync(cg, { recursive: true });
const sh = (c, a) => { const r = spawnSync(c, a, { encoding: 'utf8' }); return (r.stdout + r.stderr).trim(); };
say('control load', sh('bpftool', ['prog', 'load', ctl, '/sys/fs/bpf/passthru', 'type', 'cgroup/getsockopt']));
say('control attach', sh('bpftool', ['cgroup', 'attach', cg, 'getsockopt', 'pinned', '/sys/fs/bpf/passthru', 'multi']));
say('no program: 8 KiB getsockopt(SOL_TCP, 250) =', sh(PYTHON, ['-c', BIG]));
say('control (optlen left alone; EFAULT = this kernel lacks 29ebbba7d461): 8 KiB getsockopt(SOL_TCP, 250) =', sh('sh', ['-c', `echo $$ > ${cg}/cgroup.procs && exec ${PYTHON} -c "$0"`, BIG]));
sh('bpftool', ['cgroup', 'detach', cg, 'getsockopt', 'pinned', '/sys/fs/bpf/passthru']);

// 2. weft, for real, sk_msg on (all six programs through the verifier)
for (const skMsg of [false, true]) {
  const pod = new Pod().create();
  try {
    const config = initSchema.parse({ mode: 'ebpf', cgroup: pod.cgroup, podUid: `wfeb-${pod.id}`, bpffs: pod.bpffs, ipv6: 'on' });
    const rc = await runEbpfInit(config, { netnsPath: pod.podNsPath, log, skMsg });
    expect(`weft init (sk_msg ${skMsg}) exit code`, rc, 0);
    expect(`cgroup programs (sk_msg ${skMsg})`, bpfQuery(pod.cgroup).map((p) => p.name).sort().join(','), 'weft_connect4,weft_connect6,weft_getsockopt,weft_sockops');
    expect(`pins (sk_msg ${skMsg})`, sh('find', [pod.bpffs, '-type', 'f', '-printf', '%f\n']).split('\n').sort().join(' '), skMsg ? 'local_socks sk_lookup' : 'sk_lookup');
    expect(`weft (sk_msg ${skMsg}): 8 KiB getsockopt(SOL_TCP, 250) in the pod`, pod.runInPod([PYTHON, '-c', BIG]).out.trim(), 'ENOPROTOOPT');
    await pod.startInPeer([PYTHON, `${SCRIPTS}/peer-server.py`, 'peer', '0.0.0.0@80']);
    const proxy = await pod.startInPod([PYTHON, `${SCRIPTS}/bigopt.py`, 'proxy'], { uid: 1337, gid: 1337 });
    const app = JSON.parse(pod.runInPod([PYTHON, `${SCRIPTS}/bigopt.py`, 'app', PEER_IP, '80']).out || '{}');
    const fromProxy = JSON.parse(await proxy.waitFor((l) => l.startsWith('{'), 60000));
    for (const [who, r] of [['app', app], ['proxy', fromProxy]]) {
      expect(`${who} (sk_msg ${skMsg}): TCP_INFO into 8 KiB, state`, r.tcp_info_big?.state, 1);
      expect(`${who} (sk_msg ${skMsg}): unknown TCP option into 8 KiB, errno`, r.unknown_big?.errno, 92);
    }
    expect(`proxy (sk_msg ${skMsg}): SO_ORIGINAL_DST into 8 KiB`, JSON.stringify(fromProxy.orig_dst_big), JSON.stringify({ len: 16, dst: [PEER_IP, 80] }));
    if (skMsg) {
      await pod.stopProcesses(); // the peer server too: start both again
      await pod.startInPeer([PYTHON, `${SCRIPTS}/peer-server.py`, 'peer', '0.0.0.0@80']);
      await pod.startInPod([PYTHON, `${SCRIPTS}/standin-proxy.py`, '15001', '15006'], { uid: 1337, gid: 1337 });
      expect('weft (sk_msg on): request through the proxy', pod.request(PEER_IP, 80), 'via-proxy:peer:80:hello');
      expect('weft (sk_msg on): inbound to the proxy', pod.requestFromPeer('10.240.0.2', 8080), 'proxy-inbound');
    }
  } catch (e) {
    say('FAILED', String(e?.stack ?? e));
  } finally {
    await pod.destroy();
  }
}
say('end');
