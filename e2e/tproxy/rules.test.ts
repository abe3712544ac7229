// `weft init --mode tproxy` against the real kernel, in throwaway network namespaces: apply,
// re-run (identical, no duplicates), cleanup (byte-identical to before), and rollback of a
// failing step. Both iptables backends when this host has them.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Netns, has, imageToolset, missingPrerequisite, sh, snapshot } from './netns.js';

const skip = missingPrerequisite();

function withNetns(t: Test, tag: string): Netns {
  const ns = new Netns(tag);
  t.teardown(() => ns.destroy());
  return ns;
}

const backends = (['nft', 'legacy'] as const).filter((b) => has(`iptables-${b}-restore`) && has(`ip6tables-${b}-restore`));

for (const backend of backends) {
  t.test(`apply, re-run and cleanup with the image's tools (${backend})`, { skip: skip ?? false }, async (t) => {
    const ns = withNetns(t, 'rules');
    // Only what the image carries: iptables and iproute2, no nft.
    const image = imageToolset();
    t.teardown(image.dispose);
    t.notOk(has(`${image.path}/nft`), 'the toolset has no nft, like the image');
    const env = { ...process.env, PATH: image.path };
    const weft = (args: string[]) => ns.weft(args, env);
    // The legacy tables of a namespace appear on first use and never go; use them first so
    // "before" already has them (iptables-nft's empty table weft removes on cleanup).
    if (backend === 'legacy') {
      ns.exec(['iptables-legacy', '-t', 'mangle', '-S']);
      ns.exec(['ip6tables-legacy', '-t', 'mangle', '-S']);
    }
    const before = snapshot(ns, backend);
    const args = ['init', '--mode', 'tproxy', '--ipv6', 'on', '--iptables-backend', backend, '--exclude-outbound-cidrs', '10.9.0.0/16,fd09::/32'];

    const first = weft(args);
    t.equal(first.code, 0, `first run: ${first.stderr}`);
    const applied = snapshot(ns, backend);
    const [, v4, v6] = applied.split('\n----\n');
    for (const [fam, save] of [['IPv4', v4], ['IPv6', v6]] as const) {
      t.match(save, /^:WEFT_PREROUTING /m, `${fam}: weft chains exist`);
      t.equal(save?.match(/^-A PREROUTING .*-j WEFT_PREROUTING$/gm)?.length, 1, `${fam}: one PREROUTING jump`);
      t.equal(save?.match(/^-A OUTPUT .*-j WEFT_OUTPUT$/gm)?.length, 1, `${fam}: one OUTPUT jump`);
      t.match(save, /TPROXY --on-port 15006/, `${fam}: inbound TPROXY`);
      t.match(save, /TPROXY --on-port 15001/, `${fam}: outbound TPROXY`);
    }
    t.match(v4, /-d 10\.9\.0\.0\/16 .*weft\/exclude-outbound-cidr/);
    t.match(v6, /-d fd09::\/32 .*weft\/exclude-outbound-cidr/);
    t.match(applied, /fwmark 0x539 lookup 133 proto 87$/m, 'the ip rule, tagged as weft’s');
    t.match(applied, /local default dev lo table 133 proto 87 /, 'the route, tagged as weft’s');

    const again = weft(args);
    t.equal(again.code, 0, `re-run: ${again.stderr}`);
    t.equal(snapshot(ns, backend), applied, 're-run leaves iptables-save, ip rule and routes identical');

    const clean = weft(['init', '--cleanup', '--iptables-backend', backend]);
    t.equal(clean.code, 0, `cleanup: ${clean.stderr}`);
    t.equal(snapshot(ns, backend), before, 'cleanup leaves everything byte-identical to before');

    const cleanAgain = weft(['init', '--cleanup', '--iptables-backend', backend]);
    t.equal(cleanAgain.code, 0, 'cleanup of nothing is fine');
    t.equal(snapshot(ns, backend), before);
  });

  t.test(`a failing step rolls back everything applied (${backend})`, { skip: skip ?? false }, async (t) => {
    const ns = withNetns(t, 'fail');
    if (backend === 'legacy') {
      ns.exec(['iptables-legacy', '-t', 'mangle', '-S']);
      ns.exec(['ip6tables-legacy', '-t', 'mangle', '-S']);
    }
    // ip6tables-restore, the last step, fails; everything before it must be undone.
    const bin = mkdtempSync(`${tmpdir()}/wftp-bin-`);
    t.teardown(() => rmSync(bin, { recursive: true, force: true }));
    const tool = `${bin}/ip6tables-${backend}-restore`;
    writeFileSync(tool, '#!/bin/sh\ncat >/dev/null\necho "ip6tables-restore: simulated failure" >&2\nexit 4\n');
    chmodSync(tool, 0o755);
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };

    const before = snapshot(ns, backend);
    const r = ns.weft(['init', '--ipv6', 'on', '--iptables-backend', backend], env);
    t.not(r.code, 0, 'exits non-zero');
    t.match(r.stderr, /WEFT_ERR_APPLY_FAILED: step "ip6tables-restore \(IPv6, [a-z]+\)" failed \(exit 4\): ip6tables-restore: simulated failure; rolled back: iptables-restore \(IPv4/);
    t.equal(snapshot(ns, backend), before, 'nothing is left behind');

    // A re-run over an existing weft setup that fails restores the previous weft rules.
    t.equal(ns.weft(['init', '--ipv6', 'on', '--iptables-backend', backend]).code, 0);
    const applied = snapshot(ns, backend);
    const r2 = ns.weft(['init', '--ipv6', 'on', '--iptables-backend', backend, '--exclude-outbound-ports', '22'], env);
    t.not(r2.code, 0);
    t.equal(snapshot(ns, backend), applied, 'the previous weft rules are back as they were');
  });
}

t.test('without iptables on PATH the error names the missing tool', { skip: skip ?? false }, async (t) => {
  const ns = withNetns(t, 'nopath');
  const bin = mkdtempSync(`${tmpdir()}/wftp-bin-`);
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  symlinkSync(sh(['sh', '-c', 'command -v ip']).stdout.trim(), `${bin}/ip`);
  const env = { ...process.env, PATH: bin };
  const before = snapshot(ns, 'nft');
  const auto = ns.weft(['init'], env);
  t.equal(auto.code, 1, 'exit 1: could not apply (not a usage error)');
  t.match(auto.stderr, /no usable iptables backend: neither iptables-nft-save nor iptables-legacy-save runs/);
  const nft = ns.weft(['init', '--iptables-backend', 'nft'], env);
  t.not(nft.code, 0);
  t.match(nft.stderr, /iptables-nft-save: not found on PATH/);
  t.equal(snapshot(ns, 'nft'), before, 'nothing is left behind');
});

t.test('--dry-run prints the plan and the backend it would use, and changes nothing', { skip: skip ?? false }, async (t) => {
  const ns = withNetns(t, 'dry');
  const before = snapshot(ns, 'nft');
  const r = ns.weft(['init', '--dry-run', '--ipv6', 'on']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^# weft init --mode tproxy: iptables backend nft \(no rules in either backend; iptables-nft works\), IPv4 \+ IPv6$/m);
  t.match(r.stdout, /^ip -4 rule add fwmark 0x539 lookup 133 protocol 87$/m);
  t.match(r.stdout, /^# ip6tables-restore --noflush/m);
  t.equal(snapshot(ns, 'nft'), before);
});

t.test('--cleanup --dry-run prints what cleanup would remove, not the apply plan, and changes nothing', { skip: skip ?? false }, async (t) => {
  const ns = withNetns(t, 'drycl');
  const empty = ns.weft(['init', '--cleanup', '--dry-run']);
  t.equal(empty.code, 0, empty.stderr);
  t.match(empty.stdout, /^# nothing of weft to remove$/m);
  t.equal(ns.weft(['init', '--ipv6', 'on', '--mark', '0x77', '--route-table', '177']).code, 0);
  const applied = snapshot(ns, 'nft');
  const r = ns.weft(['init', '--cleanup', '--dry-run']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^# weft init --mode tproxy --cleanup \(dry run: nothing changed\): iptables backend nft/m);
  t.notMatch(r.stdout, /^ip -4 rule add/m, 'not the apply plan');
  t.match(r.stdout, /^iptables-nft-restore --noflush <<EOF\n\*mangle\n-D PREROUTING .*-j WEFT_PREROUTING$/m);
  t.match(r.stdout, /^-X WEFT_OUTPUT$/m);
  t.match(r.stdout, /^ip -4 rule del priority \d+ fwmark 0x77 lookup 177 protocol 87$/m, 'found by its tag, whatever --mark the apply had');
  t.match(r.stdout, /^ip -6 route del local default dev lo table 177 metric \d+ proto 87$/m);
  t.equal(snapshot(ns, 'nft'), applied, 'nothing changed');
});
