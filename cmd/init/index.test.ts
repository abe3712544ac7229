import t from 'tap';
import { parseInitFlags, parseInitFlagsWithSchema } from './index.js';

// Every check runs through both readers: the zod schema, and the fast path cmd/init uses first.
const readers = [
  ['schema', parseInitFlagsWithSchema],
  ['fast path', parseInitFlags],
] as const;

for (const [reader, parse] of readers) t.test(`defaults match docs/flags.md (${reader})`, async (t) => {
  const c = (await parse([], {}))!;
  t.equal(c.mode, 'tproxy');
  t.equal(c.proxyUid, 1337);
  t.equal(c.proxyGid, 1337);
  t.equal(c.inboundPort, 15006);
  t.equal(c.outboundPort, 15001);
  t.same(c.excludeInboundPorts, [15020, 15021]);
  t.equal(c.includeOutboundCidrs, null, '* means all');
  t.equal(c.mark, 0x539);
  t.equal(c.routeTable, 133);
  t.equal(c.ipv6, 'auto');
  t.equal(c.iptablesBackend, 'auto');
  t.ok(Object.isFrozen(c));
});

for (const [reader, parse] of readers) t.test(`lists, hex marks and env vars (${reader})`, async (t) => {
  const c = (await parse(['--exclude-inbound-ports', '22, 15020', '--mark', '0x10', '--exclude-outbound-cidrs', '10.0.0.1,fd00::/8'], {
    WEFT_INCLUDE_OUTBOUND_CIDRS: '10.0.0.0/8',
    WEFT_ROUTE_TABLE: '200',
  }))!;
  t.same(c.excludeInboundPorts, [22, 15020, 15021]);
  t.equal(c.mark, 16);
  t.same(c.excludeOutboundCidrs, ['10.0.0.1/32', 'fd00::/8']);
  t.same(c.includeOutboundCidrs, ['10.0.0.0/8']);
  t.equal(c.routeTable, 200);
  t.equal((await parse(['--include-outbound-cidrs', ''], {}))!.includeOutboundCidrs, null, 'empty means all, as in the chart and the injector');
  t.equal((await parse(['--include-outbound-cidrs', ' * '], {}))!.includeOutboundCidrs, null);
  t.equal((await parse([], {}))!.proxyMark, 0, 'no proxy mark by default');
  t.equal((await parse(['--proxy-mark', '0x10'], {}))!.proxyMark, 16);
});

for (const [reader, parse] of readers) t.test(`a flag of the other mode is refused, naming the flag and its mode (${reader})`, async (t) => {
  const refused: [string[], RegExp][] = [
    [['--mode', 'tproxy', '--cgroup', '/x'], /--cgroup applies to --mode ebpf only; this is --mode tproxy/],
    [['--cgroup-root=/x'], /--cgroup-root applies to --mode ebpf only; this is --mode tproxy/],
    [['--bpffs', '/x'], /--bpffs applies to --mode ebpf only/],
    [['--pod-uid', 'u1'], /--pod-uid applies to --mode ebpf only/],
    [['--mode', 'ebpf', '--mark', '5'], /--mark applies to --mode tproxy only; this is --mode ebpf/],
    [['--mode', 'ebpf', '--route-table', '5'], /--route-table applies to --mode tproxy only/],
    [['--mode', 'ebpf', '--iptables-backend', 'nft'], /--iptables-backend applies to --mode tproxy only/],
    [['--mode', 'ebpf', '--proxy-mark', '5'], /--proxy-mark applies to --mode tproxy only/],
  ];
  for (const [argv, message] of refused) await t.rejects(parse(argv, {}), { code: 'WEFT_ERR_BAD_FLAG', message }, argv.join(' '));
  t.equal((await parse([], { WEFT_POD_UID: 'u1' }))!.mode, 'tproxy', 'an env var of the other mode is ambient: ignored');
  t.equal((await parse(['--mode', 'ebpf', '--cgroup', '/x'], {}))!.cgroup, '/x');
});

for (const [reader, parse] of readers) t.test(`bad flags name the flag and what is allowed (${reader})`, async (t) => {
  const bad: [string[], RegExp][] = [
    [['--inbound-port', '70000'], /--inbound-port \(WEFT_INBOUND_PORT\): must be 1-65535/],
    [['--exclude-outbound-ports', '80,70000'], /--exclude-outbound-ports .*must be 1-65535/],
    [['--exclude-outbound-cidrs', '10.0.0.0/33'], /--exclude-outbound-cidrs .*"10\.0\.0\.0\/33" is not a CIDR/],
    [['--include-outbound-cidrs', 'fd00::/129'], /--include-outbound-cidrs .*"fd00::\/129" is not a CIDR/],
    [['--include-outbound-cidrs', '*,10.0.0.0/8'], /--include-outbound-cidrs \(WEFT_INCLUDE_OUTBOUND_CIDRS\): "\*" \(every destination\) must be alone, not in a list; got "\*,10\.0\.0\.0\/8"/],
    [['--proxy-mark', '0x539'], /--proxy-mark .*must differ from --mark \(0x539\)/],
    [['--proxy-mark=-1'], /--proxy-mark .*allowed: 0-4294967295/],
    [['--mode', 'ebpff'], /--mode \(WEFT_MODE\): "ebpff" is not a mode; allowed: tproxy, ebpf/],
    [['--ipv6', 'maybe'], /--ipv6 .*allowed: auto, on, off/],
    [['--iptables-backend', 'xt'], /--iptables-backend .*allowed: auto, nft, legacy/],
    [['--route-table', '254'], /--route-table .*except 253, 254, 255/],
    [['--mark', '0'], /--mark .*1-4294967295/],
    [['--proxy-uid=-1'], /--proxy-uid .*must be 0-4294967294/],
    [['--outbound-port', '15006'], /--outbound-port .*must differ from --inbound-port/],
    [['--nope'], /Unknown option '--nope'/],
  ];
  for (const [argv, message] of bad) await t.rejects(parse(argv, {}), { code: 'WEFT_ERR_BAD_FLAG', message }, argv.join(' '));
  await t.rejects(parse([], { WEFT_INBOUND_PORT: '0' }), { message: /--inbound-port \(WEFT_INBOUND_PORT\)/ });
});
