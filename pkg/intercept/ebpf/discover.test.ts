import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroup2MountFrom, findPodCgroup, isPodCgroupName } from './discover.js';

const UID = '3f1c2a9e-5b7d-4c1e-9a2b-0d4e6f8a1b2c';

t.test('cgroup2 mount is read from /proc/mounts, wherever it is', async (t) => {
  t.equal(cgroup2MountFrom('tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n'), '/sys/fs/cgroup/unified');
  t.equal(cgroup2MountFrom('cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n'), null, 'v1 only: none');
});

t.test('pod cgroup names of both kubelet drivers', async (t) => {
  t.ok(isPodCgroupName(`kubepods-burstable-pod${UID.replaceAll('-', '_')}.slice`, UID), 'systemd, burstable');
  t.ok(isPodCgroupName(`kubepods-pod${UID.replaceAll('-', '_')}.slice`, UID), 'systemd, guaranteed');
  t.ok(isPodCgroupName(`pod${UID}`, UID), 'cgroupfs');
  t.notOk(isPodCgroupName(`pod${UID.slice(0, -1)}0`, UID), 'another pod');
  t.notOk(isPodCgroupName(`cri-containerd-${UID}.scope`, UID), 'a container, not the pod');
});

t.test('findPodCgroup searches the tree under the root', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'wfeb-cg-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const systemd = join(root, 'kubepods.slice', 'kubepods-besteffort.slice', `kubepods-besteffort-pod${UID.replaceAll('-', '_')}.slice`);
  mkdirSync(join(systemd, 'cri-containerd-abc.scope'), { recursive: true });
  t.equal(findPodCgroup(root, UID), systemd, 'systemd layout');

  const other = '11111111-2222-3333-4444-555555555555';
  const cgroupfs = join(root, 'kubepods', 'burstable', `pod${other}`);
  mkdirSync(join(cgroupfs, 'ctr'), { recursive: true });
  t.equal(findPodCgroup(root, other), cgroupfs, 'cgroupfs layout');

  t.throws(() => findPodCgroup(root, '99999999-2222-3333-4444-555555555555'), { code: 'WEFT_ERR_APPLY_FAILED', message: /no cgroup of pod 99999999.*give --cgroup/ });
});
