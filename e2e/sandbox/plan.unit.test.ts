// The sandbox's pure parts: capabilities as containerd computes them, Kubernetes $(VAR)
// expansion and the downward API, image name matching, hostPath mapping, launcher argv.
// Needs no root: `*.unit.test.ts` under e2e/ runs with the unit tests (scripts/test.mjs).
import t from 'tap';
import { DEFAULT_CAPABILITIES, NAMED_CAPABILITIES, allCapabilities, capBit, capMask, capabilityPlan } from './caps.js';
import { containerEnv, expand, type DownwardFields } from './env.js';
import { imageKeys } from './images.js';
import { launchArgv } from './launch.js';
import { checkPod, mapHostPath } from './podspec.js';

t.test('capabilities: default set, add/drop, ALL, non-root, privileged', async (t) => {
  const plan = (sc: Record<string, unknown>, pod: Record<string, unknown> = {}, lastCap = 40) =>
    capabilityPlan({ containers: [], securityContext: pod }, { name: 'c', securityContext: sc }, 'spec.containers[0]', { lastCap });
  const ALL_40 = allCapabilities(40);
  t.equal(capMask(DEFAULT_CAPABILITIES), 0xa80425fbn, 'the mask containerd (and docker) show');
  const root = plan({});
  t.strictSame([root.uid, root.gid], [0, 0]);
  t.strictSame(new Set(root.effective), new Set(DEFAULT_CAPABILITIES));
  t.strictSame(plan({ capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } }).effective, ['NET_BIND_SERVICE'], 'adds survive drop ALL');
  t.strictSame(plan({ capabilities: { drop: ['ALL'] } }).bounding, []);
  t.strictSame(plan({ capabilities: { add: ['ALL'] } }).bounding, ALL_40);
  const nr = plan({ runAsUser: 1337, capabilities: { add: ['cap_net_admin'] } });
  t.strictSame(nr.effective, [], 'non-root: nothing effective');
  t.ok(nr.bounding.includes('NET_ADMIN'), 'non-root: bounding keeps the added capability');
  t.strictSame([plan({}, { runAsUser: 5, runAsGroup: 6 }).uid, plan({ runAsUser: 7 }, { runAsUser: 5 }).uid], [5, 7], 'container wins over pod');
  t.ok(plan({ allowPrivilegeEscalation: false }).setpriv.includes('--no-new-privs'));
  t.strictSame(plan({ privileged: true }).bounding, ALL_40);
  t.equal(ALL_40.length, 41);
  t.equal(capMask(ALL_40), (1n << 41n) - 1n, 'bits 0..40, in bit order');
  t.equal(capBit('NET_ADMIN'), 12);
  t.equal(capBit('CHECKPOINT_RESTORE'), 40);
  // The host decides what "every capability" is: cap_last_cap, not a fixed list.
  const newer = plan({ privileged: true }, {}, 42);
  t.strictSame(newer.bounding.slice(-3), ['CHECKPOINT_RESTORE', 'CAP_41', 'CAP_42'], 'bits past the named ones are kept, by number');
  t.match(newer.setpriv.find((a) => a.startsWith('--bounding-set')), /,\+cap_40,\+cap_41,\+cap_42$/);
  t.equal(capMask(newer.bounding), (1n << 43n) - 1n);
  t.strictSame(plan({ capabilities: { add: ['ALL'] } }, {}, 42).bounding.length, 43, 'add ALL: the host set too');
  const older = plan({ privileged: true }, {}, 37);
  t.equal(older.bounding.length, 38);
  t.notOk(older.bounding.includes('BPF'), 'an older kernel has no BPF capability');
  t.throws(() => plan({ capabilities: { add: ['BPF'] } }, {}, 37), { message: /unknown capability "BPF"/ });
  t.ok(plan({ capabilities: { add: ['CAP_41'] } }, {}, 41).bounding.includes('CAP_41'));
  t.throws(() => allCapabilities(-1), { message: /cap_last_cap: -1 is not a capability bit/ });
  t.equal(NAMED_CAPABILITIES.length, 41);
  t.match(plan({}).setpriv.find((a) => a.startsWith('--bounding-set')), /^--bounding-set=-all,\+cap_0,\+cap_1,\+cap_3,/, 'setpriv takes the bit numbers');
  t.throws(() => plan({ capabilities: { add: ['NET_ADMN'] } }), { code: 'WEFT_ERR_SANDBOX', message: /spec\.containers\[0\]\.securityContext\.capabilities\.add: unknown capability "NET_ADMN"/ });
  t.throws(() => plan({ runAsNonRoot: true }), { message: /runAsNonRoot is true but the container would run as uid 0/ });
  t.match(plan({}, { supplementalGroups: [10], fsGroup: 20 }).setpriv, ['/usr/bin/setpriv', '--reuid=0', '--regid=0', '--groups=10,20']);
});

t.test('env: $(VAR) expansion as Kubernetes does it, downward API', async (t) => {
  t.equal(expand('$(A)-$(B)-$$(A)-$(A', { A: 'x' }), 'x-$(B)-$(A)-$(A');
  t.equal(expand('$A $', { A: 'x' }), '$A $');
  const f: DownwardFields = {
    name: 'p', namespace: 'ns', uid: 'u', podIP: '10.0.0.1', podIPs: ['10.0.0.1', 'fd00::1'], hostIP: '10.0.0.254',
    serviceAccountName: 'sa', nodeName: 'n', labels: { app: 'web' }, annotations: {},
  };
  const env = containerEnv(
    {
      name: 'c',
      env: [
        { name: 'IPS', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } },
        { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        { name: 'BOTH', value: '$(APP)@$(IPS)' },
        { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
      ],
    },
    'spec.containers[0]',
    f,
  );
  t.strictSame(env, { IPS: '10.0.0.1,fd00::1', APP: 'web', BOTH: 'web@10.0.0.1,fd00::1', CPU: '2' });
  // The kubelet expands against the container's own variables, in order: not the runtime's
  // PATH/HOSTNAME/HOME, and not a variable defined later.
  const own = containerEnv(
    {
      name: 'c',
      env: [
        { name: 'P', value: '$(PATH):/extra' },
        { name: 'H', value: '$(HOSTNAME)/$(HOME)' },
        { name: 'EARLY', value: '$(LATE)' },
        { name: 'LATE', value: 'late' },
        { name: 'PATH', value: '/opt/bin:$(P)' },
      ],
    },
    'spec.containers[0]',
    f,
  );
  t.strictSame(own, { P: '$(PATH):/extra', H: '$(HOSTNAME)/$(HOME)', EARLY: '$(LATE)', LATE: 'late', PATH: '/opt/bin:$(PATH):/extra' });
  t.throws(() => containerEnv({ name: 'c', env: [{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'spec.bogus' } } }] }, 'spec.containers[0]', f), {
    message: /spec\.containers\[0\]\.env\[0\]\.valueFrom\.fieldRef\.fieldPath: "spec\.bogus" is not supported/,
  });
});

t.test('images, hostPaths, pods', async (t) => {
  t.strictSame(imageKeys('reg.io:5000/team/nginx:1.25@sha256:abc'), ['reg.io:5000/team/nginx:1.25@sha256:abc', 'reg.io:5000/team/nginx', 'nginx']);
  t.strictSame(imageKeys('redis'), ['redis']);
  const map = { '/sys/fs/bpf': '/tmp/x/bpffs', '/sys/fs/cgroup': '/sys/fs/cgroup/unified' };
  t.equal(mapHostPath('/sys/fs/bpf/weft/', map), '/tmp/x/bpffs/weft');
  t.equal(mapHostPath('/sys/fs/cgroup', map), '/sys/fs/cgroup/unified');
  t.equal(mapHostPath('/sys/fs/bpfx', map), '/sys/fs/bpfx');
  const pod = checkPod({ metadata: { name: 'a' }, spec: { containers: [{ name: 'c' }] } });
  t.equal(pod.metadata?.namespace, 'default');
  t.match(pod.metadata?.uid, /^[0-9a-f-]{36}$/);
  t.throws(() => checkPod({ metadata: { name: 'a' }, spec: { containers: [{ name: 'c' }, { name: 'c' }] } }), { message: /spec\.containers\[1\]\.name: "c" is used twice/ });
  t.throws(() => checkPod({ metadata: { name: 'a' }, spec: { containers: [{ name: 'c', volumeMounts: [{ name: 'v', mountPath: '/v' }] }] } }), {
    message: /spec\.containers\[0\]\.volumeMounts\[0\]\.name: "v" names no volume/,
  });
  t.throws(() => checkPod({ metadata: { name: 'a' }, spec: { volumes: [{ name: 'v', configMap: {} }], containers: [{ name: 'c' }] } }), { message: /only hostPath and emptyDir/ });
});

t.test('the launcher quotes every argument and sets only the container env', async (t) => {
  const argv = launchArgv({ cgroupDir: '/cg', netnsPath: '/run/netns/x', mounts: [{ source: "/a'b", target: '/t', readOnly: true }], setpriv: ['setpriv', '--'], argv: ['echo', "it's $(x)"], env: { A: '1' } });
  t.equal(argv[0], '/bin/sh');
  t.match(argv[2], /echo \$\$ > '\/cg\/cgroup\.procs'/);
  t.match(argv[2], /unshare/);
  t.match(argv[2], /remount,bind,ro/);
  t.match(argv[2], /env.*-i.*A=1/s);
});
