// weft_getsockopt sees every getsockopt of the pod. With a buffer bigger than the page the
// program sees, kernels before 6.5 fail the call with EFAULT unless the program sets
// optlen 0 on the way out; weft must do so and otherwise leave the kernel's result alone.
// A probe program attached after weft's (e2e/ebpf/optlen-probe.bpf.c) shows the optlen
// weft handed on, so the test tells the difference on this kernel too (6.5+ forgives it).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../pkg/log/index.js';
import { nativeAvailable } from '../../pkg/native/index.js';
import { initSchema } from '../../pkg/intercept/common.js';
import { runEbpfInit } from '../../pkg/intercept/ebpf/index.js';
import { PEER_IP, PYTHON, Pod, SCRIPTS, missingPrerequisite, sh } from './harness.js';

const skip = missingPrerequisite() ?? (nativeAvailable() ? null : 'native addon not built') ?? (sh('sh', ['-c', 'command -v clang']).code === 0 ? null : 'clang missing');
const log = createLogger('init', 'silent');
const SOL_IP = 0;
const SOL_TCP = 6;
const ENOPROTOOPT = 92;
const TCP_ESTABLISHED = 1;

/** The optlen the probe saw after weft's program, per (proxy uid?, level, optname). */
function probeSeen(pin: string): Map<string, number> {
  const r = spawnSync('bpftool', ['-j', 'map', 'dump', 'pinned', pin], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bpftool map dump: ${r.stderr}`);
  const rows = JSON.parse(r.stdout) as { key: string[]; value: string[] }[];
  const num = (bytes: string[]): number => Buffer.from(bytes.map((b) => Number.parseInt(b, 16))).readInt32LE(0);
  return new Map(
    rows.map((row) => {
      const k = num(row.key) >>> 0;
      return [`${k >>> 31 ? 'proxy' : 'app'}:${(k >>> 16) & 0x7fff}:${k & 0xffff}`, num(row.value)];
    }),
  );
}

t.test('big getsockopt buffers keep the kernel result in an intercepted pod', { skip: skip ?? false }, async (t) => {
  const pod = new Pod().create();
  const work = mkdtempSync(join(tmpdir(), 'wfeb-probe-'));
  t.teardown(async () => {
    await pod.destroy();
    rmSync(work, { recursive: true, force: true });
  });
  const config = initSchema.parse({ mode: 'ebpf', cgroup: pod.cgroup, podUid: `wfeb-${pod.id}`, bpffs: pod.bpffs, ipv6: 'off' });
  t.equal(await runEbpfInit(config, { netnsPath: pod.podNsPath, log }), 0, 'weft attached');

  const obj = join(work, 'probe.o');
  const arch = `/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
  const cc = sh('clang', ['-O2', '-g', '-target', 'bpf', '-I', arch, '-c', `${SCRIPTS}/optlen-probe.bpf.c`, '-o', obj]);
  t.equal(cc.code, 0, `probe compiled ${cc.err}`);
  const prog = `${pod.bpffs}/optlen_probe`;
  const maps = `${pod.bpffs}/optlen_probe_maps`;
  const load = sh('bpftool', ['prog', 'load', obj, prog, 'type', 'cgroup/getsockopt', 'pinmaps', maps]);
  t.equal(load.code, 0, `probe loaded ${load.err}`);
  const attach = sh('bpftool', ['cgroup', 'attach', pod.cgroup, 'getsockopt', 'pinned', prog, 'multi']);
  t.equal(attach.code, 0, `probe attached after weft ${attach.err}`);

  await pod.startInPeer([PYTHON, `${SCRIPTS}/peer-server.py`, 'peer', '0.0.0.0@80']);
  const proxy = await pod.startInPod([PYTHON, `${SCRIPTS}/bigopt.py`, 'proxy'], { uid: 1337, gid: 1337 });
  const app = JSON.parse(pod.runInPod([PYTHON, `${SCRIPTS}/bigopt.py`, 'app', PEER_IP, '80']).out || '{}') as Record<string, unknown>;
  const fromProxy = JSON.parse(await proxy.waitFor((l) => l.startsWith('{'))) as Record<string, unknown>;

  for (const [who, got] of [['app', app], ['proxy', fromProxy]] as const) {
    t.match(got.tcp_info_big, { state: TCP_ESTABLISHED }, `${who}: TCP_INFO with an 8 KiB buffer succeeds with the kernel's data`);
    t.ok(((got.tcp_info_big as { len?: number }).len ?? 0) < 8192, `${who}: and the kernel's length`);
    t.match(got.tcp_info_small, { state: TCP_ESTABLISHED }, `${who}: TCP_INFO with a 100-byte buffer too`);
    t.same(got.unknown_big, { errno: ENOPROTOOPT }, `${who}: an unknown TCP option with an 8 KiB buffer keeps the kernel's ENOPROTOOPT`);
  }
  t.same(fromProxy.orig_dst_big, { len: 16, dst: [PEER_IP, 80] }, 'SO_ORIGINAL_DST is still answered into an 8 KiB buffer');

  const seen = probeSeen(`${maps}/seen`);
  t.equal(seen.get(`app:${SOL_TCP}:11`), 100, 'a small buffer is passed on as the kernel filled it');
  t.equal(seen.get(`app:${SOL_TCP}:250`), 0, 'app: a failed 8 KiB call is handed back to the kernel (optlen 0)');
  t.equal(seen.get(`proxy:${SOL_TCP}:250`), 0, 'proxy: the same');
  t.equal(seen.get(`proxy:${SOL_IP}:80`), 16, "the proxy's SO_ORIGINAL_DST answer is passed on");
});
