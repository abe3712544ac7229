import t from 'tap';
import { initSchema } from '../common.js';
import { describeCleanup, describePlan, planEbpf, toLoadSpec } from './plan.js';
import { podKeyOf } from './index.js';

const inputs = { cgroupPath: '/cg/pod1', netnsPath: '/proc/self/ns/net', bpffs: '/sys/fs/bpf/', podKey: 'uid-1', objDir: '/o', ipv6: false, skMsg: false };

t.test('the plan attaches every program, fills exclusions, never sk_msg unless asked', async (t) => {
  const config = initSchema.parse({ mode: 'ebpf', excludeOutboundPorts: '5432,3306', excludeOutboundCidrs: '10.0.0.0/8,fd00::/8', excludeInboundPorts: '9000' });
  const plan = planEbpf(config, inputs);
  t.equal(plan.linkPinPath, '/sys/fs/bpf/weft/uid-1/sk_lookup', 'pin under <bpffs>/weft/<pod>/');
  t.same(plan.objects, ['/o/getsockopt.bpf.o', '/o/sockops.bpf.o', '/o/sk_lookup.bpf.o', '/o/connect4.bpf.o', '/o/connect6.bpf.o'], 'objects in attach order, connect4/6 last');
  t.same(plan.excludeInboundPorts, [9000, 15020, 15021], '15020 and 15021 always excluded');
  t.same(plan.excludeOutboundCidrs, ['10.0.0.0/8'], 'IPv6 CIDRs dropped when IPv6 is off');
  t.equal(plan.runtime.includeAll, true);
  t.same(plan.maxEntries, { local_socks: 1 }, 'without sk_msg, local_socks is created with one entry');
  t.same(planEbpf(config, { ...inputs, skMsg: true }).maxEntries, {}, 'with sk_msg, at its full size');
  const spec = toLoadSpec(plan);
  t.equal(spec.mapEntries.filter((e) => e.map === 'excluded_ports').length, 5);
  t.equal(spec.mapEntries.filter((e) => e.map === 'excluded_cidrs').length, 1);
  t.equal(spec.rodata.readUInt32LE(12), 2, 'config flags: include all, IPv6 off');
  t.same(planEbpf(config, { ...inputs, skMsg: true }).objects[0], '/o/sk_msg.bpf.o', 'sk_msg first: on its map before sockops fills it');
});

t.test('include list turns off include-all', async (t) => {
  const config = initSchema.parse({ mode: 'ebpf', includeOutboundCidrs: '10.96.0.0/12' });
  const plan = planEbpf(config, { ...inputs, ipv6: true });
  t.equal(plan.runtime.includeAll, false);
  t.equal(toLoadSpec(plan).mapEntries.filter((e) => e.map === 'included_cidrs').length, 1);
  t.equal(toLoadSpec(plan).rodata.readUInt32LE(12), 1, 'IPv6 on, include-all off');
});

t.test('--dry-run lines name every attach point, in the order the loader attaches', async (t) => {
  const lines = describePlan(planEbpf(initSchema.parse({ mode: 'ebpf' }), { ...inputs, skMsg: true }));
  t.match(lines.join('\n'), /attach weft_connect4 .* to cgroup \/cg\/pod1 \(BPF_F_ALLOW_MULTI\)/);
  t.match(lines.join('\n'), /attach weft_sk_lookup .* to netns \/proc\/self\/ns\/net as a link pinned at \/sys\/fs\/bpf\/weft\/uid-1\/sk_lookup/);
  t.match(lines.join('\n'), /exclude inbound ports: 15020,15021/);
  const steps = lines.filter((l) => /^\d+\. attach /.test(l)).map((l) => /attach (weft_\w+)/.exec(l)?.[1]);
  t.same(steps, ['weft_sk_msg', 'weft_getsockopt', 'weft_sockops', 'weft_sk_lookup', 'weft_connect4', 'weft_connect6'], 'numbered in attach order');
});

t.test('--dry-run --cleanup names every pin cleanup removes', async (t) => {
  const lines = describeCleanup(planEbpf(initSchema.parse({ mode: 'ebpf' }), inputs));
  t.same(lines, [
    'detach weft_* programs from cgroup /cg/pod1',
    'unpin /sys/fs/bpf/weft/uid-1/sk_lookup (if present)',
    'unpin /sys/fs/bpf/weft/uid-1/local_socks (if present)',
    'remove /sys/fs/bpf/weft/uid-1 (if empty)',
  ], 'the sk_msg sockhash pin too, even when this run has sk_msg off');
});

t.test('pin directory name', async (t) => {
  t.equal(podKeyOf({ podUid: 'abc-123' }, '/x'), 'abc-123');
  t.equal(podKeyOf({}, '/sys/fs/cgroup/kubepods/pod:x y'), 'pod_x_y', 'from --cgroup, made safe');
});

t.test('exclusion lists longer than their maps are flag errors, before anything is loaded', async (t) => {
  const ports = (from: number, n: number): string => Array.from({ length: n }, (_, i) => from + i).join(',');
  const cidrs = (n: number): string => Array.from({ length: n }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`).join(',');
  // 1022 + the two always-excluded inbound ports fill the 1024 entries exactly.
  t.doesNotThrow(() => planEbpf(initSchema.parse({ mode: 'ebpf', excludeOutboundPorts: ports(20000, 1022) }), inputs), '1024 ports fit');
  t.throws(() => planEbpf(initSchema.parse({ mode: 'ebpf', excludeOutboundPorts: ports(20000, 1000), excludeInboundPorts: ports(40000, 23) }), inputs), {
    code: 'WEFT_ERR_BAD_FLAG',
    message: /--exclude-inbound-ports and --exclude-outbound-ports: 1025 ports together .*at most 1024/,
  });
  t.doesNotThrow(() => planEbpf(initSchema.parse({ mode: 'ebpf', excludeOutboundCidrs: cidrs(1024) }), inputs), '1024 CIDRs fit');
  t.throws(() => planEbpf(initSchema.parse({ mode: 'ebpf', excludeOutboundCidrs: cidrs(1025) }), inputs), { code: 'WEFT_ERR_BAD_FLAG', message: /^--exclude-outbound-cidrs: 1025 CIDRs, at most 1024/ });
  t.throws(() => planEbpf(initSchema.parse({ mode: 'ebpf', includeOutboundCidrs: cidrs(1025) }), inputs), { code: 'WEFT_ERR_BAD_FLAG', message: /^--include-outbound-cidrs: 1025 CIDRs/ });
  const v6 = Array.from({ length: 1100 }, (_, i) => `fd00:${i.toString(16)}::/32`).join(',');
  t.doesNotThrow(() => planEbpf(initSchema.parse({ mode: 'ebpf', excludeOutboundCidrs: v6 }), inputs), 'IPv6 CIDRs are not loaded with IPv6 off, so they do not count');
  t.throws(() => planEbpf(initSchema.parse({ mode: 'ebpf', excludeOutboundCidrs: '10.0.0.0/8,10.1.0.0/16' }), { ...inputs, maxEntries: { excluded_cidrs: 1 } }), { message: /at most 1 in ebpf mode/ }, 'a smaller test map lowers the limit');
});
