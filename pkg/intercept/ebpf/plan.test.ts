import t from 'tap';
import { initSchema } from '../common.js';
import { describePlan, planEbpf, toLoadSpec } from './plan.js';
import { podKeyOf } from './index.js';

const inputs = { cgroupPath: '/cg/pod1', netnsPath: '/proc/self/ns/net', bpffs: '/sys/fs/bpf/', podKey: 'uid-1', objDir: '/o', ipv6: false, skMsg: false };

t.test('the plan attaches every program, fills exclusions, never sk_msg unless asked', async (t) => {
  const config = initSchema.parse({ mode: 'ebpf', excludeOutboundPorts: '5432,3306', excludeOutboundCidrs: '10.0.0.0/8,fd00::/8', excludeInboundPorts: '9000' });
  const plan = planEbpf(config, inputs);
  t.equal(plan.linkPinPath, '/sys/fs/bpf/weft/uid-1/sk_lookup', 'pin under <bpffs>/weft/<pod>/');
  t.same(plan.objects, ['/o/connect4.bpf.o', '/o/connect6.bpf.o', '/o/sockops.bpf.o', '/o/getsockopt.bpf.o', '/o/sk_lookup.bpf.o']);
  t.same(plan.excludeInboundPorts, [9000, 15020, 15021], '15020 and 15021 always excluded');
  t.same(plan.excludeOutboundCidrs, ['10.0.0.0/8'], 'IPv6 CIDRs dropped when IPv6 is off');
  t.equal(plan.runtime.includeAll, true);
  const spec = toLoadSpec(plan);
  t.equal(spec.mapEntries.filter((e) => e.map === 'excluded_ports').length, 5);
  t.equal(spec.mapEntries.filter((e) => e.map === 'excluded_cidrs').length, 1);
  t.equal(spec.rodata.readUInt32LE(12), 2, 'config flags: include all, IPv6 off');
  t.same(planEbpf(config, { ...inputs, skMsg: true }).objects.at(-1), '/o/sk_msg.bpf.o');
});

t.test('include list turns off include-all', async (t) => {
  const config = initSchema.parse({ mode: 'ebpf', includeOutboundCidrs: '10.96.0.0/12' });
  const plan = planEbpf(config, { ...inputs, ipv6: true });
  t.equal(plan.runtime.includeAll, false);
  t.equal(toLoadSpec(plan).mapEntries.filter((e) => e.map === 'included_cidrs').length, 1);
  t.equal(toLoadSpec(plan).rodata.readUInt32LE(12), 1, 'IPv6 on, include-all off');
});

t.test('--dry-run lines name every attach point', async (t) => {
  const lines = describePlan(planEbpf(initSchema.parse({ mode: 'ebpf' }), inputs));
  t.match(lines.join('\n'), /attach weft_connect4 .* to cgroup \/cg\/pod1 \(BPF_F_ALLOW_MULTI\)/);
  t.match(lines.join('\n'), /attach weft_sk_lookup .* to netns \/proc\/self\/ns\/net as a link pinned at \/sys\/fs\/bpf\/weft\/uid-1\/sk_lookup/);
  t.match(lines.join('\n'), /exclude inbound ports: 15020,15021/);
});

t.test('pin directory name', async (t) => {
  t.equal(podKeyOf({ podUid: 'abc-123' }, '/x'), 'abc-123');
  t.equal(podKeyOf({}, '/sys/fs/cgroup/kubepods/pod:x y'), 'pod_x_y', 'from --cgroup, made safe');
});
